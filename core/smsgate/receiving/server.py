"""Serving a Receiver: the ASGI adapter, a background WSGI server for tests and the demo, and the
production server behind `smsgate serve`."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from ..log import get_logger

from .receiver import _error

if TYPE_CHECKING:
    from .receiver import Receiver

log = get_logger("smsgate.callbacks")

class AsgiApp:
    """ASGI adapter: reads the body, runs the (blocking: SQLite commit) flow in a thread."""

    def __init__(self, receiver: Receiver):
        self.receiver = receiver

    async def __call__(self, scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        import asyncio

        body = bytearray()
        too_large = False
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body.extend(message.get("body", b""))
            if len(body) > self.receiver.max_body:
                too_large = True
                break
            if not message.get("more_body"):
                break
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])]
        if too_large:
            response = _error(413, "body too large")
        else:
            path = scope.get("path", "/")
            root = scope.get("root_path") or ""
            if root and path.startswith(root) and self.receiver.route(path[len(root):]) is not None:
                path = path[len(root):]
            client = scope.get("client")
            query = scope.get("query_string", b"").decode("latin-1")
            loop = asyncio.get_running_loop()
            response = await loop.run_in_executor(
                None, self.receiver.handle_path, scope.get("method", "GET"), path, headers, bytes(body),
                client[0] if client else None, query)
        out_headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers
                       if k.lower() != "content-length"]
        out_headers.append((b"content-length", str(len(response.body)).encode()))
        await send({"type": "http.response.start", "status": response.status, "headers": out_headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _lifespan(self, receive: Callable[..., Any], send: Callable[..., Any]) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self.receiver.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.receiver.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


# -- running a server ---------------------------------------------------------------------------

def _text(host: str | bytes | bytearray) -> str:
    """A socket address's host as text (typeshed allows bytes for some address families)."""
    return host.decode() if isinstance(host, (bytes, bytearray)) else host


class BackgroundServer:
    """A WSGI app on a stdlib threaded server in a thread (demo, tests). ``smsgate serve`` uses
    waitress instead; this needs no extra package."""

    def __init__(self, app: Callable[..., Any], host: str = "127.0.0.1", port: int = 0, idle_timeout: float | None = None):
        from socketserver import ThreadingMixIn
        from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

        class _Server(ThreadingMixIn, WSGIServer):
            daemon_threads = True
            request_queue_size = 128

        class _Quiet(WSGIRequestHandler):
            timeout = idle_timeout  # a silent client's thread is freed after this many seconds

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Server((host, port), _Quiet)
        self.server.set_app(app)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       name="smsgate-receiver", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{_text(host)}:{port}"

    def start(self) -> "BackgroundServer":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> "BackgroundServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


#: request threads of `smsgate serve`. They only verify, parse and store (the handlers run in their
#: own process or threads) and share one GIL, so a few keep it busy; with more, every push in
#: flight gets a smaller share of it and waitress's I/O thread, which reads every body, waits
#: longer for it. Pushes beyond these wait in waitress's queue, answered in the order they came.
THREADS = 6
#: what one client may hold of `smsgate serve` (each also a `[receiver]` key; see docs/receiving.md)
CONNECTION_LIMIT = 1000  #: open connections at once; more wait in the listen backlog
IDLE_TIMEOUT = 10.0  #: seconds a connection may stay idle (no complete request) before it is closed


def _listen_error(host: str, port: int, exc: OSError) -> ConfigError:
    import errno

    why = {errno.EADDRINUSE: "the address is already in use (another server on that port?)",
           errno.EACCES: "permission denied (ports below 1024 need privileges)",
           errno.EADDRNOTAVAIL: "no such address on this host"}.get(exc.errno or 0, exc.strerror or str(exc))
    return ConfigError(f"cannot listen on {host}:{port}: {why}")


def run_server(app: Callable[..., Any], host: str, port: int, threads: int = THREADS, server: str = "auto",
               on_bound: Callable[[str, int], None] | None = None, max_body: int | None = None,
               connection_limit: int = CONNECTION_LIMIT, idle_timeout: float = IDLE_TIMEOUT) -> None:
    """Serve ``app`` until SIGINT/SIGTERM: waitress if installed (``pip install 'smsgate[serve]'``),
    else (``server="wsgiref"`` or waitress missing, with a warning) the stdlib threaded server.

    What a client can hold is bounded: a body larger than ``max_body`` is answered 413 while it is
    read (waitress stops reading at the limit, so nothing beyond it is buffered or written to a
    temporary file); at most ``connection_limit`` connections are open at once; a connection that
    has not sent a complete request for ``idle_timeout`` seconds is closed. Idle or slow
    connections hold no request thread. A port that cannot be bound raises ConfigError.
    """
    import signal

    use_waitress = server in ("auto", "waitress")
    if use_waitress:
        try:
            import waitress.server  # noqa: F401
        except ImportError:
            if server == "waitress":
                raise ConfigError("waitress is not installed: pip install 'smsgate[serve]'") from None
            log.warning("smsgate.serve.no_waitress", hint="pip install 'smsgate[serve]'; using the stdlib server")
            use_waitress = False

    def _terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    if use_waitress:
        import waitress.server

        limits: dict[str, Any] = {}
        if max_body is not None:
            limits["max_request_body_size"] = max_body
        try:
            srv = waitress.server.create_server(
                app, host=host, port=port, threads=threads, ident="smsgate", clear_untrusted_proxy_headers=True,
                connection_limit=connection_limit, channel_timeout=idle_timeout,
                # the idle check runs every cleanup_interval: make it as quick as the timeout asks
                cleanup_interval=max(0.5, min(idle_timeout / 2, 30.0)),
                asyncore_use_poll=True,  # select() cannot watch more than 1024 sockets
                **limits)
        except OSError as exc:
            raise _listen_error(host, port, exc) from None
        bound_host, bound_port = srv.socket.getsockname()[:2]
        try:
            if on_bound:  # connections wait in the listen backlog until it returns
                on_bound(bound_host, bound_port)
            srv.run()
        except KeyboardInterrupt:
            pass
        finally:
            srv.close()
    else:
        try:
            bg = BackgroundServer(app, host, port, idle_timeout=idle_timeout)
        except OSError as exc:
            raise _listen_error(host, port, exc) from None
        host_, port_ = bg.server.server_address[:2]
        try:
            if on_bound:
                on_bound(_text(host_), int(port_))
            bg.server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            bg.server.server_close()
