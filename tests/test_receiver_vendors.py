"""Each vendor's documented push shape through the receiver (skipped until the plugin is installed):
juse forged / stale / replayed pushes refused and not dispatched, an opass push with a foreign
apiKey refused, a guodu push of 250 reports parsed; and ``smsgate serve`` with all four vendors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from smsgate import Gateway, Message
from smsgate.receiving import BackgroundServer, Receiver
from smsgate.models import Status


@pytest.fixture(autouse=True)
def _all_plugins(monkeypatch):
    """These tests need the vendor plugins (tests/conftest.py hides them by default)."""
    monkeypatch.delenv("SMSGATE_PLUGINS", raising=False)


class Setup:
    def __init__(self, sim, name, tmp_path, **kwargs):
        self.sim = sim
        self.gw = Gateway({"providers": {name: sim.demo_config()}})
        self.receiver = Receiver(self.gw, spool=tmp_path / f"{name}.sqlite3", poll_interval=0.05, **kwargs)
        self.events: list = []
        self.receiver.on_event(self.events.append, name="collect")
        self.server = BackgroundServer(self.receiver.wsgi_app).start()
        self.url = f"{self.server.url}/callbacks/{name}"

    def close(self):
        self.server.stop()
        self.receiver.close()


@pytest.fixture
def setup(tmp_path):
    made = []

    def make(sim, name, **kwargs):
        s = Setup(sim, name, tmp_path, **kwargs)
        made.append(s)
        return s

    yield make
    for s in made:
        s.close()


# -- juse --------------------------------------------------------------------------------------------

@pytest.fixture
def juse_sim():
    mod = pytest.importorskip("smsgate_juse.simulator")
    with mod.JuseSimulator() as sim:
        yield sim


def _juse_report(sim, s):
    result = s.gw.send(sim.demo_message(), provider="juse")
    assert result.ok
    sim.deliver_all()
    return result


def test_juse_signed_push_accepted(setup, juse_sim):
    s = setup(juse_sim, "juse")
    _juse_report(juse_sim, s)
    answers = juse_sim.push_pending(s.url)
    assert [a.status for a in answers] == [200] and str(answers[0].json()["code"]) == "200"
    assert juse_sim.push_inbound(s.url, "13800138000", "TD").status == 200
    assert s.receiver.drain()
    kinds = sorted(type(e).__name__ for e in s.events)
    assert kinds == ["DeliveryReport", "InboundMessage"]


@pytest.mark.parametrize("case", ["forged", "stale_past", "stale_future", "replayed_other_body"])
def test_juse_refused_pushes_not_dispatched(setup, juse_sim, case):
    s = setup(juse_sim, "juse")
    body = juse_sim.callback_body("sms_deliver", smsDeliverDtoList=[
        {"content": "hi", "mobile": "13800138000", "sendTime": "2024-09-18 11:30:16", "addSerial": ""}])
    now = int(time.time())
    if case == "forged":
        mod = pytest.importorskip("smsgate_juse.simulator")
        other = mod.JuseSimulator(app_id=juse_sim.app_id, app_secret="AAAAAAAAAAAAAAAAAAAAAA==")
        headers = other.callback_headers("sms_deliver", timestamp=now)
    elif case == "stale_past":
        headers = juse_sim.callback_headers("sms_deliver", timestamp=now - 16 * 60)
    elif case == "stale_future":
        headers = juse_sim.callback_headers("sms_deliver", timestamp=now + 16 * 60)
    else:
        headers = juse_sim.callback_headers("sms_deliver", timestamp=now, nonce="0123456789abcdef")
        assert juse_sim.push(s.url, body, headers).status == 200
        assert s.receiver.drain() and len(s.events) == 1
        # juse signs the headers, not the body: a captured nonce with other events is refused
        body = juse_sim.callback_body("sms_deliver", smsDeliverDtoList=[
            {"content": "other", "mobile": "13900139000", "sendTime": "2024-09-18 11:31:00", "addSerial": ""}])
    answer = juse_sim.push(s.url, body, headers)
    assert answer.status in (401, 403)
    assert s.receiver.drain()
    assert len(s.events) == (1 if case == "replayed_other_body" else 0)
    assert s.receiver.spool.counts()["events"] == len(s.events)


def test_juse_identical_retry_after_a_lost_answer_gets_200_once_handled(setup, juse_sim):
    s = setup(juse_sim, "juse")
    body = juse_sim.callback_body("sms_deliver", smsDeliverDtoList=[
        {"content": "hi", "mobile": "13800138000", "sendTime": "2024-09-18 11:30:16", "addSerial": ""}])
    headers = juse_sim.callback_headers("sms_deliver", timestamp=int(time.time()), nonce="0123456789abcdef")
    assert juse_sim.push(s.url, body, headers).status == 200
    again = juse_sim.push(s.url, body, headers)
    assert again.status == 200 and str(again.json()["code"]) == "200"
    assert s.receiver.drain()
    assert len(s.events) == 1 and s.receiver.spool.counts()["events"] == 1


# -- opass -------------------------------------------------------------------------------------------

@pytest.fixture
def opass_mod():
    return pytest.importorskip("smsgate_opass.simulator")


def test_opass_push_and_foreign_api_key(setup, opass_mod):
    with opass_mod.OpassSimulator() as sim, opass_mod.OpassSimulator(api_key="someone-else") as foreign:
        s = setup(sim, "opass")
        result = s.gw.send(sim.demo_message(), provider="opass")
        assert result.ok
        sim.deliver_all()
        assert [a.status for a in sim.push_pending(s.url)] == [200]
        # the same shape carrying another customer's apiKey
        gw_foreign = Gateway({"providers": {"opass": foreign.demo_config()}})
        assert gw_foreign.send(foreign.demo_message(), provider="opass").ok
        foreign.deliver_all()
        assert [a.status for a in foreign.push_pending(s.url)] in ([401], [403])
        assert foreign.push_inbound(s.url, "13800138000", "hi").status in (401, 403)
        assert s.receiver.drain()
    assert {e.message_id for e in s.events} == set(result.message_ids)
    assert len(s.events) == len(result.accepted)


def test_opass_pushed_and_pulled_reports_are_one_stream(setup, opass_mod):
    from smsgate.models import Operation, PullQuery
    from smsgate.receiving import Poller

    with opass_mod.OpassSimulator() as sim:
        s = setup(sim, "opass")
        result = s.gw.send(sim.demo_message(), provider="opass")
        sim.deliver_all()
        pulled = Poller(s.gw, s.receiver.spool, providers=["opass"],
                        query=lambda _: PullQuery(message_ids=tuple(result.message_ids))).pull(
            "opass", Operation.PULL_REPORTS)
        assert pulled.error is None and pulled.stored == len(result.accepted)
        # the vendor also pushes the same reports
        with sim._state:
            sim._reported.clear()
        sim.deliver_all()
        assert all(a.status == 200 for a in sim.push_pending(s.url))
        assert s.receiver.drain()
    assert len(s.events) == len(result.accepted)


# -- guodu -------------------------------------------------------------------------------------------

def test_guodu_push_of_250_reports(setup):
    mod = pytest.importorskip("smsgate_guodu.simulator")
    with mod.GuoduSimulator() as sim:
        s = setup(sim, "guodu")
        phones = [f"1380013{i:04d}" for i in range(250)]
        result = s.gw.send(Message(to=phones, text="【smsgate】您的验证码是 1234"), provider="guodu")
        assert result.ok and len(result.accepted) == 250
        assert sim.deliver_all() == 250
        answers = sim.push_pending(s.url)
        assert [a.status for a in answers] == [200]
        assert len(sim.requests) >= 2  # 250 phones went out in two sends of at most 200
        assert s.receiver.drain()
    assert len(s.events) == 250
    assert {e.phone for e in s.events} == set(phones)
    assert all(e.status is Status.DELIVERED for e in s.events)


# -- cmas: pull only ---------------------------------------------------------------------------------

def test_cmas_poll_once_through_the_cli(tmp_path):
    mod = pytest.importorskip("smsgate_cmas.simulator")
    with mod.CmasSimulator() as sim:
        cfg = sim.demo_config()
        lines = ["[providers.cmas]"] + [f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in cfg.items()]
        (tmp_path / "smsgate.toml").write_text("\n".join(lines) + "\n", encoding="utf-8")
        gw = Gateway(str(tmp_path / "smsgate.toml"))
        assert gw.send(sim.demo_message(), provider="cmas").ok
        sim.deliver_all()
        sim.add_inbound("13800138000", "退订")
        out = subprocess.run([sys.executable, "-m", "smsgate.cli", "poll", "--config", str(tmp_path / "smsgate.toml"),
                              "--once", "--json", "--spool", str(tmp_path / "spool.sqlite3"),
                              "--events-jsonl", str(tmp_path / "events.jsonl")],
                             capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(x) for x in out.stdout.splitlines()]
    assert {(r["operation"], r["stored"]) for r in rows} == {("pull_reports", 1), ("pull_inbound", 1)}
    events = [json.loads(x) for x in (tmp_path / "events.jsonl").read_text(encoding="utf-8").splitlines()]
    assert sorted(e["kind"] for e in events) == ["inbound", "report"]
    assert {e["source"] for e in events} == {"pull"}


# -- smsgate serve with every vendor -----------------------------------------------------------------

def test_serve_accepts_every_vendors_push(tmp_path, start_serve):
    juse = pytest.importorskip("smsgate_juse.simulator")
    opass = pytest.importorskip("smsgate_opass.simulator")
    guodu = pytest.importorskip("smsgate_guodu.simulator")
    sims = {"juse": juse.JuseSimulator(), "opass": opass.OpassSimulator(), "guodu": guodu.GuoduSimulator()}
    for sim in sims.values():
        sim.start()
    try:
        lines = []
        for name, sim in sims.items():
            lines.append(f"[providers.{name}]")
            lines += [f"{k} = {json.dumps(v, ensure_ascii=False)}" for k, v in sim.demo_config().items()]
        cfg = tmp_path / "smsgate.toml"
        cfg.write_text("\n".join(lines) + "\n", encoding="utf-8")
        serve = start_serve(["--config", cfg, "--spool", tmp_path / "spool.sqlite3",
                             "--events-jsonl", tmp_path / "events.jsonl"])
        base = serve.url
        try:
            gw = Gateway(str(cfg))
            expected = 0
            for name, sim in sims.items():
                result = gw.send(sim.demo_message(), provider=name)
                assert result.ok, name
                sim.deliver_all()
                answers = sim.push_pending(f"{base}/callbacks/{name}")
                assert answers and all(a.status == 200 for a in answers), name
                assert sim.push_inbound(f"{base}/callbacks/{name}", "13800138000", f"hi {name}").status == 200
                expected += len(result.accepted) + 1
            deadline = time.monotonic() + 60
            events: list = []
            while time.monotonic() < deadline:
                path = tmp_path / "events.jsonl"
                events = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
                if len(events) >= expected:
                    break
                time.sleep(0.05)
        finally:
            serve.send_signal(signal.SIGTERM)
            serve.reap()
    finally:
        for sim in sims.values():
            sim.stop()
    assert len(events) == expected
    assert {e["provider"] for e in events} == set(sims)
    assert {e["kind"] for e in events} == {"report", "inbound"}
    for e in events:
        assert {"provider", "kind", "message_id", "phone", "status", "content", "received_at", "raw"} <= set(e)
        if e["kind"] == "report":
            assert e["status"] == "delivered" and e["message_id"]
        else:
            assert e["content"].startswith("hi ")
