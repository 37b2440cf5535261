"""Prometheus metrics: scraped over real HTTP from /metrics after sends with every outcome, pushes,
pulls, and from the spool; the config table; `smsgate demo --metrics` then `smsgate serve
--metrics` in multi-process mode. Values are checked exactly; no timing assertions."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from smsgate import ConfigError, Gateway, Message, PluginManager, ValidationError
from smsgate.default_plugins.loopback import signature
from smsgate.models import DeliveryReport, Status
from smsgate.integrations.metrics import (BoundedLabel, LedgerCollector, Metrics, SpoolCollector, exposition_registry,
                                          with_metrics)
from smsgate.receiving import BackgroundServer, Receiver, Spool
from smsgate.sending.ledger import open_ledger
from smsgate.testing import Fault, LoopbackSimulator, SimulatorServer

SECRET = "metrics-secret"
OK, REFUSED = "13800138000", "13900139000"
SMSGATE = os.path.join(os.path.dirname(sys.executable), "smsgate")


def parse(text: str) -> dict:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def scrape(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.status == 200
        return parse(answer.read().decode())


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in samples.items() if n == name and set(labels.items()) <= set(ls))


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A loopback simulator, a Gateway with the metrics plugin on its own registry, and a Receiver
    whose WSGI app also answers /metrics, over real HTTP."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    sim = LoopbackSimulator(api_key="k", api_secret=SECRET, reject_numbers=[REFUSED]).start()
    registry = CollectorRegistry()
    pm = PluginManager(load_entrypoints=False)
    Metrics(registry).install(pm)
    settings = {"providers": {
        "loopback": {"base_url": sim.url, "api_key": "k", "api_secret": SECRET},
        "lb-badkey": {"provider": "loopback", "base_url": sim.url, "api_key": "k", "api_secret": "wrong"},
        "lb-down": {"provider": "loopback", "base_url": "http://127.0.0.1:9", "connect_retries": 0},
    }}
    gw = Gateway(settings, plugins=pm)
    receiver = Receiver(gw, spool=tmp_path / "spool.sqlite3", poll_interval=0.05)
    got: list = []
    receiver.on_report(got.append, name="collect")
    app = with_metrics(receiver.wsgi_app, exposition_registry(registry, receiver.spool))
    try:
        with BackgroundServer(app) as server:
            yield sim, gw, receiver, server.url, got
    finally:
        receiver.close()
        sim.stop()


def send(gw, to, provider="loopback"):
    return gw.send(Message(to=to, template_id="T1", params=["1"]), provider=provider)


def test_every_send_outcome_is_counted(world):
    sim, gw, _, url, _ = world
    assert send(gw, [OK, REFUSED]).accepted == [OK]  # one accepted, one refused by the vendor
    assert send(gw, [OK], "lb-badkey").rejected[0].reason.code == "AUTH"  # the whole request refused
    assert send(gw, [OK], "lb-down").rejected[0].reason.code == "CONNECT"  # never left
    sim.inject(Fault.HTTP_500)
    assert send(gw, [OK]).unknown == [OK]  # an answer nobody can read: may have been taken
    sim.inject(Fault.RESET_AFTER_READ)
    assert send(gw, [OK]).unknown == [OK]
    with pytest.raises(ValidationError):
        send(gw, ["12345"])

    m = scrape(url + "/metrics")
    rec = "smsgate_recipients_total"
    base = {"provider": "loopback", "route": "", "operation": "send"}
    assert value(m, rec, **base, outcome="accepted", code="") == 1
    assert value(m, rec, **base, outcome="rejected", code="REJECTED") == 1
    assert value(m, rec, **base, outcome="rejected", code="AUTH") == 1
    assert value(m, rec, **base, outcome="rejected", code="CONNECT") == 1
    assert value(m, rec, **base, outcome="unknown", code="HTTP500") == 1
    assert value(m, rec, **base, outcome="unknown", code="TRANSPORT") == 1
    assert total(m, rec) == 6
    assert value(m, "smsgate_sends_invalid_total", provider="loopback", field="to") == 1

    req = "smsgate_vendor_requests_total"
    ops = {"provider": "loopback", "operation": "send"}
    assert value(m, req, **ops, outcome="ok", code="") == 1
    assert value(m, req, **ops, outcome="rejected", code="AUTH") == 1
    assert value(m, req, **ops, outcome="not_sent", code="connect") == 1
    assert value(m, req, **ops, outcome="unknown", code="HTTP500") == 1
    assert value(m, req, **ops, outcome="unknown", code="broken") == 1
    assert value(m, "smsgate_vendor_request_seconds_count", **ops) == 5
    assert value(m, "smsgate_vendor_request_seconds_bucket", **ops, le="+Inf") == 5
    assert value(m, "smsgate_transport_errors_total", provider="loopback", kind="connect") == 1
    assert value(m, "smsgate_transport_errors_total", provider="loopback", kind="broken") == 1
    # bounded labels: nothing that looks like a phone number or a vendor's text
    assert OK not in repr(m) and "refused by loopback" not in repr(m)


def test_a_bulk_send_is_counted_without_making_its_outcomes(world):
    """A bulk send keeps its requests' outcomes as columns (no object per request for the cyclic
    collector, see KeptOutcomes): counting them must not make them into objects that stay."""
    from smsgate.models import KeptOutcomes, _get_outcomes

    _, gw, _, url, _ = world
    phones = [f"1390013{i:04d}" for i in range(250)]  # the loopback takes 100 a request: 3 requests
    result = send(gw, phones)
    assert type(_get_outcomes(result)) is KeptOutcomes and result.ok
    m = scrape(url + "/metrics")
    assert value(m, "smsgate_recipients_total", provider="loopback", route="", operation="send",
                 outcome="accepted", code="") == 250


def test_pushes_and_pulls_are_counted(world):
    sim, gw, receiver, url, got = world
    callback = url + "/callbacks/loopback"

    assert len(send(gw, [OK, "13700137000", "13600136000"]).accepted) == 3
    assert sim.push_reports(callback, time.time()).status == 200
    body = b'{"reports": []}'
    assert SimulatorServer.push(callback, body, {"X-Timestamp": str(int(time.time())), "X-Nonce": "n1",
                                                 "X-Signature": "0" * 64}).status == 401
    ts, nonce, bad = str(int(time.time())), "n2", b"not json"
    assert SimulatorServer.push(callback, bad, {"X-Timestamp": ts, "X-Nonce": nonce,
                                                "X-Signature": signature(SECRET, ts, nonce, bad)}).status == 400
    assert len(send(gw, ["13500135000", "13400134000"]).accepted) == 2
    sim.deliver_all()
    assert len(gw.pull_reports("loopback")) == 5  # this fake vendor hands the pushed three out again
    assert receiver.drain() and len(got) == 3

    m = scrape(url + "/metrics")
    assert value(m, "smsgate_reports_total", provider="loopback", status="delivered", source="push") == 3
    assert value(m, "smsgate_reports_total", provider="loopback", status="delivered", source="pull") == 5
    assert value(m, "smsgate_pushes_total", provider="loopback", result="parsed") == 1
    assert value(m, "smsgate_pushes_total", provider="loopback", result="refused") == 1
    assert value(m, "smsgate_pushes_total", provider="loopback", result="malformed") == 1
    assert value(m, "smsgate_vendor_requests_total", provider="loopback", operation="pull_reports",
                 outcome="ok", code="") == 1
    # the spool as the receiver left it: 3 events, the collecting handler has nothing left
    assert value(m, "smsgate_spool_events") == 3
    for state in ("pending", "leased", "dead"):
        assert value(m, "smsgate_spool_rows", handler="collect", state=state) == 0
    assert value(m, "smsgate_spool_oldest_pending_age_seconds", handler="collect") == 0


def test_spool_backlog_dead_rows_and_oldest_age(tmp_path):
    spool = Spool(tmp_path / "spool.sqlite3", clock=lambda: 1000.0)
    try:
        spool.register_handler("slow")
        spool.register_handler("broken")
        reports = [DeliveryReport(provider="loopback", message_id=f"M{i}", phone=OK, status=Status.DELIVERED)
                   for i in range(3)]
        spool.put(reports)
        claimed = spool.claim("broken", "owner-1", limit=1)
        spool.fail("broken", [e.id for e in claimed], "boom", delay=lambda n: 0.0, max_attempts=1)
        registry = CollectorRegistry()
        registry.register(SpoolCollector(spool, clock=lambda: 1100.0))
        m = parse(generate_latest(registry).decode())
    finally:
        spool.close()
    assert value(m, "smsgate_spool_events") == 3
    assert value(m, "smsgate_spool_rows", handler="slow", state="pending") == 3
    assert value(m, "smsgate_spool_rows", handler="broken", state="pending") == 2
    assert value(m, "smsgate_spool_rows", handler="broken", state="dead") == 1
    assert value(m, "smsgate_spool_oldest_pending_age_seconds", handler="slow") == 100
    assert value(m, "smsgate_spool_oldest_pending_age_seconds", handler="broken") == 100


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_send_to_delivery_quantiles_from_the_ledger(backend, tmp_path, request, service_run_id):
    if backend == "sqlite":
        ledger = open_ledger(f"sqlite:///{tmp_path}/ledger.sqlite3")
    else:  # real PostgreSQL, a schema of its own
        ledger = open_ledger(request.getfixturevalue("postgres_url"), schema=f"{service_run_id}_metrics")
    now = [1000.0]
    gw = Gateway({"providers": {"loopback": {}}}, clock=lambda: now[0], ledger=ledger,
                 plugins=PluginManager(load_entrypoints=False))
    try:
        phones = [OK, "13700137000", "13600136000"]
        result = gw.send(Message(to=phones, text="hi"))
        (message_id,) = result.message_ids
        for at, phone, status in ((1010.0, OK, Status.DELIVERED), (1070.0, phones[1], Status.DELIVERED),
                                  (1080.0, phones[2], Status.FAILED)):  # a failed report is no delivery
            now[0] = at
            assert gw.match_reports([DeliveryReport(provider="loopback", message_id=message_id, phone=phone,
                                                    status=status)]) == 1
        registry = CollectorRegistry()
        registry.register(LedgerCollector(gw.ledger, window=900, clock=lambda: 1100.0))
        m = parse(generate_latest(registry).decode())
        assert value(m, "smsgate_send_to_delivery_reports", provider="loopback") == 2
        assert value(m, "smsgate_send_to_delivery_seconds", provider="loopback", quantile="0.5") == 10
        assert value(m, "smsgate_send_to_delivery_seconds", provider="loopback", quantile="0.9") == 70
        assert value(m, "smsgate_send_to_delivery_seconds", provider="loopback", quantile="0.99") == 70
        later = CollectorRegistry()  # the window has passed: nothing to report
        later.register(LedgerCollector(gw.ledger, window=900, clock=lambda: 1080.0 + 901))
        assert "smsgate_send_to_delivery_reports{" not in generate_latest(later).decode()
    finally:
        if backend == "postgres":
            ledger.drop_schema()
        gw.close()


def test_closed_spool_gives_an_empty_scrape_not_an_error(tmp_path):
    spool = Spool(tmp_path / "spool.sqlite3")
    spool.close()
    registry = CollectorRegistry()
    registry.register(SpoolCollector(spool))
    assert "smsgate_spool" not in generate_latest(registry).decode()


def test_bounded_labels():
    label = BoundedLabel(limit=3)
    assert label(None) == "" and label("") == ""
    assert label("E0001") == "E0001" and label("HTTP500") == "HTTP500"
    assert label("手机号码格式错误") == "other"  # a vendor's text, not a code
    assert label("bad request: phone 13800138000") == "other"
    assert label("x" * 41) == "other"
    assert label("-1") == "-1"
    assert label("E0002") == "other"  # a fourth distinct code: over the limit
    assert label("E0001") == "E0001"  # seen before: kept


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_table_turns_the_plugin_on(monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    labels = {"provider": "loopback", "route": "", "operation": "send", "outcome": "accepted", "code": ""}
    before = _sample("smsgate_recipients_total", **labels)
    gw = Gateway({"providers": {"loopback": {}}, "metrics": {}}, plugins=PluginManager(load_entrypoints=False))
    assert gw.send(Message(to=[OK], text="hi")).ok
    assert _sample("smsgate_recipients_total", **labels) == before + 1
    Gateway({"providers": {"loopback": {}}, "metrics": {}}, plugins=gw.plugins)  # registered once only
    assert gw.send(Message(to=[OK], text="hi")).ok
    assert _sample("smsgate_recipients_total", **labels) == before + 2

    off = Gateway({"providers": {"loopback": {}}, "metrics": {"enabled": False}},
                  plugins=PluginManager(load_entrypoints=False))
    assert off.send(Message(to=[OK], text="hi")).ok
    assert _sample("smsgate_recipients_total", **labels) == before + 2


@pytest.mark.parametrize("table, problem", [
    ({"colour": "red"}, "unknown key 'colour'"),
    ({"enabled": "yes"}, "enabled must be bool"),
    (5, "[metrics] must be a table"),
])
def test_bad_metrics_table_is_one_clear_error(table, problem):
    with pytest.raises(ConfigError) as err:
        Gateway({"providers": {"loopback": {}}, "metrics": table}, plugins=PluginManager(load_entrypoints=False))
    assert problem in str(err.value)


def start_serve(args: list, env: dict) -> tuple:
    """``smsgate serve ARGS`` on a free port; (the process, the metrics URL it announced)."""
    serve = subprocess.Popen([SMSGATE, "serve", "--port", "0", "--server", "wsgiref", *args], env=env,
                             stderr=subprocess.PIPE, text=True)
    lines = []
    while len(lines) < 5 and not any("metrics on " in line for line in lines):
        lines.append(serve.stderr.readline())
    if "metrics on " not in lines[-1]:
        serve.terminate()
        raise AssertionError(f"serve announced no metrics URL: {lines}")
    return serve, lines[-1].split("metrics on ", 1)[1].strip()


def test_demo_then_serve_metrics_across_processes(tmp_path):
    """The issue's end-to-end check: `smsgate demo --metrics`, then `smsgate serve --metrics`, in
    prometheus_client's multi-process mode, shows the demo's accepted recipients and reports."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"), "SMSGATE_PLUGINS": ""}
    os.mkdir(env["PROMETHEUS_MULTIPROC_DIR"])
    demo = subprocess.run([SMSGATE, "demo", "--metrics"], env=env, capture_output=True, text=True, timeout=120)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert 'smsgate_recipients_total{code="",operation="send",outcome="accepted",provider="loopback"' in demo.stdout
    serve, metrics_url = start_serve(["--metrics", "--spool", str(tmp_path / "spool.sqlite3")], env)
    try:
        assert metrics_url.endswith("/metrics")
        m = scrape(metrics_url)
    finally:
        serve.terminate()
        serve.wait(timeout=20)
    assert value(m, "smsgate_recipients_total", provider="loopback", route="", operation="send",
                 outcome="accepted", code="") >= 1
    assert total(m, "smsgate_reports_total", provider="loopback", status="delivered") >= 1
    assert value(m, "smsgate_spool_events") == 0  # the serve process's own (empty) spool


def test_serve_metrics_without_the_extra_is_one_clear_error(tmp_path, monkeypatch, capsys):
    from smsgate.cli import main

    monkeypatch.setitem(sys.modules, "prometheus_client", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "smsgate.integrations.metrics", raising=False)
    assert main(["serve", "--metrics", "--port", "0", "--spool", str(tmp_path / "spool.sqlite3")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'smsgate[metrics]'" in err and "Traceback" not in err


def test_a_metrics_table_without_the_extra_is_one_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "smsgate.integrations.metrics", raising=False)
    with pytest.raises(ConfigError, match=r"\[metrics\] needs the 'metrics' extra: pip install 'smsgate\[metrics\]'"):
        Gateway({"providers": {"loopback": {}}, "metrics": {}}, plugins=PluginManager(load_entrypoints=False))


def test_serve_with_a_metrics_table_counts_pushes_at_its_path(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    env["SMSGATE_PLUGINS"] = ""
    with LoopbackSimulator(api_key="k", api_secret=SECRET) as sim:
        config = tmp_path / "smsgate.toml"
        config.write_text(f'[providers.loopback]\nbase_url = "{sim.url}"\napi_key = "k"\napi_secret = "{SECRET}"\n\n'
                          '[metrics]\npath = "/prom"\n', encoding="utf-8")
        gw = Gateway(str(config), plugins=PluginManager(load_entrypoints=False))
        assert gw.send(Message(to=[OK, "13700137000"], text="hi")).ok
        serve, metrics_url = start_serve(["--config", str(config), "--spool", str(tmp_path / "spool.sqlite3")], env)
        try:
            assert metrics_url.endswith("/prom")
            callback = metrics_url[: -len("/prom")] + "/callbacks/loopback"
            assert sim.push_reports(callback, time.time()).status == 200
            m = scrape(metrics_url)
        finally:
            serve.terminate()
            serve.wait(timeout=20)
    assert value(m, "smsgate_reports_total", provider="loopback", status="delivered", source="push") == 2
    assert value(m, "smsgate_pushes_total", provider="loopback", result="parsed") == 1
    assert value(m, "smsgate_spool_events") == 2
