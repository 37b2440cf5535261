"""A loopback server that speaks the Acme API, checking signatures as Acme would."""

from __future__ import annotations

import hmac
import itertools
import json
from typing import Any

from smsgate import HttpResponse, Message
from smsgate.testing import SimRequest, SimulatorServer

from .dialect import acme_signature


class AcmeSimulator(SimulatorServer):
    account, password = "demo", "demo-password"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self.batches = itertools.count(1)

    def handle(self, request: SimRequest) -> HttpResponse:
        def error(code: str, detail: str, status: int = 400) -> HttpResponse:
            return HttpResponse.of_json({"status": "error", "code": code, "detail": detail}, status=status)

        ts, sig = request.header("X-Acme-Time") or "", request.header("X-Acme-Sign") or ""
        if not hmac.compare_digest(acme_signature(self.password, ts, request.body), sig):
            return error("AUTH", "bad signature", 401)
        data = json.loads(request.body)
        if data.get("account") != self.account:
            return error("AUTH", "unknown account", 401)
        if not data.get("phones") or len(data["phones"]) > 50 or not data.get("text"):
            return error("INPUT", "phones (1..50) and text are required")
        return HttpResponse.of_json({"status": "ok", "batch": f"B{next(self.batches)}", "bad": []})

    def demo_config(self) -> dict[str, Any]:
        return {"base_url": self.url, "account": self.account, "password": self.password}

    def demo_message(self, operation: Any = None) -> Message:
        return Message(to=["13800138000", "13900139000"], text="Your code is 1234")
