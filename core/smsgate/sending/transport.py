"""HTTP transport: one shared urllib3 PoolManager, explicit timeouts, connect-only retries.

Rule of the house: a request that may have reached the vendor is never sent again. Only failures
that prove the request never left — the connection was refused, the connect timed out, the host
did not resolve — are retried (``connect_retries`` times, with a short backoff). A read timeout or
a connection reset after the request was written raises ``TransportError(not_sent=False)``, and
the pipeline reports those recipients as ``unknown``.

Two bounds hold whatever the server does. A send's deadline (``send_timeout``, given to the hooks
as ``ctx.extras["deadline"]``) ends an exchange still open at that moment — a server dripping one
byte at a time defeats a per-read timeout, so a watchdog shuts the socket down — and the request
is then ``unknown``. An answer is read in pieces up to a size cap (1 MiB for a send, 32 MiB for a
pull or query): a larger one is not read whole, and the request is ``unknown`` too.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import os
import threading
import time
from typing import Any
from urllib.parse import urlsplit

from ..errors import TransportError
from ..hookspecs import hookimpl
from ..models import HttpRequest, HttpResponse, Operation

DEFAULT_POOL_SIZE = 16
_MAY_HAVE_LEFT = "the request may have been taken, so it is not resent"
#: the largest answer read: a send's answer is a few hundred bytes, a pull's a few hundred reports
MAX_SEND_ANSWER = 1024 * 1024
MAX_OTHER_ANSWER = 32 * 1024 * 1024
#: the longest pause between two connect attempts (the backoff doubles up to it)
MAX_BACKOFF = 2.0

def deadline_after(seconds: float) -> float:
    """A send's deadline ``seconds`` from now, as ``ctx.extras["deadline"]`` holds it."""
    return time.monotonic() + seconds


def deadline_passed(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


_local = threading.local()  # the deadline of the exchange this thread is making, and its watch


class _Watch:
    """One exchange's socket, shut down by the watchdog if the exchange outlives its deadline.
    Both ends hold the watchdog's lock, so an exchange is either finished or cut off, never both."""

    __slots__ = ("sock", "done", "expired")

    def __init__(self, sock: Any):
        self.sock = sock
        self.done = False
        self.expired = False

    def expire(self) -> None:
        """(The watchdog's lock held.)"""
        if self.done:
            return
        self.expired = True
        import socket  # here: a process that never opens a connection never imports it

        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # the blocked read returns at once
        except OSError:
            pass

    def finish(self) -> bool:
        """The exchange ended; True if the watchdog had already cut it off."""
        with _WATCHDOG.lock:
            self.done = True
            return self.expired


class _Watchdog:
    """One thread for the process that cuts off exchanges past their deadline.

    Registering an exchange wakes the thread only when its deadline comes before the moment the
    thread is already waiting for (a thread switch per request would cost more than the rest of
    the request's own work); with one ``send_timeout`` the deadlines come in order and the thread
    sleeps until the earliest. Finished exchanges are dropped by whoever registers the next one.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._cond = threading.Condition(self.lock)
        self._heap: list[tuple[float, int, _Watch]] = []
        self._seq = itertools.count()
        self._running = False  # the thread is started and has not ended
        self._wake_at: float | None = None  # when the thread wakes by itself (None: only when notified)
        self._compact_at = 64

    def watch(self, deadline: float, sock: Any) -> _Watch:
        watch = _Watch(sock)
        with self.lock:  # (the condition's lock, taken directly: cheaper than through the condition)
            heap = self._heap
            while heap and heap[0][2].done:
                heapq.heappop(heap)
            if len(heap) >= self._compact_at:  # finished ones behind a later deadline: dropped in bulk
                heap[:] = [entry for entry in heap if not entry[2].done]
                heapq.heapify(heap)
                self._compact_at = max(64, 2 * len(heap))
            heapq.heappush(heap, (deadline, next(self._seq), watch))
            if not self._running:
                self._running = True
                threading.Thread(target=self._run, name="smsgate-deadline", daemon=True).start()
            elif self._wake_at is None or deadline < self._wake_at:
                self._cond.notify()
        return watch

    def _run(self) -> None:
        try:
            with self._cond:
                heap = self._heap
                while True:
                    now = time.monotonic()
                    while heap and (heap[0][2].done or heap[0][0] <= now):
                        _, _, watch = heapq.heappop(heap)
                        watch.expire()
                    self._wake_at = heap[0][0] if heap else None
                    self._cond.wait(self._wake_at - now if self._wake_at is not None else None)
        finally:  # (never, short of the interpreter going away): the next registration starts another
            self._running = False

    def _forked(self) -> None:
        """In a child process: no thread (it was not copied), and locks no other thread holds."""
        self.__init__()  # type: ignore[misc]


_WATCHDOG = _Watchdog()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_WATCHDOG._forked)


def _watched(cls: type) -> type:
    """``cls`` (a urllib3 connection class) whose requests are watched against this thread's deadline."""

    class Watched(cls):  # type: ignore[misc]
        def request(self, *args: Any, **kwargs: Any) -> Any:
            deadline = getattr(_local, "deadline", None)
            if deadline is not None:
                if self.sock is None:  # connect now (bounded by the connect timeout), then watch
                    self.connect()
                _local.watch = _WATCHDOG.watch(deadline, self.sock)
            return super().request(*args, **kwargs)

    Watched.__name__ = Watched.__qualname__ = f"Watched{cls.__name__}"
    return Watched


@functools.lru_cache(maxsize=256)
def _url_parts(url: str) -> tuple[str, str | None, int | None, str, str]:
    """``(scheme, host, port, where, path)`` of a request's URL, ``where`` without user info (a
    password?), which never reaches a message; ``path`` with the query. Kept per URL: a provider
    sends most requests to one URL, and taking it apart costs more than the rest of the call."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, parts.hostname, parts.port, parts.netloc.rsplit("@", 1)[-1], path


class _AnswerTooLarge(Exception):
    pass


def _read_capped(resp: Any, limit: int) -> bytes:
    length = resp.length_remaining  # its Content-Length as urllib3 read it (None: none, or chunked)
    if length is not None:
        if length > limit:
            raise _AnswerTooLarge()
        if "Content-Encoding" not in resp.headers:
            # the usual answer: exactly ``length`` bytes as they are, taken in one read (http.client
            # stops at the length). An encoded body may unpack to far more: read in pieces below
            return resp.read()  # type: ignore[no-any-return]
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = resp.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise _AnswerTooLarge()
        chunks.append(chunk)


class Transport:
    """Owns the one urllib3 PoolManager (keep-alive) that every provider's requests share."""

    def __init__(self, pool_maxsize: int = DEFAULT_POOL_SIZE, num_pools: int = 32, backoff: float = 0.2):
        import urllib3
        from urllib3 import exceptions

        self._urllib3 = urllib3
        self._exc = exceptions
        #: failures that prove the connection was never made (the request did not leave)
        self._never_connected = (exceptions.NewConnectionError, exceptions.ConnectTimeoutError,
                                 exceptions.NameResolutionError)
        from urllib3.connection import HTTPConnection, HTTPSConnection
        from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool, port_by_scheme

        self.pool = urllib3.PoolManager(num_pools=num_pools, maxsize=pool_maxsize, block=False)
        # connections whose exchanges a send's deadline can cut off (see the module's text)
        self.pool.pool_classes_by_scheme = {
            "http": type("WatchedHTTPConnectionPool", (HTTPConnectionPool,), {"ConnectionCls": _watched(HTTPConnection)}),
            "https": type("WatchedHTTPSConnectionPool", (HTTPSConnectionPool,),
                          {"ConnectionCls": _watched(HTTPSConnection)}),
        }
        self.backoff = backoff
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        self._configs: dict[int, tuple[Any, tuple[Any, float, bool, int]]] = {}  # see _settings
        self._pool_keys: dict[tuple[Any, ...], tuple[Any, dict[str, Any]]] = {}  # see _pool
        self._default_ports = port_by_scheme

    def _settings(self, config: Any) -> tuple[Any, float, bool, int]:
        """A provider config's ``(Timeout, the longer of its two timeouts, verify_tls,
        connect_retries)``, read once per config object (configs are frozen)."""
        known = self._configs.get(id(config))
        if known is not None and known[0] is config:  # (kept alive here, so its id is not reused)
            return known[1]
        connect, read = float(getattr(config, "connect_timeout", 5.0)), float(getattr(config, "read_timeout", 15.0))
        settings = (self._urllib3.Timeout(connect=connect, read=read), max(connect, read),
                    bool(getattr(config, "verify_tls", True)), int(getattr(config, "connect_retries", 2)))
        if len(self._configs) >= 64:  # one per configured provider: a few
            self._configs.clear()
        self._configs[id(config)] = (config, settings)
        return settings

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

    def send(self, request: HttpRequest, *, provider: str, config: Any, deadline: float | None = None,
             max_answer: int = MAX_SEND_ANSWER) -> HttpResponse:
        """Send ``request``; ``deadline`` (``time.monotonic()`` seconds) ends the exchange if it is
        still open then; an answer above ``max_answer`` bytes is not read."""
        exc_ = self._exc
        base, longest, verify, retries_left = self._settings(config)
        timeout = base
        pool_kwargs: dict[str, Any] = {}
        url = request.url
        if url.startswith("https:"):
            if verify:
                pool_kwargs = {"cert_reqs": "CERT_REQUIRED"}
            else:
                self._warn_insecure(provider)
                pool_kwargs = {"cert_reqs": "CERT_NONE", "assert_hostname": False}
        attempts = 0
        scheme, hostname, port, where, path = _url_parts(url)
        while True:
            attempts += 1
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:  # checked before connecting: nothing of this attempt left
                    raise TransportError(f"send_timeout reached before the request to {where} was sent",
                                         not_sent=True, attempts=attempts - 1, url=_safe_url(url),
                                         kind="deadline")
                if remaining < longest:  # the deadline comes before a timeout would: the timeouts shrink
                    timeout = self._urllib3.Timeout(connect=min(base.connect_timeout, remaining),
                                                    read=min(base.read_timeout, remaining))
            _local.deadline, _local.watch = deadline, None
            resp = None
            try:
                pool = self._pool(scheme, hostname, port, pool_kwargs)
                resp = pool.urlopen(
                    request.method,
                    path,
                    body=request.body,
                    headers=dict(request.headers),
                    retries=False,
                    redirect=False,
                    timeout=timeout,
                    preload_content=False,
                    assert_same_host=False,
                )
                body = _read_capped(resp, max_answer)
                if self._end_watch():  # cut off just as the answer ended: the socket is not reused
                    resp.close()
                resp.release_conn()
                return HttpResponse._received(resp.status, tuple(resp.headers.iteritems()), body)
            except _AnswerTooLarge:
                self._end_watch()
                if resp is not None:
                    resp.close()  # not read any further, not reused
                    resp.release_conn()
                failure = (f"the answer of {where} is larger than {max_answer // 1024} KiB and was not read; "
                           f"{_MAY_HAVE_LEFT}", False, "too_large")
            except self._never_connected as exc:
                self._end_watch()
                # The connection was never made: the request certainly did not leave.
                if retries_left > 0 and (deadline is None or time.monotonic() < deadline):
                    retries_left -= 1
                    pause = min(MAX_BACKOFF, self.backoff * (2 ** (attempts - 1)))
                    if deadline is not None:
                        pause = max(0.0, min(pause, deadline - time.monotonic()))
                    time.sleep(pause)
                    continue
                failure = (f"could not connect to {scheme}://{where} after {attempts} attempt(s): "
                           f"{_short(exc)}", True, "connect")
            except Exception as exc:
                if resp is not None:
                    resp.close()
                    resp.release_conn()
                if self._end_watch():
                    failure = (f"no complete answer from {where} within send_timeout; {_MAY_HAVE_LEFT}",
                               False, "deadline")
                elif isinstance(exc, exc_.SSLError) and _certificate_refused(exc):
                    # verification is part of the handshake: nothing was written
                    failure = (f"the TLS certificate of {where} could not be verified: {_short(exc)} "
                               "(set verify_tls = false for this provider only if you must)", True, "tls_certificate")
                elif isinstance(exc, exc_.SSLError):  # urllib3 reports handshake and exchange TLS errors alike
                    failure = (f"TLS failed talking to {where} ({_short(exc)}); {_MAY_HAVE_LEFT}", False, "tls")
                elif isinstance(exc, exc_.ReadTimeoutError):
                    failure = (f"no answer from {where} within {timeout.read_timeout:g} s; {_MAY_HAVE_LEFT}",
                               False, "read_timeout")
                elif isinstance(exc, (exc_.ProtocolError, exc_.HTTPError, OSError)):
                    failure = (f"connection to {where} broke after the request was sent ({_short(exc)}); "
                               f"{_MAY_HAVE_LEFT}", False, "broken")
                else:
                    raise
            finally:
                _local.deadline = None
            message, not_sent, kind = failure
            raise TransportError(message, not_sent=not_sent, attempts=attempts, url=_safe_url(url), kind=kind)

    def _pool(self, scheme: str, host: str | None, port: int | None, pool_kwargs: dict[str, Any]) -> Any:
        """The host's connection pool, as ``PoolManager.connection_from_host`` finds it. urllib3
        builds the pool's key (a tuple of some thirty fields) on every call, which costs more than
        the rest of finding the pool: the key is made once per host and reused."""
        kind = (scheme, host, port, pool_kwargs.get("cert_reqs"))
        known = self._pool_keys.get(kind)
        if known is not None:
            key, context = known
            return self.pool.connection_from_pool_key(key, request_context=dict(context))  # (a new pool takes keys out)
        pool = self.pool.connection_from_host(host, port, scheme=scheme, pool_kwargs=pool_kwargs or None)
        # what connection_from_host asked for; kept only if it is the key urllib3 filed the pool under
        context = {**self.pool.connection_pool_kw, **pool_kwargs, "scheme": scheme, "host": host,
                   "port": self._default_ports.get(scheme, 80) if port is None else port}
        key = self.pool.key_fn_by_scheme[scheme](context)
        if self.pool.pools.get(key) is pool:
            if len(self._pool_keys) >= 64:  # hosts come from the config: a few
                self._pool_keys.clear()
            self._pool_keys[kind] = (key, context)
        return pool

    @staticmethod
    def _end_watch() -> bool:
        """End this thread's watch of its exchange; True if the deadline had cut it off."""
        watch, _local.watch = getattr(_local, "watch", None), None
        return watch.finish() if watch is not None else False

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


#: the operations whose answers may be as long as a send's (None: a context without one). Made once:
#: an import statement and enum members read through their class cost more per request than the rest
_SENDING = (Operation.SEND, Operation.SEND_BATCH, None)


@hookimpl(trylast=True)
def transmit(ctx: Any, request: HttpRequest) -> HttpResponse:
    transport = ctx.extras.get("transport") or default_transport()
    is_send = ctx.operation in _SENDING
    return transport.send(request, provider=ctx.provider, config=ctx.config, deadline=ctx.extras.get("deadline"),
                          max_answer=MAX_SEND_ANSWER if is_send else MAX_OTHER_ANSWER)
