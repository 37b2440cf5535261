"""Tencent Cloud API 3.0 signing (TC3-HMAC-SHA256) and the small encodings around it.

Kept free of smsgate imports so the tests can use the pieces on their own. The steps are the
reference's ("签名方法 v3"), in its own words:

1. CanonicalRequest = method + "\\n" + "/" + "\\n" + query + "\\n" + CanonicalHeaders + "\\n" +
   SignedHeaders + "\\n" + lower-hex SHA-256 of the body. CanonicalHeaders is ``key:value\\n`` for
   every signed header, key *and value* lower-cased and trimmed, sorted by key; SignedHeaders is
   the same keys joined by ``;``. ``content-type`` and ``host`` must be signed.
2. StringToSign = "TC3-HMAC-SHA256" + "\\n" + X-TC-Timestamp + "\\n" + CredentialScope + "\\n" +
   lower-hex SHA-256 of the CanonicalRequest; CredentialScope = ``<UTC date>/<service>/tc3_request``
   (the date in UTC+0, from the timestamp itself).
3. SecretDate = HMAC_SHA256("TC3" + SecretKey, date); SecretService = HMAC_SHA256(SecretDate,
   service); SecretSigning = HMAC_SHA256(SecretService, "tc3_request"); Signature = lower-hex
   HMAC_SHA256(SecretSigning, StringToSign).
4. Authorization = "TC3-HMAC-SHA256 Credential=" + SecretId + "/" + CredentialScope + ", SignedHeaders=" +
   SignedHeaders + ", Signature=" + Signature.

The reference's worked example (CVM DescribeInstances at 1551113065) is a test vector of
``tests/test_signing.py``, byte for byte, every intermediate value included.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

import attrs

ALGORITHM = "TC3-HMAC-SHA256"
TERMINATOR = "tc3_request"
#: what this plugin signs: the two required headers plus the action, as the reference's current
#: example does (a captured request cannot then be replayed as another action)
SIGNED_HEADERS = ("content-type", "host", "x-tc-action")
CONTENT_TYPE = "application/json; charset=utf-8"


def sha256_hex(data: bytes | str) -> str:
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def utc_date(timestamp: int) -> str:
    """``2019-02-25`` for 1551113065: the date in UTC+0, never local time (the reference's note:
    a local date breaks every call made around midnight)."""
    return _dt.datetime.fromtimestamp(int(timestamp), _dt.timezone.utc).strftime("%Y-%m-%d")


def canonical_headers(headers: Mapping[str, str], signed: tuple[str, ...]) -> tuple[str, str]:
    """``(CanonicalHeaders, SignedHeaders)`` for the headers named in ``signed``."""
    lower = {str(k).strip().lower(): str(v) for k, v in headers.items()}
    names = sorted({name.strip().lower() for name in signed})
    missing = [n for n in names if n not in lower]
    if missing:
        raise KeyError(f"signed header(s) not in the request: {', '.join(missing)}")
    text = "".join(f"{name}:{lower[name].strip().lower()}\n" for name in names)
    return text, ";".join(names)


def canonical_request(method: str, query: str, headers: Mapping[str, str], signed: tuple[str, ...],
                      payload: bytes, uri: str = "/") -> str:
    header_text, signed_text = canonical_headers(headers, signed)
    return "\n".join([method.upper(), uri, query, header_text, signed_text, sha256_hex(payload)])


def credential_scope(timestamp: int, service: str) -> str:
    return f"{utc_date(timestamp)}/{service}/{TERMINATOR}"


def string_to_sign(timestamp: int, service: str, canonical: str) -> str:
    return "\n".join([ALGORITHM, str(int(timestamp)), credential_scope(timestamp, service), sha256_hex(canonical)])


def signing_keys(secret_key: str, date: str, service: str) -> tuple[bytes, bytes, bytes]:
    """``(SecretDate, SecretService, SecretSigning)``: the derived keys, binary."""
    secret_date = _hmac(("TC3" + secret_key).encode("utf-8"), date)
    secret_service = _hmac(secret_date, service)
    return secret_date, secret_service, _hmac(secret_service, TERMINATOR)


def signature(secret_key: str, timestamp: int, service: str, to_sign: str) -> str:
    signing = signing_keys(secret_key, utc_date(timestamp), service)[2]
    return hmac.new(signing, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


@attrs.frozen
class Signed:
    """Every step of one signature, so a test can compare each with the reference."""

    canonical_request: str
    string_to_sign: str
    signature: str
    authorization: str


def sign(*, secret_id: str, secret_key: str, service: str, timestamp: int, method: str, headers: Mapping[str, str],
         payload: bytes, signed: tuple[str, ...] = SIGNED_HEADERS, query: str = "") -> Signed:
    """Sign one request; ``headers`` must hold every header named in ``signed``."""
    canonical = canonical_request(method, query, headers, signed, payload)
    to_sign = string_to_sign(timestamp, service, canonical)
    sig = signature(secret_key, timestamp, service, to_sign)
    signed_text = canonical_headers(headers, signed)[1]
    auth = (f"{ALGORITHM} Credential={secret_id}/{credential_scope(timestamp, service)}, "
            f"SignedHeaders={signed_text}, Signature={sig}")
    return Signed(canonical_request=canonical, string_to_sign=to_sign, signature=sig, authorization=auth)


def json_body(fields: Mapping[str, Any]) -> bytes:
    """The request body: compact UTF-8 JSON, None fields left out (the API treats an absent optional
    parameter as not given; an explicit null is not documented)."""
    return json.dumps({k: v for k, v in fields.items() if v is not None}, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def e164(phone: str) -> str:
    """``13800138000`` -> ``+8613800138000`` (the API's E.164 form for mainland numbers)."""
    return "+86" + phone


def national(number: Any) -> str | None:
    """The 11-digit number of ``+8613800138000`` / ``8613800138000`` / ``008613800138000`` /
    ``13800138000``; None for anything else (another country, or not a number)."""
    text = str(number or "").strip()
    for prefix in ("+86", "0086", "86"):
        if text.startswith(prefix) and len(text) == len(prefix) + 11:
            text = text[len(prefix):]
            break
    return text if len(text) == 11 and text.isascii() and text.isdigit() else None
