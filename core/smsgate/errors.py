"""One root exception, and classified subclasses a caller can act on.

Every error carries a message a person can act on. None of them ever holds a secret: messages are
built from field names, vendor codes and vendor texts, never from configuration values.
"""

from __future__ import annotations

from typing import Any


class SmsError(Exception):
    """Root of every error smsgate raises."""


class ConfigError(SmsError):
    """The configuration is unusable: unknown key, missing key, wrong type, unknown provider.

    When several things are wrong at once, one ConfigError lists them all; ``problems`` holds
    each one (a single problem is its own only entry).
    """

    def __init__(self, message: str, *, provider: str | None = None, field: str | None = None,
                 problems: tuple[ConfigError, ...] = ()):
        super().__init__(message)
        self.provider = provider
        self.field = field
        self.problems: tuple[ConfigError, ...] = problems or (self,)

    @classmethod
    def combine(cls, errors: list[ConfigError], source: str | None = None) -> ConfigError:
        """One error for all of ``errors`` (each error's own problems kept, in order)."""
        problems = tuple(p for e in errors for p in e.problems)
        if len(problems) == 1:
            return problems[0]
        where = f"{source}: " if source else "configuration: "
        lines = "\n".join(f"  - {str(p).removeprefix(where)}" for p in problems)
        return cls(f"{where}{len(problems)} problems:\n{lines}", problems=problems)


class ValidationError(SmsError):
    """The message or its recipients are not acceptable; nothing was sent.

    ``invalid`` lists every offending phone number (as the caller wrote it) when the problem is
    recipients; ``field`` names the message field when the problem is elsewhere.
    """

    def __init__(self, message: str, *, invalid: tuple[str, ...] = (), field: str | None = None):
        super().__init__(message)
        self.invalid = tuple(invalid)
        self.field = field


class PushTooLarge(ValidationError):
    """A vendor push carries more events than are taken in one push (answered 413, nothing stored)."""

    def __init__(self, message: str):
        super().__init__(message, field="body")


class ProviderError(SmsError):
    """The vendor answered with a failure, or its answer could not be understood.

    ``not_sent`` is True only when the answer proves the vendor did not accept the request for
    sending (bad signature, bad credentials, bad parameters ...). When it is False, the request
    may have been accepted, and the recipients of that request are reported as ``unknown``.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        vendor_message: str | None = None,
        request_id: str | None = None,
        not_sent: bool = False,
        provider: str | None = None,
    ):
        super().__init__(message)
        self.code = None if code is None else str(code)
        self.vendor_message = vendor_message
        self.request_id = request_id
        self.not_sent = not_sent
        self.provider = provider

    def __str__(self) -> str:
        text = super().__str__()
        extras = []
        if self.code is not None and f"[{self.code}]" not in text:
            text = f"[{self.code}] {text}"
        if self.request_id:
            extras.append(f"request id {self.request_id}")
        if extras:
            text = f"{text} ({', '.join(extras)})"
        return text


class AuthError(ProviderError):
    """The vendor refused our credentials, signature or source IP."""

    def __init__(self, message: str, **kwargs: Any):
        kwargs.setdefault("not_sent", True)
        super().__init__(message, **kwargs)


class RateLimited(ProviderError):
    """The vendor (or the vendor's documented limit, enforced locally) says: too many calls."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any):
        kwargs.setdefault("not_sent", True)
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class InsufficientBalance(ProviderError):
    """The account has no balance left for this send."""

    def __init__(self, message: str, **kwargs: Any):
        kwargs.setdefault("not_sent", True)
        super().__init__(message, **kwargs)


class LimitsUnavailable(SmsError):
    """The shared limits store (``[limits] store``, Redis) cannot be reached or failed, so the
    per-phone quotas cannot be checked: nothing was sent (unless ``[limits] fail_open``)."""


class TransportError(SmsError):
    """The HTTP exchange failed.

    ``not_sent`` is True when the failure proves the request never left (connection refused,
    connect timeout, name resolution); False when it may have reached the vendor (read timeout,
    reset after sending) — those recipients become ``unknown`` and are never resent.
    ``kind`` names the failure for metrics: ``connect``, ``tls_certificate``, ``tls``,
    ``read_timeout``, ``broken`` (the connection broke after sending) or ``error`` (anything else).
    """

    def __init__(self, message: str, *, not_sent: bool, attempts: int = 1, url: str | None = None,
                 kind: str = "error"):
        super().__init__(message)
        self.kind = kind
        self.not_sent = not_sent
        self.attempts = attempts
        self.url = url


class LedgerError(SmsError):
    """The send ledger could not be read or written. Raised before anything was sent (a send whose
    key cannot be claimed does not go out); a request whose record cannot be written is not sent."""
