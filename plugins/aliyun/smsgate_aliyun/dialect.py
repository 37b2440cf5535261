"""Alibaba Cloud's request signature V3 (``ACS3-HMAC-SHA256``) for Dysmsapi 2017-05-25.

Kept free of smsgate imports so the tests can use the pieces on their own.

Alibaba Cloud's "V3版本请求体&签名机制" (help.aliyun.com/zh/sdk/product-overview/
v3-request-structure-and-signature), step by step:

1. ``CanonicalRequest = method + "\\n" + CanonicalURI + "\\n" + CanonicalQueryString + "\\n"
   + CanonicalHeaders + "\\n" + SignedHeaders + "\\n" + HashedRequestPayload``. An RPC-style API
   (Dysmsapi is one) has ``/`` as its CanonicalURI. The query string is every query parameter
   sorted by name, name and value each percent-encoded per RFC 3986 (only ``A-Z a-z 0-9 - _ . ~``
   kept; space is ``%20``, ``*`` is ``%2A``), ``name=value`` joined by ``&``. CanonicalHeaders
   are ``host``, ``content-type`` and every ``x-acs-*`` header, names lower-cased and sorted,
   values trimmed, each ``name:value\\n``; SignedHeaders are those names joined by ``;``.
   HashedRequestPayload is the lower-case hex SHA-256 of the body (of the empty string when there
   is none), and is also sent as ``x-acs-content-sha256``.
2. ``StringToSign = "ACS3-HMAC-SHA256\\n" + hex(sha256(CanonicalRequest))``.
3. ``Signature = hex(HMAC-SHA256(AccessKeySecret, StringToSign))``.
4. ``Authorization: ACS3-HMAC-SHA256 Credential=<AccessKeyId>,SignedHeaders=<...>,Signature=<...>``.

The reference's worked example (RunInstances, key ``YourAccessKeyId``/``YourAccessKeySecret``,
``x-acs-date`` 2023-10-26T10:22:32Z, nonce 3156853299f313e23d1673dc12e1703d) gives
``06563a9e…f3283c0``; the tests check these functions against it byte for byte.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import quote

ALGORITHM = "ACS3-HMAC-SHA256"
API_VERSION = "2017-05-25"
#: the RPC style's CanonicalURI: always the root
RPC_PATH = "/"
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"


def percent_encode(text: str) -> str:
    """RFC 3986 encoding of UTF-8 text: only ``A-Z a-z 0-9 - _ . ~`` are kept."""
    return quote(str(text), safe="-_.~", encoding="utf-8")


def canonical_query(params: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    """Parameters sorted by name, each ``name=value`` encoded, joined by ``&`` (a parameter
    without a value is written ``name=``). Also the form of the query we send, so the signed
    text and the sent text are one string."""
    pairs = list(params.items()) if isinstance(params, Mapping) else list(params)
    return "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(pairs))


def form_body(params: Mapping[str, str]) -> bytes:
    """A form body ``key=value&…`` (the reference's ``in: formData`` parameters), encoded like
    the query so it has one reading."""
    return canonical_query(params).encode("ascii")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def signed_header_names(headers: Mapping[str, str]) -> list[str]:
    """The headers the reference says must be signed: ``host``, ``content-type`` and every
    ``x-acs-*`` present (lower-cased, sorted)."""
    names = {k.lower() for k in headers}
    return sorted(n for n in names if n in ("host", "content-type") or n.startswith("x-acs-"))


def canonical_headers(headers: Mapping[str, str], names: Iterable[str]) -> str:
    """``name:value\\n`` for each of ``names`` (lower case, in the given order), values trimmed."""
    lower = {k.lower(): str(v).strip() for k, v in headers.items()}
    return "".join(f"{name}:{lower[name]}\n" for name in names)


def canonical_request(method: str, path: str, query: str, headers: Mapping[str, str],
                      names: list[str], payload_hash: str) -> str:
    return "\n".join([method.upper(), path or RPC_PATH, query, canonical_headers(headers, names),
                      ";".join(names), payload_hash])


def string_to_sign(canonical: str) -> str:
    return f"{ALGORITHM}\n{sha256_hex(canonical.encode('utf-8'))}"


def signature(secret: str, text: str) -> str:
    """Lower-case hex HMAC-SHA256 of ``text`` keyed with the AccessKey secret (both UTF-8)."""
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()


def authorization(access_key_id: str, names: list[str], sig: str) -> str:
    return f"{ALGORITHM} Credential={access_key_id},SignedHeaders={';'.join(names)},Signature={sig}"


def sign(method: str, path: str, query: str, headers: Mapping[str, str], access_key_id: str,
         secret: str) -> str:
    """The ``Authorization`` value for a request whose headers already hold ``host``, the
    ``x-acs-*`` headers (``x-acs-content-sha256`` included) and, with a body, ``content-type``."""
    names = signed_header_names(headers)
    payload = {k.lower(): v for k, v in headers.items()}["x-acs-content-sha256"]
    canonical = canonical_request(method, path, query, headers, names, payload)
    return authorization(access_key_id, names, signature(secret, string_to_sign(canonical)))


def acs_date(unix_seconds: float) -> str:
    """``x-acs-date``: UTC, ISO 8601, ``yyyy-MM-ddTHH:mm:ssZ``."""
    moment = _dt.datetime.fromtimestamp(int(unix_seconds), _dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
