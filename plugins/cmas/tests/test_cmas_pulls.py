"""Report and inbound pulls, and the document's one-call-per-5-seconds rule (注3).

No test waits for real: the simulator's window runs on a clock the test moves, and the Gateway's
wait is observed through a stand-in for its ``time`` module.
"""

from __future__ import annotations

import types

import pytest

import smsgate.sending.gateway
from smsgate import AuthError, InboundMessage, Message, Operation, PullQuery, RateLimited, Status
from smsgate_cmas.plugin import CAPABILITIES


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(sim, monkeypatch):
    """One fake clock for the simulator's window and for the Gateway's wait."""
    fake = FakeClock()
    sim.clock = fake
    monkeypatch.setattr(smsgate.sending.gateway, "time", types.SimpleNamespace(monotonic=fake, sleep=fake.sleep, time=fake))
    return fake


def test_capabilities_declare_one_budget_for_both_pulls():
    # 注3, the cautious reading: one call per 5 s for the report and the inbound pull together
    [budget] = CAPABILITIES.budgets
    assert budget.operations == {Operation.PULL_REPORTS, Operation.PULL_INBOUND}
    assert (budget.calls, budget.per) == (1, 5.0)
    assert CAPABILITIES.budgets_for(Operation.PULL_INBOUND) == (budget,)
    assert not CAPABILITIES.callbacks


def test_reports_correlate_with_sends_by_group_and_mobile(sim, make_gateway, clock):
    gw = make_gateway(sim)
    text = gw.send(Message(to=["13800138000", "13900139000"], text="通知"))
    tmpl = gw.send(Message(to=["13700137000"], template_id="T1", params=["1"]))
    assert text.ok and tmpl.ok
    sim.report("13900139000", text.message_ids[0], status="UNDELIV", error_code="DB:0140")
    assert sim.deliver_all() == 2  # the two not reported yet
    reports = gw.pull_reports("cmas", PullQuery(message_ids=tuple(tmpl.message_ids)))
    by_key = {(r.message_id, r.phone): r for r in reports}
    assert set(by_key) == {(text.message_ids[0], "13800138000"), (text.message_ids[0], "13900139000"),
                           (tmpl.message_ids[0], "13700137000")}
    failed = by_key[(text.message_ids[0], "13900139000")]
    assert failed.status is Status.FAILED and failed.raw_status == "UNDELIV" and failed.description == "DB:0140"
    ok = by_key[(tmpl.message_ids[0], "13700137000")]
    assert ok.status is Status.DELIVERED and ok.raw_status == "DELIVRD" and ok.description is None
    assert ok.reported_at == "20240918113020" and ok.raw["submitDate"] == "20240918113016"
    # the platform hands each report out once
    clock.now += 5
    assert gw.pull_reports("cmas") == []


@pytest.mark.parametrize("status", ["UNDELIV", "EXPIRED", "REJECTD", "", "MK:0001"])
def test_anything_but_delivrd_is_failed_with_its_error_code(sim, make_gateway, clock, status):
    sim.report("13800138000", "G9", status=status, error_code="MK:0001")
    [report] = make_gateway(sim).pull_reports("cmas")
    assert report.status is Status.FAILED and report.description == "MK:0001"


def test_inbound_pull(sim, make_gateway, clock):
    sim.add_inbound("13800138000", "退订 TD", add_serial="10657001", send_time="2024-09-18 11:30:16")
    [msg] = make_gateway(sim).pull_inbound("cmas")
    assert isinstance(msg, InboundMessage)
    assert (msg.phone, msg.content, msg.received_at, msg.service_code) == (
        "13800138000", "退订 TD", "2024-09-18 11:30:16", "10657001")
    assert sim.requests[-1].path == "/sms/deliver"


def test_a_pull_returns_at_most_1000(sim, make_gateway, clock):
    for i in range(1001):
        sim.report(f"138{i:08d}", "G1")
    gw = make_gateway(sim)
    assert len(gw.pull_reports("cmas")) == 1000
    clock.now += 5
    assert len(gw.pull_reports("cmas")) == 1


def test_simulator_refuses_a_second_pull_inside_5_seconds(sim, make_gateway, clock):
    # two Gateways (two processes, say) do not share the wait: the platform refuses the second
    first, second = make_gateway(sim), make_gateway(sim)
    first.pull_reports("cmas")
    clock.now += 4.9
    with pytest.raises(RateLimited) as err:
        second.pull_reports("cmas")
    assert err.value.code == "TooFrequent" and err.value.retry_after == 5.0 and err.value.provider == "cmas"
    assert sim.answers[-1].status == 429
    # the simulator reads 注3 cautiously: the other pull shares the window
    with pytest.raises(RateLimited):
        make_gateway(sim).pull_inbound("cmas")
    # once the window has passed the platform answers again
    clock.now += 0.1
    assert first.pull_reports("cmas") == []
    assert [a.status for a in sim.answers] == [200, 429, 429, 200]


def test_poll_once_spaces_the_two_pulls_by_5_seconds(sim, make_gateway, clock, tmp_path):
    # `smsgate poll --once` pulls reports then inbound: the second waits out the shared window
    from smsgate.receiving import Spool
    from smsgate.receiving.poller import Poller

    sim.report("13800138000", "G1")
    sim.add_inbound("13800138000", "Y")
    with Spool(tmp_path / "spool.sqlite3") as spool:
        poller = Poller(make_gateway(sim), spool)
        assert poller.min_interval("cmas", Operation.PULL_INBOUND) == 10.0  # taking turns
        outcomes = poller.poll_once()
    assert [(o.operation, o.stored, o.error) for o in outcomes] == [
        (Operation.PULL_REPORTS, 1, None), (Operation.PULL_INBOUND, 1, None)]
    assert clock.slept == [pytest.approx(5.0)]
    assert [a.status for a in sim.answers] == [200, 200]


def test_with_one_window_per_pull_the_simulator_takes_both_at_once(sim, make_gateway, clock):
    sim.shared_pull_window = False  # the other reading of 注3
    first, second = make_gateway(sim), make_gateway(sim)
    first.pull_reports("cmas")
    second.pull_inbound("cmas")
    assert [a.status for a in sim.answers] == [200, 200]


def test_one_gateway_waits_out_the_interval_instead_of_being_refused(sim, make_gateway, clock):
    gw = make_gateway(sim)
    sim.report("13800138000", "G1")
    assert len(gw.pull_reports("cmas")) == 1
    sim.report("13900139000", "G2")
    assert len(gw.pull_reports("cmas")) == 1
    assert clock.slept == [pytest.approx(5.0)]
    assert [a.status for a in sim.answers] == [200, 200]


def test_pull_with_a_wrong_password_is_an_auth_error(sim, make_gateway):
    with pytest.raises(AuthError) as err:
        make_gateway(sim, secret_key="Wrong#Secret").pull_reports("cmas")
    assert err.value.code == "InvalidUsrOrPwd"
    with pytest.raises(AuthError):
        make_gateway(sim, ap_id="nobody").pull_inbound("cmas")
