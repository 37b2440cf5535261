"""Simulator harness: a threaded HTTP server on 127.0.0.1 (ephemeral port) that a plugin
subclasses to speak its vendor's API. It records every request and can inject faults."""

from __future__ import annotations

import enum
import json
import socket
import struct
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import attrs

from ..models import CallbackRequest, HttpResponse


class Fault(str, enum.Enum):
    HTTP_500 = "http_500"  #: answer 500 with an error page
    SLOW = "slow"  #: handle the request, then answer only after ``slow_seconds``
    RESET_BEFORE_READ = "reset_before_read"  #: reset the connection without reading the request
    RESET_AFTER_READ = "reset_after_read"  #: read (and record) the request, then reset instead of answering
    MALFORMED = "malformed"  #: answer 200 with a body that is not the vendor's format


@attrs.frozen(kw_only=True)
class SimRequest:
    """A request the simulator received."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    received_at: float

    def header(self, name: str) -> str | None:
        low = name.lower()
        for k, v in self.headers:
            if k.lower() == low:
                return v
        return None

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def as_callback(self) -> CallbackRequest:
        path, _, query = self.path.partition("?")
        return CallbackRequest(method=self.method, path=path, headers=self.headers, body=self.body, query=query)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # listen() runs in the constructor, so the backlog must be set on the class: the default of 5
    # resets connections when a test or benchmark opens dozens at once
    request_queue_size = 128


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "smsgate-simulator"
    sim: "SimulatorServer"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without NODELAY, Nagle and delayed ACKs
        # would add ~40 ms to every keep-alive exchange
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

    def _reset(self) -> None:
        # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def _serve(self) -> None:
        sim = self.sim
        fault = sim._take_fault(self.path)
        if fault is Fault.RESET_BEFORE_READ:
            sim.resets_before_read += 1
            self._reset()
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        req = SimRequest(method=self.command, path=self.path, headers=tuple(self.headers.items()), body=body,
                         received_at=time.time())
        with sim._lock:
            sim.requests.append(req)
        if fault is Fault.RESET_AFTER_READ:
            self._reset()
            return
        if fault is Fault.HTTP_500:
            response = HttpResponse(status=500, headers={"Content-Type": "text/html"},
                                    body=b"<html><body>500 Internal Server Error</body></html>")
        elif fault is Fault.MALFORMED:
            response = HttpResponse(status=200, headers={"Content-Type": "application/json"},
                                    body=b"{\"this is not\": valid json")
        else:
            try:
                response = sim.handle(req)
            except Exception as exc:  # a simulator bug shows as a 500 with the error, never a hang
                response = HttpResponse(status=500, body=f"simulator error: {type(exc).__name__}: {exc}".encode())
            if fault is Fault.SLOW:
                time.sleep(sim.slow_seconds)
        self.send_response(response.status)
        sent_length = False
        for k, v in response.headers:
            if k.lower() == "content-length":
                sent_length = True
            self.send_header(k, v)
        if not sent_length:
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        try:
            self.wfile.write(response.body)
        except OSError:
            pass

    do_POST = _serve
    do_GET = _serve
    do_PUT = _serve


class SimulatorServer:
    """Subclass and implement :meth:`handle` to speak a vendor's API.

    Use as a context manager (or ``start()``/``stop()``)::

        with MySimulator() as sim:
            config = sim.demo_config()
            ...
            assert len(sim.requests) == 1
    """

    #: seconds a ``Fault.SLOW`` answer waits; tests set the client's read timeout below it
    slow_seconds: float = 1.5

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host = host
        self._port = port
        self.requests: list[SimRequest] = []
        self.resets_before_read = 0
        self._faults: deque[tuple[Fault, str | None]] = deque()
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- subclass API ----------------------------------------------------------------------
    def handle(self, request: SimRequest) -> HttpResponse:
        """Answer one request as the vendor would. Subclasses implement this."""
        raise NotImplementedError

    def demo_config(self) -> dict[str, Any]:
        """Provider config values that point at this simulator (used by the demo and the tests)."""
        return {"base_url": self.url}

    def demo_message(self, operation: Any = None) -> Any:
        """A message this vendor accepts, for the demo and the conformance suite."""
        raise NotImplementedError

    def deliver_all(self) -> int:
        """Turn every accepted message into a delivery report (pushed or kept for a pull).
        Returns how many reports were made. Simulators without reports return 0."""
        return 0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> "SimulatorServer":
        handler = type("SimHandler", (_Handler,), {"sim": self})
        server = _Server((self.host, self._port), handler)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"{type(self).__name__}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "SimulatorServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "simulator not started"
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- faults and records ----------------------------------------------------------------
    def inject(self, fault: Fault | str, times: int = 1, path: str | None = None) -> None:
        """Make the next ``times`` requests (to ``path``, if given) suffer ``fault``."""
        fault = Fault(fault)
        with self._lock:
            for _ in range(times):
                self._faults.append((fault, path))

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for i, (fault, fpath) in enumerate(self._faults):
                if fpath is None or path.split("?")[0].endswith(fpath):
                    del self._faults[i]
                    return fault
        return None

    def requests_to(self, path_suffix: str) -> list[SimRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.split("?")[0].endswith(path_suffix)]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self._faults.clear()
            self.resets_before_read = 0

    # -- pushes ----------------------------------------------------------------------------
    @staticmethod
    def push(url: str, body: bytes, headers: dict[str, str] | None = None, timeout: float = 10.0) -> HttpResponse:
        """POST a push to the application's receiver, as the vendor would. Returns its answer."""
        import urllib.error
        import urllib.request

        req = urllib.request.Request(url, data=body, method="POST", headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return HttpResponse(status=resp.status, headers=list(resp.headers.items()), body=resp.read())
        except urllib.error.HTTPError as err:
            return HttpResponse(status=err.code, headers=list(err.headers.items()), body=err.read())


def load_simulator(path: str) -> type:
    """Import a simulator class from ``module:Class``."""
    import importlib

    module, _, attr = path.partition(":")
    cls: type = getattr(importlib.import_module(module), attr)
    return cls
