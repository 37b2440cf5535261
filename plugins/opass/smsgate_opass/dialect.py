"""The opass (经分助手 / infocloud) wire dialect: sign string, HMAC, nonce, JSON text values.

Kept free of smsgate imports so the simulator and the tests can use the pieces on their own.

The document's rule (and its Python, Java, C#, PHP and Postman samples): put every body field and
the four headers ``x-api-key``, ``x-nonce``, ``x-sign-method``, ``x-timestamp`` into one mapping,
sort it by key, drop entries whose value is empty, write ``key=value`` and join with ``&``. The
``x-sign`` header is the lower-case hex HMAC of that text, keyed with the access key, with the
hash that ``x-sign-method`` names. Values enter the string as they are, with no URL encoding:
a JSON text value such as ``templateParam`` enters as that very text.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

#: ``x-sign-method`` value -> hashlib name. The document lists exactly these six.
SIGN_METHODS: dict[str, str] = {
    "HmacMD5": "md5",
    "HmacSHA1": "sha1",
    "HmacSHA224": "sha224",
    "HmacSHA256": "sha256",
    "HmacSHA384": "sha384",
    "HmacSHA512": "sha512",
}

DEFAULT_SIGN_METHOD = "HmacSHA256"

#: the signed headers besides the body fields (``x-sign`` itself is not signed)
SIGNED_HEADERS = ("x-api-key", "x-nonce", "x-sign-method", "x-timestamp")


def canonical_sign_method(value: str) -> str:
    """``hmacsha256`` -> ``HmacSHA256``; raises ValueError for anything but the six methods."""
    text = str(value).strip()
    for name in SIGN_METHODS:
        if name.lower() == text.lower():
            return name
    raise ValueError(f"'sign_method' must be one of {', '.join(SIGN_METHODS)}")


def value_text(value: Any) -> str | None:
    """How one value is written into the sign string; None means "left out".

    Strings as they are; numbers as decimal text; booleans as ``true``/``false``; lists and
    objects as compact JSON (what the Postman sample's ``JSON.stringify`` does).
    """
    if value is None:
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = value
    elif isinstance(value, (int, float)):
        text = str(value)
    else:
        text = json_text(value)
    return text or None


def sign_string(fields: Mapping[str, Any]) -> str:
    """``key=value`` of every non-empty field, sorted by key, joined by ``&``."""
    parts = []
    for key in sorted(fields):
        text = value_text(fields[key])
        if key and text is not None:
            parts.append(f"{key}={text}")
    return "&".join(parts)


def hmac_hex(secret: str, text: str, method: str) -> str:
    """Lower-case hex HMAC of ``text`` (UTF-8) keyed with ``secret`` (UTF-8)."""
    digest = SIGN_METHODS[canonical_sign_method(method)]
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), getattr(hashlib, digest)).hexdigest()


def json_text(value: Any) -> str:
    """Compact JSON with Chinese kept as is: ``["张三","02"]``.

    A quote in a value becomes ``\\"`` and a backslash becomes ``\\\\`` inside this text, which is
    what the document's section on ``\\`` asks for ("内容带\\特殊字符,需要转为\\\\").
    """
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def body_bytes(fields: Mapping[str, Any]) -> bytes:
    """The request body: UTF-8 JSON of the fields, empty (None) fields left out."""
    return json_text({k: v for k, v in fields.items() if v is not None}).encode("utf-8")


def digit_nonce(raw: str) -> str:
    """An ``x-nonce`` for ``raw``: the document wants digits, at least 10 of them.

    A digit string of 10 or more is used as it is. Anything else (smsgate's default nonce is 32
    random hex digits) is turned, deterministically, into 18 digits without a leading zero: fits a
    Java ``long`` on the vendor's side and keeps a fixed test nonce giving fixed bytes.
    """
    text = str(raw)
    if text.isdigit() and text.isascii() and len(text) >= 10:
        return text
    try:
        number = int(text, 16)
    except ValueError:
        number = int(hashlib.sha256(text.encode("utf-8")).hexdigest(), 16)
    return str(10**17 + number % (9 * 10**17))
