"""The send ledger, on both backends (SQLite file; real PostgreSQL in its own schema per test):
idempotent keys, every request written before it leaves, reports matched, kill -9 and concurrent
senders never lead to a second request at the vendor."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from smsgate import ConfigError, Gateway, Message, Outcome, ValidationError
from smsgate.sending.ledger import Attempt, open_ledger
from smsgate.models import DeliveryReport, RecipientResult, Status
from smsgate.testing import LoopbackSimulator
from smsgate.testing.simulator import Fault

_schemas = itertools.count(1)


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_conf(request, tmp_path, service_run_id):
    """The [ledger] table of a fresh, empty ledger on each backend."""
    if request.param == "sqlite":
        yield {"url": f"sqlite:///{tmp_path}/ledger.sqlite3"}
        return
    url = request.getfixturevalue("postgres_url")
    conf = {"url": url, "schema": f"{service_run_id}_ledger{next(_schemas)}"}
    yield conf
    open_ledger(url, schema=conf["schema"]).drop_schema()


@pytest.fixture
def sim():
    with LoopbackSimulator() as s:
        yield s


def gateway(sim, ledger_conf, **provider):
    return Gateway({"providers": {"loopback": {**sim.demo_config(), **provider}}, "ledger": ledger_conf})


def sends(sim):
    return sim.requests_to("/send") + sim.requests_to("/sendBatch")


MSG = dict(to=["13800138000", "13900139000"], template_id="LB_CODE", params=["1234"])


def test_same_key_twice_sends_once_and_replays_the_outcomes(sim, ledger_conf):
    with gateway(sim, ledger_conf) as gw:
        first = gw.send(Message(**MSG, key="order-1"))
        again = gw.send(Message(**MSG, key="order-1"))
    assert first.ok and not first.replayed and first.key == "order-1"
    assert again.replayed and again.key == "order-1"
    assert again.recipients == first.recipients
    assert len(sends(sim)) == 1
    assert again.to_json_dict()["replayed"] is True


def test_same_key_other_message_is_refused_naming_the_key(sim, ledger_conf):
    with gateway(sim, ledger_conf) as gw:
        gw.send(Message(**MSG, key="order-2"))
        for other in ({**MSG, "params": ["9999"]}, {**MSG, "to": ["13800138000"]},
                      {"to": MSG["to"], "text": "hello"}):
            with pytest.raises(ValidationError, match="order-2") as err:
                gw.send(Message(**other, key="order-2"))
            assert err.value.field == "key"
    assert len(sends(sim)) == 1


def test_recipients_in_another_order_or_spelling_are_the_same_message(sim, ledger_conf):
    with gateway(sim, ledger_conf) as gw:
        gw.send(Message(**MSG, key="order-3"))
        again = gw.send(Message(**{**MSG, "to": ["+86 139-0013-9000", "13800138000"]}, key="order-3"))
    assert again.replayed and len(sends(sim)) == 1


def test_without_a_ledger_keys_are_refused_and_sends_work(sim):
    gw = Gateway({"providers": {"loopback": sim.demo_config()}})
    with pytest.raises(ConfigError, match=r"\[ledger\]"):
        gw.send(Message(**MSG, key="k"))
    assert sends(sim) == []
    result = gw.send(Message(**MSG))
    assert result.ok and result.key is None and not result.replayed
    with pytest.raises(ConfigError, match="ledger"):
        gw.status("k")


def test_a_send_without_key_is_recorded_under_a_made_up_key(sim, ledger_conf):
    with gateway(sim, ledger_conf) as gw:
        result = gw.send(Message(**MSG))
        record = gw.status(result.key)
    assert result.key.startswith("auto-")
    assert {r.phone: (r.outcome, r.message_id) for r in record.rows} == {
        r.phone: (r.outcome.value, r.message_id) for r in result.recipients}


class CheckingSimulator(LoopbackSimulator):
    """Looks the request's recipients up in the ledger the moment the request arrives."""

    ledger = None
    seen: list = []

    def handle(self, request):
        phones = json.loads(request.body)["phones"]
        records = [record for record in map(self.ledger.status, self.keys) if record is not None]
        rows = [r for record in records for r in record.rows]
        self.seen.append(sorted((r.request_index, r.outcome) for r in rows if r.phone in phones))
        self.counted = [record.counts() == tally(record) for record in records]  # (while some are sending)
        return super().handle(request)


def test_each_request_is_written_as_sending_before_it_leaves(ledger_conf):
    with CheckingSimulator() as sim:
        sim.seen, sim.keys = [], ["multi"]
        with gateway(sim, ledger_conf, max_concurrency=1) as gw:
            sim.ledger = gw.ledger
            phones = [f"1380013{i:04d}" for i in range(250)]  # loopback takes 100 a request: 3 requests
            result = gw.send(Message(to=phones, template_id="LB_CODE", params=["1"], key="multi"))
            record = gw.status("multi")
    assert result.ok
    assert [len(s) for s in sim.seen] == [100, 100, 50] and sim.counted == [True]
    for index, seen in enumerate(sim.seen):
        assert set(seen) == {(index, "sending")}
    assert sorted({r.request_index for r in record.rows}) == [0, 1, 2]
    assert all(r.outcome == "accepted" and r.settled_at >= r.sent_at for r in record.rows)
    assert {r.message_id for r in record.rows} == set(result.message_ids)


def test_per_recipient_fields_are_kept(sim, ledger_conf):
    sim.backend.reject_numbers = {"13900139000"}
    with gateway(sim, ledger_conf) as gw:
        result = gw.send(Message(**MSG, key="fields"))
        rows = {r.phone: r for r in gw.status("fields").rows}
        replay = gw.send(Message(**MSG, key="fields"))
    ok, bad = rows["13800138000"], rows["13900139000"]
    assert (ok.outcome, ok.provider, ok.vendor, ok.request_index) == ("accepted", "loopback", "loopback", 0)
    assert ok.message_id and ok.request_id and ok.sent_at and ok.settled_at
    assert (bad.outcome, bad.reason_code, bad.reason_text, bad.not_sent) == (
        "rejected", "REJECTED", "number refused by loopback", True)
    assert replay.recipients == result.recipients
    data = result.to_json_dict()["recipients"]
    one = {"phone": "13900139000", "outcome": "rejected", "provider": "loopback", "message_id": None,
           "request_id": data[1]["request_id"],
           "reason": {"code": "REJECTED", "message": "number refused by loopback", "not_sent": True}}
    assert data[1] == {**one, "attempts": [one]}  # one provider, one attempt


def test_unknown_is_settled_by_a_pushed_report_and_nothing_else(sim, ledger_conf, push_reports):
    with gateway(sim, ledger_conf, read_timeout=0.3) as gw:
        sim.slow_seconds = 1.0
        sim.inject(Fault.SLOW, path="/send")
        result = gw.send(Message(**MSG, key="slow"))
        assert result.unknown == MSG["to"]
        again = gw.send(Message(**MSG, key="slow"))  # a retry of an unknown send: still nothing sent
        assert again.replayed and again.unknown == MSG["to"]
        assert len(sends(sim)) == 1
        push_reports(sim, gw)
        rows = gw.status("slow").rows
        later = gw.send(Message(**MSG, key="slow"))
    assert [(r.outcome, r.delivery_status) for r in rows] == [("accepted", "delivered")] * 2
    assert all(r.message_id == sim.records[0].message_id for r in rows)
    assert later.ok and later.replayed


def test_reports_match_by_id_and_phone_and_wait_when_early(ledger_conf):
    ledger = open_ledger(**ledger_conf)
    try:
        now = time.time()
        phones = ["13800138000", "13900139000"]
        assert ledger.begin("k", "fp", "lb", 2, None, now, Attempt(index=0, provider="lb", vendor="loopback",
                                                                  phones=phones)) is None
        early = DeliveryReport(provider="loopback", message_id="M1", phone="8613900139000", status=Status.DELIVERED,
                               raw_status="DELIVRD", reported_at="2024-01-01 10:00:00")
        # the id is not recorded yet, but the phone has a request in flight: the vendor had it
        assert ledger.match_reports([early], now) == 1
        ledger.settle("k", 0, [RecipientResult(phone=p, outcome=Outcome.ACCEPTED, message_id="M1") for p in phones],
                      now)
        no_phone = DeliveryReport(provider="loopback", message_id="M1", phone=None, status=Status.FAILED)
        assert ledger.match_reports([no_phone], now) == 0  # one id for two phones: which one is unknowable
        rows = {r.phone: r for r in ledger.status("k").rows}
        assert (rows["13900139000"].delivery_status, rows["13900139000"].delivery_code) == ("delivered", "DELIVRD")
        assert rows["13800138000"].delivery_status is None
        pending = DeliveryReport(provider="loopback", message_id="M1", phone="13900139000", status=Status.PENDING)
        assert ledger.match_reports([pending], now) == 1
        assert {r.phone: r.delivery_status for r in ledger.status("k").rows}["13900139000"] == "delivered"

        # one id per recipient: an early report with no phone waits for the settle, then applies
        ledger.begin("j", "fp", "lb", 1, None, now, Attempt(index=0, provider="lb", vendor="loopback",
                                                             phones=["13700137000"]))
        lone = DeliveryReport(provider="loopback", message_id="J9", phone=None, status=Status.FAILED,
                              description="blocked")
        assert ledger.match_reports([lone], now) == 0
        ledger.settle("j", 0, [RecipientResult(phone="13700137000", outcome=Outcome.ACCEPTED, message_id="J9")], now)
        [row] = ledger.status("j").rows
        assert (row.delivery_status, row.delivery_text) == ("failed", "blocked")
        assert ledger.match_reports([lone], now) == 1  # matched directly now
    finally:
        ledger.close()


def test_prune_forgets_old_sends(sim, ledger_conf):
    clock = [1_700_000_000.0]
    gw = Gateway({"providers": {"loopback": sim.demo_config()}, "ledger": ledger_conf}, clock=lambda: clock[0])
    gw.send(Message(**MSG, key="old"))
    clock[0] += 40 * 86400
    gw.send(Message(**MSG, key="new"))
    assert gw.prune_ledger(30 * 86400) == 1
    assert gw.status("old") is None and gw.status("new") is not None
    gw.close()


class Failing:
    """A ledger whose disk fills up after the first request."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def record_request(self, key, attempt, now):
        from smsgate.errors import LedgerError

        if attempt.index > 0:
            raise LedgerError("disk full")
        return self.inner.record_request(key, attempt, now)


def test_a_request_that_cannot_be_recorded_does_not_leave(sim, tmp_path):
    ledger = Failing(open_ledger(f"sqlite:///{tmp_path}/l.sqlite3"))
    gw = Gateway({"providers": {"loopback": {**sim.demo_config(), "max_concurrency": 1}}}, ledger=ledger)
    phones = [f"1380013{i:04d}" for i in range(150)]  # two requests
    result = gw.send(Message(to=phones, template_id="LB_CODE", params=["1"], key="full"))
    assert len(sends(sim)) == 1
    assert len(result.accepted) == 100
    assert {(r.outcome, r.reason.code, r.reason.not_sent) for r in result.rejected} == {
        (Outcome.REJECTED, "LEDGER", True)}


# -- several processes ------------------------------------------------------------------------

CHILD = r"""
import json, sys, time
from smsgate import Gateway, Message
args = json.loads(sys.argv[1])
gw = Gateway({"providers": {"loopback": args["provider"]}, "ledger": args["ledger"]})
gw.status("warm-up")  # connect and create the tables before the start line
while time.time() < args["start_at"]:
    time.sleep(0.0005)
result = gw.send(Message(to=args["to"], template_id="LB_CODE", params=["1234"], key=args["key"]))
print(json.dumps(result.to_json_dict()))
"""


def child(sim, ledger_conf, key, start_at, **provider):
    arg = json.dumps({"provider": {**sim.demo_config(), **provider}, "ledger": ledger_conf, "key": key,
                      "to": MSG["to"], "start_at": start_at})
    return subprocess.Popen([sys.executable, "-c", CHILD, arg], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def test_eight_processes_one_key_one_request(sim, ledger_conf):
    sim.slow_seconds = 0.5  # the winner's request is still in flight while the others arrive
    sim.inject(Fault.SLOW, path="/send")
    start_at = time.time() + 3.0
    procs = [child(sim, ledger_conf, "together", start_at) for _ in range(8)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, 1) and out.strip(), err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert len(sends(sim)) == 1
    sent = [r for r in results if not r["replayed"]]
    assert len(sent) == 1 and sent[0]["ok"]
    for r in results:
        if r["replayed"]:
            assert {x["outcome"] for x in r["recipients"]} <= {"accepted", "unknown"}
            assert all(x["message_id"] in (None, sent[0]["message_ids"][0]) for x in r["recipients"])


def test_kill_9_mid_send_never_resends_and_reports_settle_later(sim, ledger_conf, push_reports):
    sim.slow_seconds = 5.0
    sim.inject(Fault.SLOW, path="/send")
    proc = child(sim, ledger_conf, "killed", time.time(), read_timeout=30.0)
    deadline = time.time() + 60
    while not sends(sim):  # the request reached the vendor; its answer is not back yet
        assert time.time() < deadline and proc.poll() is None, proc.stderr.read() if proc.poll() is not None else ""
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()
    proc.stderr.close()

    again = child(sim, ledger_conf, "killed", time.time())
    out, err = again.communicate(timeout=60)
    replay = json.loads(out.strip().splitlines()[-1])
    assert replay["replayed"] and replay["unknown"] == MSG["to"]
    assert {x["reason"]["code"] for x in replay["recipients"]} == {"IN_FLIGHT"}
    assert len(sends(sim)) == 1

    with gateway(sim, ledger_conf) as gw:
        push_reports(sim, gw)
        after = gw.send(Message(**MSG, key="killed"))
    assert after.replayed and after.ok
    assert len(sends(sim)) == 1


# -- one row per request ----------------------------------------------------------------------

def count(ledger, table, key):
    with ledger._tx("read") as cur:
        cur.execute(f"SELECT COUNT(*) FROM {table} WHERE key = ?", (key,))
        return int(cur.fetchone()[0])


def test_a_request_is_one_row_and_only_a_phone_with_its_own_outcome_gets_a_row(sim, ledger_conf, push_reports):
    sim.backend.reject_numbers = {"13800130007"}
    phones = [f"1380013{i:04d}" for i in range(250)]  # loopback takes 100 a request: 3 requests
    with gateway(sim, ledger_conf, max_concurrency=1) as gw:
        result = gw.send(Message(to=phones, template_id="LB_CODE", params=["1"], key="rows"))
        assert (count(gw.ledger, "ledger_requests", "rows"), count(gw.ledger, "ledger_recipients", "rows")) == (3, 1)
        record = gw.status("rows")
        replay = gw.send(Message(to=phones, template_id="LB_CODE", params=["1"], key="rows"))
        push_reports(sim, gw)  # a delivery report per accepted phone: each gets a row of its own
        assert count(gw.ledger, "ledger_recipients", "rows") == 250
        delivered = gw.status("rows")
    assert [(r.request_index, r.phone) for r in record.rows] == [(i // 100, p) for i, p in enumerate(phones)]
    by_phone = {r.phone: r for r in record.rows}
    assert (by_phone["13800130007"].outcome, by_phone["13800130007"].reason_code) == ("rejected", "REJECTED")
    assert {r.phone: (r.outcome, r.message_id) for r in record.rows} == {
        r.phone: (r.outcome.value, r.message_id) for r in result.recipients}
    assert replay.replayed and replay.recipients == result.recipients
    assert len(replay.outcomes) == 5  # per request, the refused phone on its own
    assert {r.delivery_status for r in delivered.rows if r.outcome == "accepted"} == {"delivered"}
    assert {r.phone: r.outcome for r in delivered.rows} == {r.phone: r.outcome for r in record.rows}
    # counted from the requests and own rows, as the rows would count
    assert record.counts() == tally(record) == {("accepted", None): 249, ("rejected", None): 1}
    assert delivered.counts() == tally(delivered)


def tally(record):
    """``record.rows`` counted per (outcome, delivery status), one row object per recipient."""
    from collections import Counter

    return dict(Counter((r.outcome, r.delivery_status) for r in record.rows))


OLD_SCHEMA = (  # the tables as a ledger file had them before ledger_requests
    "CREATE TABLE ledger_sends (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, provider TEXT NOT NULL, "
    "recipients INTEGER NOT NULL, segments INTEGER, created_at REAL NOT NULL)",
    "CREATE TABLE ledger_recipients (key TEXT NOT NULL, request_index INTEGER NOT NULL, phone TEXT NOT NULL, "
    "provider TEXT NOT NULL, vendor TEXT NOT NULL, outcome TEXT NOT NULL, message_id TEXT, request_id TEXT, "
    "reason_code TEXT, reason_text TEXT, not_sent INTEGER, sent_at REAL NOT NULL, settled_at REAL, "
    "delivery_status TEXT, delivery_code TEXT, delivery_text TEXT, delivered_at TEXT, reported_at REAL, "
    "PRIMARY KEY (key, request_index, phone)) WITHOUT ROWID",
    "CREATE TABLE ledger_reports (id INTEGER PRIMARY KEY AUTOINCREMENT, provider TEXT NOT NULL, message_id TEXT, "
    "phone TEXT, status TEXT NOT NULL, raw_status TEXT, description TEXT, reported_at TEXT, "
    "received_at REAL NOT NULL)",
    "CREATE INDEX ledger_reports_message ON ledger_reports (message_id)",
)


def test_a_ledger_file_from_before_request_rows_is_read_replayed_and_matched(sim, tmp_path):
    import sqlite3

    from smsgate.sending.ledger import fingerprint

    path = tmp_path / "old.sqlite3"
    message = Message(to=["13800138000", "13900139000", "15000150000"], template_id="LB_CODE", params=["1"],
                      key="old")
    with sqlite3.connect(path) as db:
        for statement in OLD_SCHEMA:
            db.execute(statement)
        db.execute("INSERT INTO ledger_sends VALUES ('old', ?, 'loopback', 3, NULL, 1.0)", (fingerprint(message),))
        db.executemany("INSERT INTO ledger_recipients (key, request_index, phone, provider, vendor, outcome, "
                       "message_id, request_id, reason_code, reason_text, not_sent, sent_at, settled_at) "
                       "VALUES ('old', 0, ?, 'loopback', 'loopback', ?, ?, 'R', ?, ?, ?, 1.0, 2.0)",
                       [("13800138000", "accepted", "M1", None, None, None),
                        ("13900139000", "rejected", None, "REJECTED", "refused", 1),
                        ("15000150000", "unknown", None, "TRANSPORT", "read timeout", 0)])
    with Gateway({"providers": {"loopback": sim.demo_config()}, "ledger": {"url": f"sqlite:///{path}"}}) as gw:
        record = gw.status("old")
        replay = gw.send(message)
        assert not sends(sim)  # answered from the ledger
        matched = gw.match_reports([
            DeliveryReport(provider="loopback", message_id="M1", phone="13800138000", status=Status.DELIVERED),
            DeliveryReport(provider="loopback", message_id="M7", phone="15000150000", status=Status.DELIVERED)])
        after = {r.phone: r for r in gw.status("old").rows}
        new = gw.send(Message(to=["13700137000"], template_id="LB_CODE", params=["1"], key="new"))
    assert [(r.phone, r.outcome) for r in record.rows] == [
        ("13800138000", "accepted"), ("13900139000", "rejected"), ("15000150000", "unknown")]
    assert record.counts() == tally(record)  # rows of no request, as an older version wrote them
    assert replay.replayed and [(r.phone, r.outcome, r.message_id) for r in replay.recipients] == [
        ("13800138000", Outcome.ACCEPTED, "M1"), ("13900139000", Outcome.REJECTED, None),
        ("15000150000", Outcome.UNKNOWN, None)]
    assert matched == 2
    assert (after["13800138000"].delivery_status, after["15000150000"].outcome,
            after["15000150000"].message_id) == ("delivered", "accepted", "M7")  # a report settles the unknown
    assert new.ok and not new.replayed
