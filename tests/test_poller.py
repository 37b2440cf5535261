"""The poller: pulls into the same spool as pushes, deduplicated; errors back off, never stop it."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from smsgate import Budget, Capabilities, Gateway
from smsgate.receiving import BackgroundServer, Receiver
from smsgate.models import Operation
from smsgate.receiving.poller import Poller, PullOutcome, pull_targets
from smsgate.testing import LoopbackSimulator


@pytest.fixture
def sim():
    with LoopbackSimulator() as s:
        yield s


def test_pulled_reports_reach_handlers(sim, tmp_path):
    gw = Gateway({"providers": {"loopback": sim.demo_config()}})
    rc = Receiver(gw, spool=tmp_path / "s.sqlite3", poll_interval=0.05)
    got = []
    rc.on_report(got.append, name="collect")
    try:
        assert gw.send(sim.demo_message(), provider="loopback").ok
        sim.deliver_all()
        poller = Poller(gw, rc.spool)
        assert poller.targets == [("loopback", Operation.PULL_REPORTS)]
        [outcome] = poller.poll_once()
        assert (outcome.events, outcome.stored, outcome.error) == (1, 1, None)
        assert rc.drain()
        assert rc.spool.events()[0].source == "pull"
    finally:
        rc.close()
    assert [r.phone for r in got] == ["13800138000"]


def test_pushed_then_pulled_report_is_handled_once(sim, tmp_path):
    gw = Gateway({"providers": {"loopback": sim.demo_config()}})
    rc = Receiver(gw, spool=tmp_path / "s.sqlite3", poll_interval=0.05)
    got = []
    rc.on_report(got.append, name="collect")
    try:
        assert gw.send(sim.demo_message(), provider="loopback").ok
        with BackgroundServer(rc.wsgi_app) as srv:
            # the push makes the report and also keeps it for the pull
            assert sim.push_reports(srv.url + "/callbacks/loopback", time.time()).status == 200
        [outcome] = Poller(gw, rc.spool).poll_once()
        assert outcome.events == 1 and outcome.duplicates == 1 and outcome.stored == 0
        assert rc.drain()
    finally:
        rc.close()
    assert len(got) == 1


def test_run_loop_survives_errors_and_stops(tmp_path):
    with LoopbackSimulator() as sim:
        config = sim.demo_config()
    # the simulator is gone: every pull fails
    gw = Gateway({"providers": {"loopback": {**config, "connect_retries": 0, "connect_timeout": 1.0}}})
    rc = Receiver(gw, spool=tmp_path / "s.sqlite3")
    outcomes: list[PullOutcome] = []
    two = threading.Event()
    poller = Poller(gw, rc.spool, interval=0.01, max_backoff=0.02)

    def seen(o):
        outcomes.append(o)
        if len(outcomes) >= 2:
            two.set()

    t = threading.Thread(target=poller.run, kwargs={"on_pull": seen}, daemon=True)
    t.start()
    try:
        assert two.wait(60)
    finally:
        poller.stop()
        t.join(60)
        rc.close()
    assert not t.is_alive()
    assert all(o.error and "TransportError" in o.error for o in outcomes)


def _gateway_with(caps):
    class Spec:
        capabilities = caps

    class Entry:
        spec = Spec()

    class FakeGateway:
        def provider_names(self):
            return ["cm"]

        def provider(self, name):
            return Entry(), None

    return FakeGateway()


PULLS = {Operation.PULL_REPORTS, Operation.PULL_INBOUND}


def test_delays_respect_min_interval_and_back_off(tmp_path):
    FakeGateway = lambda: _gateway_with(Capabilities(  # noqa: E731
        operations=PULLS, min_interval={Operation.PULL_REPORTS: 5.0, Operation.PULL_INBOUND: 5.0}))
    poller = Poller(FakeGateway(), spool=None, interval=2.0, max_backoff=60)
    key = ("cm", Operation.PULL_REPORTS)
    assert pull_targets(FakeGateway()) == [("cm", Operation.PULL_REPORTS), ("cm", Operation.PULL_INBOUND)]
    assert poller._delay_after(key, PullOutcome("cm", key[1], events=3), False) == 5.0
    assert poller._delay_after(key, PullOutcome("cm", key[1], events=0), False) == 5.0
    failed = PullOutcome("cm", key[1], error="TransportError: x")
    assert [poller._delay_after(key, failed, False) for _ in range(5)] == [5.0, 10.0, 20.0, 40.0, 60]
    assert poller._delay_after(key, PullOutcome("cm", key[1]), False) == 5.0  # reset after success


def test_a_shared_budget_spaces_each_pull_by_its_share_and_the_vendor_suggests_the_idle_pause():
    shared = Capabilities(operations=PULLS, budgets=[Budget("pull", PULLS, calls=1, per=5.0)])
    both = Poller(_gateway_with(shared), spool=None)
    key = ("cm", Operation.PULL_REPORTS)
    assert both.min_interval(*key) == 10.0  # two pulls take turns in one call per 5 s
    assert both._delay_after(key, PullOutcome("cm", key[1], events=3), False) == 10.0
    assert both._delay_after(key, PullOutcome("cm", key[1]), False) == 10.0  # the default idle pause is 10
    one = Poller(_gateway_with(shared), spool=None, providers=["cm"])
    one.targets = [key]
    assert one.min_interval(*key) == 5.0
    suggested = Capabilities(operations=PULLS, poll_interval=60.0,
                             budgets=[Budget("query", {Operation.PULL_REPORTS}, calls=3, per=60.0)])
    poller = Poller(_gateway_with(suggested), spool=None)
    assert poller.min_interval(*key) == 20.0
    assert poller._delay_after(key, PullOutcome("cm", key[1]), False) == 60.0  # the vendor's suggestion
    assert poller._delay_after(key, PullOutcome("cm", key[1], events=1), False) == 20.0
    assert Poller(_gateway_with(suggested), spool=None, interval=30.0)._delay_after(
        key, PullOutcome("cm", key[1]), False) == 30.0  # the caller's choice, above the budget's floor
    assert Poller(_gateway_with(suggested), spool=None, interval=1.0)._delay_after(
        key, PullOutcome("cm", key[1]), False) == 20.0
    assert poller.longest_wait(*key) == 60.0


def _toml(config):
    return "[providers.loopback]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in config.items())


def test_cli_poll_once(sim, tmp_path):
    cfg = tmp_path / "smsgate.toml"
    cfg.write_text(_toml(sim.demo_config()), encoding="utf-8")
    assert Gateway(str(cfg)).send(sim.demo_message(), provider="loopback").ok
    sim.deliver_all()
    out = subprocess.run([sys.executable, "-m", "smsgate.cli", "poll", "--config", str(cfg), "--once", "--json",
                          "--spool", str(tmp_path / "s.sqlite3"), "--events-jsonl", str(tmp_path / "e.jsonl")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"provider": "loopback", "operation": "pull_reports", "events": 1,
                                      "stored": 1, "duplicates": 0, "error": None}
    [line] = (tmp_path / "e.jsonl").read_text(encoding="utf-8").splitlines()
    event = json.loads(line)
    assert (event["kind"], event["status"], event["source"]) == ("report", "delivered", "pull")


def test_cli_poll_without_pull_providers(tmp_path):
    cfg = tmp_path / "smsgate.toml"
    cfg.write_text("", encoding="utf-8")
    out = subprocess.run([sys.executable, "-m", "smsgate.cli", "poll", "--config", str(cfg), "--once",
                          "--spool", str(tmp_path / "s.sqlite3")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "no configured provider offers pulls" in out.stderr


def test_cli_serve_bad_handler_is_a_usage_error(tmp_path):
    out = subprocess.run([sys.executable, "-m", "smsgate.cli", "serve", "--handler", "nosuchmodule:fn",
                          "--spool", str(tmp_path / "s.sqlite3")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "cannot load handler" in out.stderr and "Traceback" not in out.stderr
