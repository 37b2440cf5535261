"""juse's wire dialect: the sign strings, the md5 signatures, phone encryption and body encoding.

Shared by the plugin and its simulator, so both sides build the sign string the same way.
pycryptodome is imported inside the functions that need it (importing the plugin stays cheap).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from typing import Any

#: the headers are ``X-{app_key}-<suffix>``
HEADER_SUFFIXES = ("Algorithm", "Time", "AppType", "AppID", "Nonce", "Sign")
ALGORITHM = "md5"
#: seconds a request or a push may be away from the receiver's clock (both ways), per the document
TIME_WINDOW = 15 * 60


def header_name(app_key: str, suffix: str) -> str:
    return f"X-{app_key}-{suffix}"


def format_value(value: Any) -> str:
    """One value as it enters the sign string: a nested map is ``{k=v,k2=v2}`` in its own order."""
    if isinstance(value, Mapping):
        return "{" + ",".join(f"{k}={format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return str(value)


def sign_params(fields: Mapping[str, Any]) -> str:
    """The ``params`` part of the sign string: the body's fields sorted by key, ``key=value``
    joined by ``,`` with no spaces. Fields whose value is null are left out."""
    return ",".join(f"{k}={format_value(fields[k])}" for k in sorted(fields) if fields[k] is not None)


def strip_ignore_path(path: str, ignore_path: str) -> str:
    """The URL path as the message center sees it behind its nginx (``/api/spi/sendSms`` ->
    ``/spi/sendSms``)."""
    prefix = (ignore_path or "").rstrip("/")
    if prefix and (path == prefix or path.startswith(prefix + "/")):
        path = path[len(prefix):]
    return path or "/"


def request_sign_string(app_secret: str, path: str, params: str, app_type: str, timestamp: str, nonce: str) -> str:
    return f"{app_secret}{path}{params}{app_type}{timestamp}{nonce}"


def request_signature(app_secret: str, path: str, params: str, app_type: str, timestamp: str, nonce: str) -> str:
    """``X-*-Sign`` of a call: md5 hex of ``app_secret + path + params + app_type + time + nonce``."""
    text = request_sign_string(app_secret, path, params, app_type, timestamp, nonce)
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def callback_signature(app_secret: str, timestamp: str, nonce: str, app_id: str, kind: str) -> str:
    """``X-*-Sign`` of a push: md5 hex of ``app_secret + time + nonce + appId + type``."""
    return hashlib.md5(f"{app_secret}{timestamp}{nonce}{app_id}{kind}".encode("utf-8")).hexdigest()


def _key(app_secret: str) -> bytes:
    try:
        key = base64.b64decode(app_secret, validate=True)
    except (ValueError, TypeError):
        raise ValueError("app_secret is not base64 text") from None
    if len(key) != 16:  # the vendor encrypts with AES-128 (VENDORS.md's checked vector)
        raise ValueError(f"app_secret decodes to {len(key)} bytes; juse's AES-128 key needs 16")
    return key


def encrypt_phone(app_secret: str, plain: str) -> str:
    """AES/ECB/PKCS#7 with key base64-decode(app_secret); base64 output."""
    from Crypto.Cipher import AES
    from Crypto.Util.Padding import pad

    cipher = AES.new(_key(app_secret), AES.MODE_ECB)
    return base64.b64encode(cipher.encrypt(pad(plain.encode("utf-8"), AES.block_size))).decode("ascii")


def decrypt_phone(app_secret: str, encrypted: str) -> str:
    """The inverse of :func:`encrypt_phone`; raises ValueError when it does not decrypt."""
    from Crypto.Cipher import AES
    from Crypto.Util.Padding import unpad

    try:
        data = base64.b64decode(encrypted, validate=True)
    except (ValueError, TypeError):
        raise ValueError("not base64") from None
    if not data or len(data) % AES.block_size:
        raise ValueError("not a whole number of AES blocks")
    cipher = AES.new(_key(app_secret), AES.MODE_ECB)
    plain = unpad(cipher.decrypt(data), AES.block_size)  # ValueError on bad padding
    return plain.decode("utf-8")


def encode_body(fields: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, keys in the order given (the sign string sorts them itself)."""
    return json.dumps(dict(fields), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decode_body(body: bytes) -> dict[str, Any]:
    """JSON object from a body, keeping key order (nested maps enter the sign string in it)."""
    data = json.loads(body.decode("utf-8"))
    if not isinstance(data, dict):
        raise ValueError("body is not a JSON object")
    return data
