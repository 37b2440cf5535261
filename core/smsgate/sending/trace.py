"""The per-request debug trace (``smsgate -vv``): one ``smsgate.request`` event per vendor call.

It says what a user debugging a vendor needs — operation, method, URL, HTTP status, time taken,
the vendor's code — and what the ``sign`` hook changed, without anything that must stay private:
the URL loses its user info, query values that are signatures, secrets or look like either are
replaced by ``***`` (phones masked), and header values are shown only for harmless headers.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from ..config import is_secret
from ..log import get_logger, safe_url
from ..models import HttpRequest, HttpResponse, Operation

log = get_logger("smsgate.request")

REDACTED = "***"
# parameter/header names that carry credentials or signatures, whatever the vendor
_SENSITIVE = re.compile(r"sign|secret|token|key|pass|pwd|auth|mac|cred|ticket|session|cookie", re.I)
_SAFE_HEADERS = frozenset({"content-type", "content-length", "accept", "user-agent", "host", "connection"})
# what a signature is computed over, shown because it helps to debug a refused signature
_SIGNED_INPUTS = re.compile(r"time|nonce|date|version|method|algorithm", re.I)
_PHONE = re.compile(r"(?<!\d)(1[3-9]\d)\d{4}(\d{4})(?!\d)")


def mask_phones(text: str) -> str:
    """Every mainland mobile number in ``text`` masked as ``138****8000``."""
    return _PHONE.sub(r"\1****\2", text)


def config_secrets(config: Any) -> list[str]:
    """The values of ``config``'s secret fields (non-empty strings)."""
    import attrs

    if not attrs.has(type(config)):
        return []
    values = (getattr(config, f.name, None) for f in attrs.fields(type(config)) if is_secret(f))
    return [v for v in values if isinstance(v, str) and v]


def redact_text(text: str, secrets: list[str]) -> str:
    for value in secrets:
        if value in text:
            text = text.replace(value, REDACTED)
    return mask_phones(text)


def _signed_parts(unsigned: HttpRequest | None, signed: HttpRequest) -> tuple[set[str], list[str]]:
    """Header names (lower case) and query keys the ``sign`` hook added or changed, and a short
    list saying what it changed."""
    if unsigned is None or unsigned is signed:
        return set(), []
    before = {k.lower(): v for k, v in unsigned.headers}
    headers = {k.lower() for k, v in signed.headers if before.get(k.lower()) != v}
    old_q = dict(parse_qsl(urlsplit(unsigned.url).query, keep_blank_values=True))
    query = {k for k, v in parse_qsl(urlsplit(signed.url).query, keep_blank_values=True) if old_q.get(k) != v}
    changed = [f"header {h}" for h in sorted(headers)] + [f"query {q}" for q in sorted(query)]
    if unsigned.body != signed.body:
        changed.append("body")
    return headers | {"?" + q for q in query}, changed


def trace_url(url: str, signed_keys: set[str], secrets: list[str]) -> str:
    """The URL without user info; query values that are signatures or secrets redacted."""
    parts = urlsplit(url)
    base = safe_url(url)
    if not parts.query:
        return base
    shown = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        hidden = (not _SIGNED_INPUTS.search(key) and ("?" + key in signed_keys or _SENSITIVE.search(key))
                  or any(s in value for s in secrets))
        shown.append(f"{key}={REDACTED if hidden else mask_phones(value)}")
    return base + "?" + "&".join(shown)


def trace_headers(request: HttpRequest, secrets: list[str]) -> str:
    out = []
    for name, value in request.headers:
        low = name.lower()
        if not (low in _SAFE_HEADERS or _SIGNED_INPUTS.search(low)):
            value = REDACTED
        out.append(f"{name}: {redact_text(value, secrets)}")
    return "; ".join(out)


class RequestTrace:
    """Collects one request's trace while it runs; :meth:`emit` logs it (only at debug level)."""

    def __init__(self, ctx: Any, operation: Operation):
        self.enabled = log.is_enabled(logging.DEBUG)
        self.ctx, self.operation = ctx, operation
        self.unsigned: HttpRequest | None = None
        self.request: HttpRequest | None = None
        self.response: HttpResponse | None = None
        self.started = 0.0
        self.duration: float | None = None

    def sent(self, unsigned: HttpRequest | None, request: HttpRequest) -> None:
        self.unsigned, self.request = unsigned, request
        self.started = time.monotonic()

    def answered(self, response: HttpResponse | None) -> None:
        self.duration = time.monotonic() - self.started
        self.response = response

    def emit(self, outcome: str, code: str | None = None, error: str | None = None) -> None:
        if not self.enabled:
            return
        fields: dict[str, Any] = {"provider": self.ctx.provider, "operation": self.operation.value,
                                  "request_index": self.ctx.request_index}
        secrets = config_secrets(self.ctx.config)
        request = self.request
        if request is not None:
            signed_keys, changed = _signed_parts(self.unsigned, request)
            fields.update(method=request.method, url=trace_url(request.url, signed_keys, secrets),
                          headers=trace_headers(request, secrets), body_bytes=len(request.body),
                          signed=", ".join(changed) or None)
        if self.response is not None:
            fields["status"] = self.response.status
            fields["response_bytes"] = len(self.response.body)
        if self.duration is not None:
            fields["duration_ms"] = round(self.duration * 1000, 1)
        fields.update(outcome=outcome, code=code)
        if error is not None:
            fields["error"] = redact_text(error, secrets)
        log.debug("smsgate.request", **fields)
