"""The query calls: send statistics (/sms/send/statistics), the one budget the FAQ gives every query
call (three a minute per account, balance besides once per 15 s, statistics besides four a minute),
the poll interval and the default domain.

No test waits for real: the simulator's clock, the signatures' clock and the Gateway's budget
clock are one fake clock whose sleeps are recorded.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest

from smsgate import (Gateway, Message, Operation, ProviderError, PullQuery, RateLimited, StatisticsQuery,
                     ValidationError)
from smsgate_opass import plugin
from smsgate_opass.simulator import DEMO_TEMPLATE

NOW = 1726631416.0  # 2024-09-18 11:50:16 China time


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds


@pytest.fixture
def clock(sim):
    fake = FakeClock()
    sim.clock = fake
    return fake


def paced(sim, clock) -> Gateway:
    """A Gateway whose signatures and budget waits run on the fake clock."""
    gw = Gateway({"providers": {"opass": sim.demo_config()}}, clock=clock)
    gw.monotonic, gw.sleep = clock, clock.sleep
    return gw


def send_some(gw, sim, phones=("13800138000", "13900139000")):
    result = gw.send(Message(to=list(phones), template_id=DEMO_TEMPLATE, params=["a", "b"]))
    assert result.ok
    return result


# -- the default domain ----------------------------------------------------------------------------

def test_the_default_domain_is_the_one_the_document_recommends():
    gw = Gateway({"providers": {"opass": {"api_key": "k", "access_key": "s"}}}, environ={})
    assert gw.provider("opass")[1].base_url == "https://opassapi.infocloud.com.cn"
    assert gw.context("opass").url("/message/send") == "https://opassapi.infocloud.com.cn/message/send"


# -- one budget over every query call ------------------------------------------------------------

def test_pull_balance_and_statistics_share_three_calls_a_minute_and_wait_instead_of_6000(sim, clock):
    gw = paced(sim, clock)
    gw.pull_reports("opass")
    gw.balance("opass")
    gw.statistics("opass", start="2024-09-18", end="2024-09-18")
    assert clock.slept == []  # three query calls: the budget is spent
    gw.pull_reports("opass")  # the fourth waits for the first to leave the minute
    assert clock.slept == [60.0]
    # the simulator answered every one of them: four verified calls, no 6000
    assert len(sim.verified) == 4 and len(sim.requests_to("/sms/arriveRes/qry")) == 2


def test_balance_also_keeps_its_15_seconds(sim, clock):
    gw = paced(sim, clock)
    gw.balance("opass")
    gw.balance("opass")
    assert clock.slept == [15.0]


def test_the_simulator_refuses_a_fourth_query_call_in_a_minute_with_6000(sim, clock):
    # separate Gateways (processes) do not share the budget yet: the vendor refuses the fourth
    for call in (lambda g: g.pull_reports("opass"), lambda g: g.pull_reports("opass"),
                 lambda g: g.statistics("opass", start="2024-09-18", end="2024-09-18")):
        call(paced(sim, clock))
    with pytest.raises(RateLimited) as err:
        paced(sim, clock).balance("opass")
    assert err.value.code == "6000" and err.value.not_sent
    clock.now += 60
    assert paced(sim, clock).balance("opass").amount == 9784


def test_statistics_have_their_own_four_a_minute_beside_the_query_budget(sim, clock):
    sim.query_calls_per_minute = 0  # only the statistics' own limit
    for _ in range(4):
        paced(sim, clock).statistics("opass", start="2024-09-18", end="2024-09-18")
    with pytest.raises(RateLimited):
        paced(sim, clock).statistics("opass", start="2024-09-18", end="2024-09-18")


def test_send_calls_do_not_spend_the_query_budget(sim, clock):
    gw = paced(sim, clock)
    for _ in range(5):
        send_some(gw, sim)
    gw.pull_reports("opass")
    assert clock.slept == []


# -- statistics ------------------------------------------------------------------------------------

def test_statistics_count_sends_and_reports_per_day(sim, clock):
    gw = paced(sim, clock)
    first = send_some(gw, sim, ["13800138000", "13900139000", "13700137000"])
    sim.deliver_all(statuses={"13900139000": "UNDELIV"})
    clock.now += 86400  # the next day
    send_some(gw, sim, ["13800138000"])
    stats = gw.statistics("opass", start="2024-09-17", end="2024-09-20")
    assert [(d.date, d.sent, d.delivered, d.failed, d.no_report) for d in stats.days] == [
        ("2024-09-18", 3, 2, 1, 0), ("2024-09-19", 1, 0, 0, 1)]
    assert (stats.provider, stats.page, stats.page_size, stats.total) == ("opass", 1, 50, 2)
    assert stats.days[0].raw["sendDate"] == "2024-09-18"
    assert first.ok
    sent = sim.verified[-1]["fields"]
    assert sent == {"startDate": "2024-09-17", "endDate": "2024-09-20", "page": 1, "pageSize": 50}


def test_statistics_pages(sim, clock):
    gw = paced(sim, clock)
    for _ in range(3):
        send_some(gw, sim, ["13800138000"])
        clock.now += 86400
    page = gw.statistics("opass", StatisticsQuery(start="2024-09-01", end="2024-09-30", page=2, page_size=2))
    assert [d.date for d in page.days] == ["2024-09-20"] and page.total == 3 and page.page == 2


@pytest.mark.parametrize("kwargs,field", [
    ({"start": "2024-09-18", "end": "2024-09-17"}, "end"),
    ({"start": "2024/09/18", "end": "2024-09-18"}, "start"),
    ({"start": "20240918", "end": "2024-09-18"}, "start"),
    ({"start": "2024-09-18", "end": "tomorrow"}, "end"),
    ({"start": "2024-09-18", "end": "2024-09-18", "page": 0}, "page"),
    ({"start": "2024-09-18", "end": "2024-09-18", "page_size": 0}, "page_size"),
    ({"start": "2024-09-18", "end": "2024-09-18", "page_size": 51}, "page_size"),
    ({"start": "2024-09-18"}, "end"),
])
def test_bad_statistics_queries_are_refused_before_sending(sim, clock, kwargs, field):
    with pytest.raises(ValidationError) as err:
        paced(sim, clock).statistics("opass", **kwargs)
    assert err.value.field == field
    assert not sim.requests


def test_the_simulator_enforces_the_page_size(sim, clock, monkeypatch):
    monkeypatch.setattr(plugin, "MAX_STATISTICS_PAGE_SIZE", 100)  # let a bad page size through
    with pytest.raises(ProviderError) as err:
        paced(sim, clock).statistics("opass", start="2024-09-18", end="2024-09-18", page_size=51)
    assert err.value.code == "40004" and "pageSize" in str(err.value)


def test_statistics_is_an_offered_operation_with_a_date_range():
    assert Operation.STATISTICS in plugin.CAPABILITIES.operations
    q = StatisticsQuery(start=dt.date(2024, 9, 1), end=dt.datetime(2024, 9, 2, 10, 0))
    assert (q.start, q.end, q.page, q.page_size) == (dt.date(2024, 9, 1), dt.date(2024, 9, 2), 1, 50)


def test_async_gateway_statistics(sim, clock):
    import asyncio

    from smsgate import AsyncGateway

    async def main():
        agw = AsyncGateway(gateway=paced(sim, clock))
        try:
            return await agw.statistics("opass", start="2024-09-18", end="2024-09-18")
        finally:
            await agw.aclose()

    assert asyncio.run(main()).days == ()


# -- the CLI -----------------------------------------------------------------------------------------

def smsgate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smsgate.cli", *args], capture_output=True, text=True,
                          encoding="utf-8", timeout=120)


def write_config(path, sim):
    path.write_text("[providers.opass]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in sim.demo_config().items()),
                    encoding="utf-8")
    return str(path)


def test_stats_command(sim, tmp_path):
    gw = Gateway({"providers": {"opass": sim.demo_config()}})
    send_some(gw, sim)
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date().isoformat()
    config = write_config(tmp_path / "smsgate.toml", sim)
    proc = smsgate("stats", "--config", config, "--provider", "opass", "--from", "2024-01-01", "--to", today, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["provider"] == "opass" and out["total"] == 1
    assert out["days"] == [{"date": today, "sent": 2, "delivered": 0, "failed": 0, "no_report": 2}]
    proc = smsgate("stats", "--config", config, "--provider", "opass", "--from", today, "--to", today)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["date\tsent\tdelivered\tfailed\tno_report", f"{today}\t2\t0\t0\t2"]


def test_stats_command_with_a_bad_date_is_one_line_and_exit_2(sim, tmp_path):
    config = write_config(tmp_path / "smsgate.toml", sim)
    proc = smsgate("stats", "--config", config, "--provider", "opass", "--from", "2024-13-01", "--to", "2024-12-01")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "start" in proc.stderr and "Traceback" not in proc.stderr
    assert not sim.requests


def test_processes_on_one_limits_store_share_the_query_budget(sim, redis_url, service_run_id):
    """Separate Gateways (processes) on one Redis limits store: the fourth query call of the minute
    is held back here (RATE_LIMITED, nothing sent) instead of reaching the vendor for a 6000."""
    limits = {"store": redis_url, "prefix": service_run_id + ":query:", "query_wait": 0.5}

    def gateway():
        return Gateway({"providers": {"opass": sim.demo_config()}, "limits": limits})

    gateway().pull_reports("opass")
    gateway().statistics("opass", start="2024-09-18", end="2024-09-18")
    gateway().pull_reports("opass")
    with pytest.raises(RateLimited) as err:
        gateway().balance("opass")
    assert err.value.code == "RATE_LIMITED" and err.value.not_sent
    assert len(sim.verified) == 3 and not sim.requests_to("/sms/residueValue/qry")
