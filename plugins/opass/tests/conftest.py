from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from smsgate import CallbackRequest, Gateway, HttpRequest, Message, Operation
from smsgate.errors import SmsError
from smsgate_opass.simulator import OpassSimulator


@pytest.fixture
def sim():
    with OpassSimulator() as simulator:
        yield simulator


def _make_gateway(sim: OpassSimulator, **overrides: Any) -> Gateway:
    kwargs = {k: overrides.pop(k) for k in ("clock", "nonce") if k in overrides}
    # pushes built in the tests carry no source address: accept them knowingly
    values = {**sim.demo_config(), "push_allow_ips": [], "push_auth": "none", **overrides}
    return Gateway({"providers": {"opass": values}}, **kwargs)


@pytest.fixture
def make_gateway():
    """``make_gateway(sim, **config_overrides, clock=..., nonce=...)`` -> Gateway on the simulator."""
    return _make_gateway


@pytest.fixture
def signed_request():
    """``signed_request(gw, operation, payload)`` -> the signed HttpRequest the pipeline would send."""
    return _signed_request


@pytest.fixture
def gateway(sim):
    return _make_gateway(sim)


def _signed_request(gw: Gateway, operation: Operation, payload: Any) -> HttpRequest:
    """Run validate/build/sign exactly as the pipeline does, without its batching."""
    hooks = gw.hooks("opass")
    ctx = gw.context("opass", operation)
    if isinstance(payload, Message):
        payload = hooks.validate_message(ctx=ctx, message=payload) or payload
    request = hooks.build_request(ctx=ctx, operation=operation, payload=payload)
    return hooks.sign(ctx=ctx, operation=operation, request=request) or request


class Receiver:
    """An application's push endpoint on 127.0.0.1 that hands every push to Gateway.handle_callback."""

    def __init__(self, gateway: Gateway):
        self.gateway = gateway
        self.events: list[Any] = []
        self.errors: list[SmsError] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = CallbackRequest(method="POST", path=self.path, headers=list(self.headers.items()),
                                          body=body)
                try:
                    result = receiver.gateway.handle_callback("opass", request)
                except SmsError as exc:
                    receiver.errors.append(exc)
                    self.send_response(403)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                receiver.events.extend(result.events)
                self.send_response(result.response.status)
                for k, v in result.response.headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(result.response.body)))
                self.end_headers()
                self.wfile.write(result.response.body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/opass/push"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(gateway):
    r = Receiver(gateway)
    yield r
    r.close()
