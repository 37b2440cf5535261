"""Fixtures: a running juse simulator and a push receiver that hands pushes to a Gateway."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from smsgate import AuthError, CallbackRequest, Gateway, ValidationError
from smsgate_juse.simulator import JuseSimulator

FIXED_TIME = 1726631416.0
FIXED_NONCE = "6bab44992f9e4164812824e4aaf51628"


@pytest.fixture
def sim():
    with JuseSimulator() as simulator:
        yield simulator


@pytest.fixture
def make_gateway(sim):
    """``make_gateway(**config_overrides, clock=..., nonce=..., extras=...)`` -> Gateway on the simulator."""

    def make(**overrides: Any) -> Gateway:
        kwargs = {k: overrides.pop(k) for k in ("clock", "nonce", "extras") if k in overrides}
        return Gateway({"providers": {"juse": {**sim.demo_config(), **overrides}}}, **kwargs)

    return make


class Receiver:
    """An HTTP endpoint on 127.0.0.1 that passes every POST to ``gateway.handle_callback``."""

    def __init__(self, gw: Gateway):
        self.gw = gw
        self.events: list[Any] = []
        self.refused = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = CallbackRequest(method="POST", path=self.path, headers=list(self.headers.items()), body=body)
                try:
                    result = receiver.gw.handle_callback("juse", request)
                    status, payload = result.response.status, result.response.body
                    receiver.events.extend(result.events)
                except AuthError:
                    receiver.refused += 1
                    status, payload = 401, b'{"code":401,"mes":"refused"}'
                except ValidationError:
                    status, payload = 400, b'{"code":400,"mes":"malformed"}'
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/juse_message/callback"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver_for():
    made: list[Receiver] = []

    def make(gw: Gateway) -> Receiver:
        r = Receiver(gw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()
