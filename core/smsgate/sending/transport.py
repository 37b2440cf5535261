"""HTTP transport: one shared urllib3 PoolManager, explicit timeouts, connect-only retries.

Rule of the house: a request that may have reached the vendor is never sent again. Only failures
that prove the request never left — the connection was refused, the connect timed out, the host
did not resolve — are retried (``connect_retries`` times, with a short backoff). A read timeout or
a connection reset after the request was written raises ``TransportError(not_sent=False)``, and
the pipeline reports those recipients as ``unknown``.
"""

from __future__ import annotations

import threading
import time
from typing import Any
from urllib.parse import urlsplit

from ..errors import TransportError
from ..hookspecs import hookimpl
from ..models import HttpRequest, HttpResponse

DEFAULT_POOL_SIZE = 16
_MAY_HAVE_LEFT = "the request may have been taken, so it is not resent"


class Transport:
    """Owns the one urllib3 PoolManager (keep-alive) that every provider's requests share."""

    def __init__(self, pool_maxsize: int = DEFAULT_POOL_SIZE, num_pools: int = 32, backoff: float = 0.2):
        import urllib3
        from urllib3 import exceptions

        self._urllib3 = urllib3
        self._exc = exceptions
        self.pool = urllib3.PoolManager(num_pools=num_pools, maxsize=pool_maxsize, block=False)
        self.backoff = backoff
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        self._timeouts: dict[tuple[float, float], Any] = {}

    def _timeout(self, config: Any) -> Any:
        key = (float(getattr(config, "connect_timeout", 5.0)), float(getattr(config, "read_timeout", 15.0)))
        timeout = self._timeouts.get(key)
        if timeout is None:
            timeout = self._timeouts[key] = self._urllib3.Timeout(connect=key[0], read=key[1])
        return timeout

    def _warn_insecure(self, provider: str) -> None:
        with self._lock:
            if provider in self._warned:
                return
            self._warned.add(provider)
        from ..log import get_logger

        get_logger("smsgate.transport").warning(
            "smsgate.transport.tls_unverified",
            provider=provider,
            detail="verify_tls = false: the vendor's certificate is NOT checked",
        )

    def send(self, request: HttpRequest, *, provider: str, config: Any) -> HttpResponse:
        exc_ = self._exc
        ConnectTimeoutError, HTTPError, NameResolutionError = (
            exc_.ConnectTimeoutError, exc_.HTTPError, exc_.NameResolutionError)
        NewConnectionError, ProtocolError, ReadTimeoutError, SSLError = (
            exc_.NewConnectionError, exc_.ProtocolError, exc_.ReadTimeoutError, exc_.SSLError)
        verify = getattr(config, "verify_tls", True)
        pool_kwargs: dict[str, Any] = {}
        if request.url.startswith("https:"):
            if verify:
                pool_kwargs = {"cert_reqs": "CERT_REQUIRED"}
            else:
                self._warn_insecure(provider)
                pool_kwargs = {"cert_reqs": "CERT_NONE", "assert_hostname": False}
        timeout = self._timeout(config)
        retries_left = int(getattr(config, "connect_retries", 2))
        attempts = 0
        parts = urlsplit(request.url)
        where = parts.netloc.rsplit("@", 1)[-1]  # user info (a password?) never reaches a message
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        while True:
            attempts += 1
            try:
                pool = self.pool.connection_from_host(
                    parts.hostname, parts.port, scheme=parts.scheme, pool_kwargs=pool_kwargs or None
                )
                resp = pool.urlopen(
                    request.method,
                    path,
                    body=request.body,
                    headers=dict(request.headers),
                    retries=False,
                    redirect=False,
                    timeout=timeout,
                    preload_content=True,
                    assert_same_host=False,
                )
                return HttpResponse(status=resp.status, headers=tuple(resp.headers.iteritems()), body=resp.data)
            except (NewConnectionError, ConnectTimeoutError, NameResolutionError) as exc:
                # The connection was never made: the request certainly did not leave.
                if retries_left > 0:
                    retries_left -= 1
                    time.sleep(self.backoff * (2 ** (attempts - 1)))
                    continue
                failure = (f"could not connect to {parts.scheme}://{where} after {attempts} attempt(s): "
                           f"{_short(exc)}", True, "connect")
            except SSLError as exc:
                if _certificate_refused(exc):  # verification is part of the handshake: nothing was written
                    failure = (f"the TLS certificate of {where} could not be verified: {_short(exc)} "
                               "(set verify_tls = false for this provider only if you must)", True, "tls_certificate")
                else:  # urllib3 reports handshake and exchange TLS errors alike: it may have been sent
                    failure = (f"TLS failed talking to {where} ({_short(exc)}); {_MAY_HAVE_LEFT}", False, "tls")
            except ReadTimeoutError:
                failure = (f"no answer from {where} within {timeout.read_timeout:g} s; {_MAY_HAVE_LEFT}",
                           False, "read_timeout")
            except (ProtocolError, HTTPError, OSError) as exc:
                failure = (f"connection to {where} broke after the request was sent ({_short(exc)}); "
                           f"{_MAY_HAVE_LEFT}", False, "broken")
            message, not_sent, kind = failure
            raise TransportError(message, not_sent=not_sent, attempts=attempts, url=_safe_url(request.url), kind=kind)

    def close(self) -> None:
        self.pool.clear()


def _certificate_refused(exc: BaseException) -> bool:
    """True when the error is the server's certificate failing verification (a handshake-only error)."""
    import ssl

    seen: list[BaseException] = []
    pending: list[Any] = [exc]
    while pending:
        err = pending.pop()
        if not isinstance(err, BaseException) or err in seen:
            continue
        seen.append(err)
        if isinstance(err, ssl.SSLCertVerificationError) or type(err).__name__ == "CertificateError":
            return True
        pending.extend(err.args)
        pending.extend(e for e in (err.__cause__, err.__context__) if e is not None)
    return "CERTIFICATE_VERIFY_FAILED" in str(exc)


def _short(exc: BaseException) -> str:
    from ..log import strip_userinfo

    text = strip_userinfo(str(exc))
    # urllib3 messages embed the connection object's repr; keep the useful tail.
    if ": " in text and text.startswith("<"):
        text = text.split(": ", 1)[1]
    return text[:200]


def _safe_url(url: str) -> str:
    """The URL without user info and query string (which some vendors use for credentials)."""
    from ..log import safe_url

    return safe_url(url)


_default: Transport | None = None
_default_lock = threading.Lock()


def default_transport() -> Transport:
    """The process-wide shared transport."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Transport()
        return _default


@hookimpl(trylast=True)
def transmit(ctx: Any, request: HttpRequest) -> HttpResponse:
    transport = ctx.extras.get("transport") or default_transport()
    return transport.send(request, provider=ctx.provider, config=ctx.config)
