"""AsyncGateway: the same outcomes as Gateway, and the event loop keeps running while sends wait."""

from __future__ import annotations

import asyncio
import threading

import pytest

from smsgate import AsyncGateway, Message, Outcome
from smsgate.testing.loopback import LoopbackSimulator


class GatedSimulator(LoopbackSimulator):
    """Holds every send's answer until ``gate`` is set, counting the requests that wait."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.waiting = 0
        self._count_lock = threading.Lock()

    def handle(self, request):
        with self._count_lock:
            self.waiting += 1
        self.gate.wait(30)
        return super().handle(request)


def phones(n: int) -> list[str]:
    return [f"138{i:08d}" for i in range(n)]


def test_500_concurrent_sends_leave_the_loop_running_and_each_phone_is_sent_once():
    sim = GatedSimulator().start()
    try:
        async def main() -> tuple[list, int]:
            ticks = 0
            async with AsyncGateway({"providers": {"loopback": sim.demo_config()}}, max_workers=50) as gw:
                sends = [asyncio.ensure_future(gw.send(Message(to=[p], template_id="LB_CODE", params=["1"])))
                         for p in phones(500)]
                # The simulator answers nothing until this coroutine opens the gate, and it can only
                # run if no send blocks the loop: a blocked loop would never get here (timeout).
                while sim.waiting < 50:
                    await asyncio.sleep(0.005)
                    ticks += 1
                for _ in range(20):  # the loop keeps serving other work while 50 sends are held
                    await asyncio.sleep(0)
                    ticks += 1
                sim.gate.set()
                results = await asyncio.wait_for(asyncio.gather(*sends), timeout=120)
            return results, ticks

        results, ticks = asyncio.run(main())
    finally:
        sim.gate.set()
        sim.stop()
    assert ticks >= 20
    assert [r.recipients[0].outcome for r in results] == [Outcome.ACCEPTED] * 500
    sent = [r.json()["phones"] for r in sim.requests if r.path.endswith("/send")]
    flat = [p for group in sent for p in (group if isinstance(group, list) else [group])]
    assert sorted(flat) == sorted(phones(500))


def test_async_outcomes_match_the_sync_gateway(loopback_simulator):
    loopback_simulator.backend.reject_numbers = {"13900139000"}
    config = {"providers": {"loopback": loopback_simulator.demo_config()}}

    async def main():
        async with AsyncGateway(config) as gw:
            sent = await gw.send(Message(to=["13800138000", "13900139000"], template_id="LB_CODE", params=["1"]))
            loopback_simulator.deliver_all()
            reports = await gw.pull_reports()
            balance = await gw.balance()
            return sent, reports, balance

    sent, reports, balance = asyncio.run(main())
    assert [r.outcome for r in sent.recipients] == [Outcome.ACCEPTED, Outcome.REJECTED]
    assert {r.phone for r in reports} == {"13800138000"}
    assert balance.provider == "loopback"


def test_errors_raise_in_the_awaiting_task():
    from smsgate import ValidationError

    async def main():
        async with AsyncGateway({"providers": {"loopback": {}}}) as gw:
            await gw.send(Message(to=["123"], text="hi"))

    with pytest.raises(ValidationError, match="123"):
        asyncio.run(main())


def test_wrapping_a_gateway_and_bad_arguments():
    from smsgate import Gateway

    gw = Gateway({"providers": {"loopback": {}}})
    assert AsyncGateway(gateway=gw).gateway is gw
    with pytest.raises(TypeError):
        AsyncGateway({"providers": {}}, gateway=gw)
    with pytest.raises(ValueError):
        AsyncGateway(gateway=gw, max_workers=0)
