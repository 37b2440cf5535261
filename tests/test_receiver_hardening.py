"""Receiver hardening: poison text, open transactions, crashes between nonce and commit, floods.

Each test here was written against an input that broke the receiver before it was fixed: a lone
surrogate that left the spool's write lock held, a pulled batch dropped whole, a nonce that
outlived a kill -9 and refused the vendor's retry for ever, a push of 95,000 events.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from smsgate import Gateway
from smsgate.default_plugins.loopback import signature
from smsgate.models import CallbackRequest, DeliveryReport, InboundMessage, Status
from smsgate.receiving import BackgroundServer, Receiver, Spool, SpoolError
from smsgate.receiving.poller import Poller
from smsgate.receiving.replay import MemoryReplayStore, SqliteReplayStore
from smsgate.testing import LoopbackSimulator, SimulatorServer

SECRET = "test-secret"
NOW = 1_726_631_416.0
#: a JSON string holding half of an emoji: what a Java vendor writes when it cuts "😀" in two
HALF_EMOJI = '"TD\\ud83d"'


def config():
    return {"providers": {"loopback": {"base_url": "http://127.0.0.1:9", "api_key": "k", "api_secret": SECRET}}}


def raw_signed(body: bytes, nonce: str, ts: float = NOW) -> tuple[bytes, dict[str, str]]:
    ts_text = str(int(ts))
    return body, {"Content-Type": "application/json", "X-Timestamp": ts_text, "X-Nonce": nonce,
                  "X-Signature": signature(SECRET, ts_text, nonce, body)}


def report_body(msg_id_json: str = '"R1"', phone: str = "13800138000") -> bytes:
    return (f'{{"reports":[{{"msgId":{msg_id_json},"phone":"{phone}","status":"DELIVERED",'
            f'"time":"2024-09-18 11:50:16"}}]}}').encode()


@pytest.fixture
def receiver(tmp_path):
    made = []

    def make(**kwargs):
        kwargs.setdefault("spool", tmp_path / "spool.sqlite3")
        rc = Receiver(Gateway(config(), clock=lambda: NOW), poll_interval=0.05, **kwargs)
        made.append(rc)
        return rc

    yield make
    for rc in made:
        rc.close()


# -- 1. a lone surrogate never poisons the spool ---------------------------------------------------

def test_lone_surrogate_is_stored_losslessly_and_the_next_push_is_stored(receiver, tmp_path):
    rc = receiver(events_jsonl=tmp_path / "events.jsonl")
    got: list = []
    rc.on_report(got.append, name="collect")
    with BackgroundServer(rc.wsgi_app) as srv:
        url = srv.url + "/callbacks/loopback"
        poison = SimulatorServer.push(url, *raw_signed(report_body('"id\\udfff"'), "n1"))
        assert poison.status == 200
        # the write lock was released: the next push, and another process's writer, get through
        assert SimulatorServer.push(url, *raw_signed(report_body('"R2"'), "n2")).status == 200
    other = sqlite3.connect(rc.spool.path, timeout=1)
    other.execute("BEGIN IMMEDIATE")
    other.execute("ROLLBACK")
    other.close()
    assert rc.drain()
    assert sorted(r.message_id for r in got) == ["R2", "id\udfff"]  # the very text the vendor sent
    lines = [json.loads(line) for line in open(tmp_path / "events.jsonl", encoding="utf-8")]
    assert sorted(line["message_id"] for line in lines) == ["R2", "id\udfff"]


def test_a_failure_inside_the_spool_transaction_rolls_it_back(tmp_path):
    # any exception between BEGIN and COMMIT (not only sqlite3.Error) must roll back
    with Spool(tmp_path / "s.sqlite3") as spool:
        spool.register_handler("h")
        conn = spool._writer

        class Boom(Exception):
            pass

        from smsgate.receiving.store import transaction

        with pytest.raises(Boom):
            with spool._write_lock, transaction(conn):
                conn.execute("DELETE FROM handlers")
                raise Boom()
        assert not conn.in_transaction
        assert spool.handler_names() == {"h": {"report", "inbound", "task"}}
        report = DeliveryReport(provider="p", message_id="m\udfff", phone="13800138000", status=Status.DELIVERED)
        assert spool.put([report]).stored == 1
        assert spool.put([report]).duplicates == 1  # the same identity, escaped the same way
        [stored] = spool.events()
        assert stored.event.message_id == "m\udfff"


def test_inbound_text_with_a_lone_surrogate_is_stored(tmp_path):
    with Spool(tmp_path / "s.sqlite3") as spool:
        msg = InboundMessage(provider="p", phone="13800138000", content="TD\ud83d", received_at="t\udc00")
        assert spool.put([msg]).stored == 1
        assert spool.events()[0].event == msg


def pending(sim, *msg_ids):
    """Reports the loopback vendor hands out (once) at the next pull."""
    sim.backend.pending_reports.extend(
        {"msgId": m, "phone": f"1380013800{i}", "status": "DELIVERED", "time": "t"} for i, m in enumerate(msg_ids))


def test_a_pulled_batch_with_a_lone_surrogate_is_stored_whole(tmp_path):
    with LoopbackSimulator() as sim:
        gw = Gateway({"providers": {"loopback": sim.demo_config()}})
        with Spool(tmp_path / "s.sqlite3") as spool:
            pending(sim, "A", "B\udfff", "C")
            [outcome] = Poller(gw, spool).poll_once()
            assert (outcome.events, outcome.stored, outcome.error) == (3, 3, None)
            assert sorted(e.event.message_id for e in spool.events()) == ["A", "B\udfff", "C"]


class PickySpool(Spool):
    """A spool that refuses one event (a disk that fails on one write): the fault to survive."""

    def put(self, events, source="push"):
        if any(getattr(e, "message_id", None) == "BAD" for e in events):
            raise SpoolError("refused")
        return super().put(events, source)


def test_a_pulled_item_that_cannot_be_stored_is_kept_aside_not_lost(tmp_path):
    with LoopbackSimulator() as sim:
        gw = Gateway({"providers": {"loopback": sim.demo_config()}})
        with PickySpool(tmp_path / "s.sqlite3") as spool:
            pending(sim, "A", "BAD", "C")
            poller = Poller(gw, spool)
            [outcome] = poller.poll_once()  # never raises
            assert (outcome.events, outcome.stored, outcome.dead_letter) == (3, 2, 1)
            assert "could not be stored" in outcome.error
            assert sorted(e.event.message_id for e in spool.events()) == ["A", "C"]
            [line] = open(poller.dead_letter, encoding="utf-8").read().splitlines()
            kept = json.loads(line)
            assert kept["event"]["message_id"] == "BAD" and kept["kind"] == "report"


def test_receiver_answers_503_not_500_when_the_spool_fails_in_any_way(receiver):
    rc = receiver()

    def broken_put(events, source="push"):
        raise UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates not allowed")

    rc.spool.put = broken_put
    body, headers = raw_signed(report_body(), "n1")
    assert rc.handle("loopback", CallbackRequest(body=body, headers=headers)).status == 503
    # the nonce was given back: the vendor's retry is taken once the spool works again
    del rc.spool.put
    assert rc.handle("loopback", CallbackRequest(body=body, headers=headers)).status == 200


def test_a_plugin_crash_is_503_and_handle_never_raises(receiver):
    from smsgate import hookimpl

    class Crashing:
        @hookimpl(tryfirst=True)
        def parse_callback(self, ctx, request):
            raise RuntimeError("plugin bug")

    rc = receiver()
    rc.gateway.plugins.register(Crashing(), name="crashing")
    body, headers = raw_signed(report_body(), "n1")
    assert rc.handle("loopback", CallbackRequest(body=body, headers=headers)).status == 503


# -- 2. a crash between the nonce and the commit never turns the retry into a 401 -------------------

_CRASH = textwrap.dedent("""
    import os, signal, sys
    from smsgate import Gateway
    from smsgate.receiving import Receiver
    from smsgate.models import CallbackRequest
    from smsgate.receiving.replay import SqliteReplayStore

    spool_path, replay, body_path, headers_json = sys.argv[1:5]
    import json
    now = float(os.environ["NOW"])
    rc = Receiver(Gateway(json.loads(os.environ["CFG"]), clock=lambda: now), spool=spool_path,
                  replay_store=SqliteReplayStore(replay, clock=lambda: now), plugin_hooks=False)

    def die(*args, **kwargs):  # killed after the nonce is recorded, before the events are committed
        os.kill(os.getpid(), signal.SIGKILL)

    rc.spool.put = die
    rc.handle("loopback", CallbackRequest(body=open(body_path, "rb").read(), headers=json.loads(headers_json)))
""")


def test_sqlite_replay_store_kill_between_nonce_and_commit_then_the_retry_is_stored(tmp_path):
    spool, replay = tmp_path / "spool.sqlite3", tmp_path / "replay.sqlite3"
    body, headers = raw_signed(report_body('"K1"'), "crash-nonce")
    (tmp_path / "body").write_bytes(body)
    env = {**os.environ, "CFG": json.dumps(config()), "NOW": str(NOW)}
    proc = subprocess.run([sys.executable, "-c", _CRASH, str(spool), str(replay), str(tmp_path / "body"),
                           json.dumps(headers)], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    # restarted: the vendor pushes the identical request again
    now = [NOW + 1]
    store = SqliteReplayStore(replay, clock=lambda: now[0])
    rc = Receiver(Gateway(config(), clock=lambda: NOW + 1), spool=spool, replay_store=store, plugin_hooks=False)
    try:
        request = CallbackRequest(body=body, headers=headers)
        first = rc.handle("loopback", request)
        assert first.status == 503  # the reservation of the killed process: push again later, not 401
        now[0] += rc.nonce_hold + 1  # the reservation ended
        assert rc.handle("loopback", request).status == 200
        assert [e.event.message_id for e in rc.spool.events()] == ["K1"]
        # and the confirmed nonce now refuses a replay carrying other events
        other, _ = raw_signed(report_body('"FORGED"'), "crash-nonce")
        assert rc.handle("loopback", CallbackRequest(body=other, headers=headers)).status == 401
    finally:
        rc.close()
        store.close()


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_nonce_is_kept_only_once_the_events_are_committed(tmp_path, kind):
    store = MemoryReplayStore(clock=lambda: NOW) if kind == "memory" else SqliteReplayStore(
        tmp_path / "r.sqlite3", clock=lambda: NOW)
    rc = Receiver(Gateway(config(), clock=lambda: NOW), spool=tmp_path / "s.sqlite3", replay_store=store,
                  plugin_hooks=False)
    try:
        body, headers = raw_signed(report_body('"N1"'), "nonce-x")
        request = CallbackRequest(body=body, headers=headers)
        real_put = rc.spool.put
        rc.spool.put = lambda events, source="push": (_ for _ in ()).throw(OSError("disk full"))
        assert rc.handle("loopback", request).status == 503
        rc.spool.put = real_put
        assert rc.handle("loopback", request).status == 200  # released, so the retry is taken
        assert rc.handle("loopback", request).status == 200  # a retry of a stored push: its answer again
        forged, _ = raw_signed(report_body('"N2"'), "nonce-x")
        assert rc.handle("loopback", CallbackRequest(body=forged, headers=headers)).status == 401
        assert [e.event.message_id for e in rc.spool.events()] == ["N1"]
    finally:
        rc.close()
        if kind == "sqlite":
            store.close()


def test_redis_replay_store_reserves_then_confirms(redis_url, service_run_id):
    redis = pytest.importorskip("redis")
    from smsgate.receiving.replay import HELD, NEW, SEEN, RedisReplayStore

    client = redis.Redis.from_url(redis_url)
    store = RedisReplayStore(client, prefix=f"{service_run_id}:replay:")
    try:
        assert store.reserve("k", 30) == NEW
        assert store.reserve("k", 30) == HELD  # a push still being stored, or a dead process's
        store.discard("k")
        assert store.reserve("k", 30) == NEW
        store.confirm("k", 60)
        assert store.reserve("k", 30) == SEEN
        assert store.add("other", 60) is True and store.add("other", 60) is False
    finally:
        for key in client.scan_iter(f"{service_run_id}:replay:*"):
            client.delete(key)
        client.close()


# -- 3. floods: too many events in one push ---------------------------------------------------------

def test_a_push_with_more_events_than_the_cap_is_413_and_nothing_is_stored(receiver):
    rc = receiver(max_events=10)
    items = ",".join(f'{{"msgId":"M{i}","phone":"13800138000","status":"DELIVERED","time":"t"}}' for i in range(11))
    body, headers = raw_signed(f'{{"reports":[{items}]}}'.encode(), "big")
    answer = rc.handle("loopback", CallbackRequest(body=body, headers=headers))
    assert answer.status == 413
    assert rc.spool.counts()["events"] == 0


def test_serve_with_an_unopenable_spool_exits_2_with_one_line(tmp_path):
    cfg = tmp_path / "smsgate.toml"
    cfg.write_text('[providers.loopback]\nbase_url = "http://127.0.0.1:9"\napi_key = "k"\napi_secret = "s"\n')
    proc = subprocess.run([sys.executable, "-m", "smsgate.cli", "serve", "--config", str(cfg), "--port", "0",
                           "--spool", str(tmp_path / "no" / "such" / "dir" / "s.sqlite3")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "spool" in proc.stderr and "Traceback" not in proc.stderr
