"""The loopback vendor over real HTTP, for the demo, the benchmarks and the core's own tests."""

from __future__ import annotations

import json
from typing import Any

from ..default_plugins.loopback import LoopbackBackend, signature
from ..models import HttpResponse, Message, Operation
from .simulator import SimRequest, SimulatorServer


class LoopbackSimulator(SimulatorServer):
    def __init__(self, host: str = "127.0.0.1", port: int = 0, api_key: str = "demo-key",
                 api_secret: str = "demo-secret", reject_numbers: Any = ()):
        super().__init__(host, port)
        self.backend = LoopbackBackend(api_key, api_secret, reject_numbers, records=[])

    @property
    def records(self) -> list[Any]:
        return self.backend.records

    def handle(self, request: SimRequest) -> HttpResponse:
        return self.backend.handle(request.method, request.path, dict(request.headers), request.body)

    def demo_config(self) -> dict[str, Any]:
        return {"base_url": self.url, "api_key": self.backend.api_key, "api_secret": self.backend.api_secret}

    def demo_message(self, operation: Any = None) -> Message:
        if operation == Operation.SEND_BATCH:
            return Message.personalised({"13800138000": ["1234"], "13900139000": ["5678"]}, template_id="LB_CODE")
        return Message(to=["13800138000"], template_id="LB_CODE", params=["1234"], sign_name="smsgate")

    def deliver_all(self) -> int:
        return len(self.backend.deliver_all())

    def push_reports(self, url: str, now: float) -> Any:
        """Push every undelivered report to ``url``, signed."""
        reports = self.backend.deliver_all()
        body = json.dumps({"reports": reports}).encode()
        ts, nonce = str(int(now)), f"n{int(now * 1000)}"
        headers = {"Content-Type": "application/json", "X-Timestamp": ts, "X-Nonce": nonce,
                   "X-Signature": signature(self.backend.api_secret, ts, nonce, body)}
        return self.push(url, body, headers)


def main() -> None:  # pragma: no cover - used by benchmarks to run the simulator in its own process
    """``python -m smsgate.testing.loopback``: serve until stdin closes; prints the URL first."""
    import sys

    sim = LoopbackSimulator()
    sim.start()
    # keep memory flat during long benchmarks: the simulator does not need its request log
    sim.requests = _Discard()
    sim.backend.records = _Discard()
    print(sim.url, flush=True)
    try:
        sys.stdin.read()
    finally:
        sim.stop()


class _Discard(list[Any]):
    def append(self, item: Any) -> None:
        pass


if __name__ == "__main__":  # pragma: no cover
    main()
