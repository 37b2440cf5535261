"""The durable spool: dedup, per-handler delivery rows, retries, dead owners, the JSON-lines sink."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from smsgate.models import DeliveryReport, InboundMessage, Status, TaskSummary
from smsgate.receiving import Dispatcher, Handler, JsonlSink, Spool, SpoolError
from smsgate.receiving.store import dedup_key, push_keys


def rep(mid="M1", phone="13800138000", status=Status.DELIVERED, provider="p"):
    return DeliveryReport(provider=provider, message_id=mid, phone=phone, status=status, raw_status="X",
                          raw={"id": mid})


def inbound(content="hello", phone="13800138000"):
    return InboundMessage(provider="p", phone=phone, content=content, received_at="2024-09-18 11:30:16")


def test_dedup_same_report_pushed_and_pulled(spool):
    spool.register_handler("h")
    first = spool.put([rep(), rep("M2")], source="push")
    again = spool.put([rep(phone="+86 138-0013-8000"), rep("M2")], source="pull")
    assert (first.stored, first.duplicates) == (2, 0)
    assert (again.stored, again.duplicates) == (0, 2)
    # another status of the same message is a new event
    assert spool.put([rep(status=Status.FAILED)]).stored == 1
    assert spool.counts()["events"] == 3
    assert spool.counts()["handlers"]["h"]["pending"] == 3


def test_dedup_keys_by_kind():
    assert dedup_key(rep()) != dedup_key(rep(provider="q"))
    assert dedup_key(inbound("a")) != dedup_key(inbound("b"))
    assert dedup_key(inbound("a")) == dedup_key(inbound("a", phone="8613800138000"))
    t = TaskSummary(provider="p", task_id="T1", total=3, sent=2, failed=1)
    assert dedup_key(t).startswith("p|task|T1")


def test_round_trip_of_models(spool):
    t = TaskSummary(provider="p", task_id="T1", total=3, sent=2, failed=1, raw={"a": 1})
    spool.put([rep(), inbound(), t])
    events = spool.events()
    assert [e.kind for e in events] == ["report", "inbound", "task"]
    assert events[0].event == rep() and events[0].event.raw == {"id": "M1"}
    assert events[1].event == inbound() and events[2].event == t


def test_handlers_get_only_their_kinds(spool):
    spool.register_handler("reports", ["report"])
    spool.register_handler("all")
    spool.put([rep(), inbound()])
    counts = spool.counts()["handlers"]
    assert counts["reports"]["pending"] == 1 and counts["all"]["pending"] == 2


def test_claim_complete_fail_and_dead(spool):
    spool.register_handler("h")
    spool.put([rep("A"), rep("B")])
    batch = spool.claim("h", "me", limit=10)
    assert [b.event.message_id for b in batch] == ["A", "B"]
    assert spool.claim("h", "other", limit=10) == []  # leased
    spool.complete("h", [batch[0].id])
    spool.fail("h", [batch[1].id], "boom", delay=lambda n: 0, max_attempts=2)
    again = spool.claim("h", "me", limit=10)
    assert [(b.event.message_id, b.attempts) for b in again] == [("B", 1)]
    spool.fail("h", [again[0].id], "boom", delay=lambda n: 0, max_attempts=2)
    assert spool.claim("h", "me") == []
    assert spool.counts()["handlers"]["h"]["dead"] == 1
    assert spool.requeue_dead("h") == 1
    assert len(spool.claim("h", "me")) == 1


def test_backoff_delays_the_retry(spool):
    now = [1000.0]
    spool.clock = lambda: now[0]
    spool.register_handler("h")
    spool.put([rep()])
    [item] = spool.claim("h", "me")
    spool.fail("h", [item.id], "boom", delay=lambda n: 30)
    assert spool.claim("h", "me") == []
    now[0] += 31
    assert len(spool.claim("h", "me")) == 1


def test_rows_leased_by_a_dead_process_are_released(spool):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead_owner = f"{socket.gethostname()}:{proc.pid}:abcd"
    spool.register_handler("h")
    spool.put([rep()])
    assert len(spool.claim("h", dead_owner, lease_seconds=3600)) == 1
    assert spool.claim("h", "me") == []
    assert spool.release_dead_owners() == 1
    assert len(spool.claim("h", "me")) == 1


def test_live_owner_keeps_its_lease(spool):
    live_owner = f"{socket.gethostname()}:1:abcd"  # pid 1 is alive
    spool.register_handler("h")
    spool.put([rep()])
    spool.claim("h", live_owner, lease_seconds=3600)
    assert spool.release_dead_owners() == 0


def test_dispatcher_runs_handlers_and_retries(spool):
    seen, batches = [], []
    fails = {"n": 0}

    def flaky(report):
        if fails["n"] < 2:
            fails["n"] += 1
            raise ValueError("not yet")
        seen.append(report.message_id)

    d = Dispatcher(spool, [Handler(name="flaky", fn=flaky, retry_base=0.001, retry_cap=0.01),
                           Handler(name="batch", fn=batches.append, batch=True, batch_size=3)], poll_interval=0.02)
    d.start()
    try:
        spool.put([rep(f"M{i}") for i in range(7)])
        assert d.drain(60, include_retries=True)
    finally:
        d.stop()
    assert sorted(seen) == sorted(f"M{i}" for i in range(7))
    assert sum(len(b) for b in batches) == 7 and max(len(b) for b in batches) <= 3
    assert d.failures == 2


def test_put_failure_raises_spool_error_and_stores_nothing(spool):
    conn = spool._writer
    conn.execute(f"PRAGMA max_page_count={conn.execute('PRAGMA page_count').fetchone()[0]}")
    with pytest.raises(SpoolError):
        spool.put([rep(f"M{i}", phone=None) for i in range(500)])
    conn.execute("PRAGMA max_page_count=1073741823")
    assert spool.counts()["events"] == 0


def test_unopenable_spool(tmp_path):
    (tmp_path / "dir.sqlite3").mkdir()
    with pytest.raises(SpoolError):
        Spool(tmp_path / "dir.sqlite3")
    with pytest.raises(ValueError):
        Spool(tmp_path / "x.sqlite3", synchronous="OFF")


def test_a_spool_file_whose_text_is_not_utf8_is_refused(tmp_path):
    import sqlite3

    path = tmp_path / "utf16.sqlite3"
    with sqlite3.connect(path) as conn:  # payloads are stored as UTF-8 bytes cast to text
        conn.execute("PRAGMA encoding='UTF-16le'")
        conn.execute("CREATE TABLE other (x)")
    conn.close()
    with pytest.raises(SpoolError, match="UTF-16le, not UTF-8"):
        Spool(path)


def test_prune_keeps_unhandled(spool):
    now = [0.0]
    spool.clock = lambda: now[0]
    spool.register_handler("h")
    spool.put([rep("old")])
    spool.register_handler("late", ["inbound"])
    now[0] = 10.0
    spool.put([rep("new")])
    [a, b] = spool.claim("h", "me")
    spool.complete("h", [a.id])
    now[0] = 100.0
    assert spool.prune(50) == 1  # "old" was handled; "new" still waits for h
    assert [e.event.message_id for e in spool.events()] == ["new"]


def test_jsonl_sink_writes_once_and_repairs_a_torn_line(spool, tmp_path):
    path = tmp_path / "events.jsonl"
    spool.put([rep("A"), inbound()])
    items = spool.events()
    sink = JsonlSink(path)
    sink(items)
    sink(items)  # a repeated call (after a crash) writes nothing more
    sink.close()
    with open(path, "ab") as fh:
        fh.write(b'{"event_id": 99, "provider": "p", "kin')  # killed mid-write
    sink = JsonlSink(path)
    assert sink.written == {items[0].id, items[1].id}
    sink(items)
    sink.close()
    lines = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    assert [line["event_id"] for line in lines] == [items[0].id, items[1].id]
    assert lines[1]["kind"] == "inbound" and lines[1]["content"] == "hello" and lines[1]["status"] is None


def test_jsonl_sink_recovers_a_file_of_spaced_lines_and_appends_compact_ones(spool, tmp_path):
    # files written before the lines became compact JSON have ", " and ": " between items
    spool.put([rep("A"), rep("B"), inbound()])
    items = spool.events()
    path = tmp_path / "events.jsonl"
    old = [json.dumps({"event_id": item.id, "provider": "p", "kind": item.kind, "raw": {"id": "x, y: z"}},
                      ensure_ascii=False) for item in items[:2]]
    path.write_bytes(("\n".join(old) + '\n{"event_id": ' + str(items[2].id) + ', "provider": "p", "ki').encode())
    sink = JsonlSink(path)
    assert sink.written == {items[0].id, items[1].id}
    sink(items)
    sink.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[:2] == old and len(lines) == 3  # the torn line cut, the spaced ones kept and not written again
    assert lines[2].startswith(f'{{"event_id":{items[2].id},"provider":"p","kind":"inbound",')
    assert JsonlSink(path).written == {item.id for item in items}


def test_spool_reopens_its_connections_after_fork(spool):
    import os

    spool.register_handler("h")
    spool.put([rep("before")])
    pid = os.fork()
    if pid == 0:  # the child: a preloaded worker
        code = 1
        try:
            spool.put([rep("child")])
            code = 0 if len(spool.claim("h", "child", 10)) == 2 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [e.event.message_id for e in spool.events()] == ["before", "child"]


class FakeClock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def test_slow_handler_keeps_its_lease_on_the_rows_it_has_not_run_yet(tmp_path):
    """A worker leases several rows and runs them one by one; when the handler is slow the lease
    must not run out under the rows still waiting (another worker would run them too)."""
    clock = FakeClock()
    spool = Spool(tmp_path / "s.sqlite3", clock=clock)
    lease = 3.0
    calls: list[str] = []
    stolen: list[int] = []

    def slow(report):
        calls.append(report.message_id)
        clock.now += lease * 0.6  # each call takes 60 % of the lease
        # another worker (another process) looks for due rows now
        got = spool.claim("slow", "other-host:1:x", 100, lease)
        stolen.extend(e.id for e in got)

    try:
        d = Dispatcher(spool, [Handler(name="slow", fn=slow)], poll_interval=0.01, lease_seconds=lease)
        spool.put([rep(f"M{i}") for i in range(8)])
        d.start()
        assert d.drain(30)
        d.stop()
        assert stolen == []
        assert sorted(calls) == sorted(f"M{i}" for i in range(8))
    finally:
        spool.close()


def test_rows_claimed_by_another_worker_after_expiry_are_skipped(tmp_path):
    clock = FakeClock()
    spool = Spool(tmp_path / "s.sqlite3", clock=clock)
    calls: list[str] = []

    def very_slow(report):
        calls.append(report.message_id)
        if report.message_id == "M0":
            clock.now += 10.0  # longer than the whole lease: the others expire meanwhile
            assert {e.event.message_id for e in spool.claim("h", "other-host:1:x", 100, 3.0)} == {"M1", "M2"}

    try:
        d = Dispatcher(spool, [Handler(name="h", fn=very_slow)], poll_interval=0.01, lease_seconds=3.0)
        spool.put([rep(f"M{i}") for i in range(3)])
        rows = spool.claim("h", d.owner, 10, 3.0)
        d._run_items(d.handlers["h"], rows, clock.now + 3.0, lambda n: 1.0)
        assert calls == ["M0"]  # M1 and M2 now belong to the other worker
        assert spool.counts()["handlers"]["h"]["leased"] == 2
    finally:
        spool.close()


def test_dedup_key_folds_full_width_phones_and_keeps_other_scripts_apart():
    from smsgate import DeliveryReport, Status
    from smsgate.receiving.store import dedup_key, push_keys

    def report(phone):
        return DeliveryReport(provider="p", message_id="m1", phone=phone, status=Status.DELIVERED)

    assert dedup_key(report("１３８００１３８０００")) == dedup_key(report("13800138000"))
    assert dedup_key(report("13800١٣٨٠٠٠")) != dedup_key(report("13800138000"))


def test_claimed_events_are_the_stored_models_and_compare_as_before(spool):
    import attrs

    from smsgate.receiving import SpooledEvent

    t = TaskSummary(provider="p", task_id="T1", total=3, sent=2, failed=1, raw={"a": [1, None]})
    spool.register_handler("h")
    spool.put([rep("A"), inbound("hé\udfff"), t])
    claimed = spool.claim("h", "me", 10)
    assert [c.event for c in claimed] == [rep("A"), inbound("hé\udfff"), t]
    assert claimed[0].event.raw == {"id": "A"} and claimed[2].event.raw == {"a": [1, None]}
    built = [SpooledEvent(id=c.id, provider=c.provider, kind=c.kind, source=c.source, spooled_at=c.spooled_at,
                          event=e) for c, e in zip(claimed, [rep("A"), inbound("hé\udfff"), t])]
    fresh = spool.events()
    assert fresh == built and {hash(x) for x in fresh} == {hash(x) for x in built}
    assert repr(fresh[0]) == repr(built[0]) and "event=DeliveryReport(" in repr(fresh[0])
    assert attrs.evolve(fresh[0], attempts=2).attempts == 2 and attrs.evolve(fresh[0], attempts=2).event == rep("A")
    with pytest.raises(TypeError):
        SpooledEvent(id=1, provider="p", kind="report", source="push", spooled_at=0.0)


def test_an_unreadable_stored_event_fails_its_handler_not_the_claim(spool):
    spool.register_handler("h")
    spool.put([rep("A")])
    spool._writer.execute("UPDATE events SET payload='{\"provider\": '")
    (item,) = spool.claim("h", "me", 10)
    with pytest.raises(ValueError):
        item.event


def test_jsonl_lines_are_the_same_whether_or_not_a_handler_read_the_models(spool, tmp_path):
    t = TaskSummary(provider="p", task_id="T1", total=3, sent=2, failed=1, raw={"a": 1})
    spool.put([rep("A"), inbound("hé\udfff"), t, rep("B", phone=None)])
    unread, read = spool.events(), spool.events()
    for item in read:
        assert item.event is not None
    for name, items in (("unread", unread), ("read", read)):
        sink = JsonlSink(tmp_path / f"{name}.jsonl")
        sink(items)
        sink.close()
    text = (tmp_path / "unread.jsonl").read_bytes()
    assert text == (tmp_path / "read.jsonl").read_bytes()
    lines = [json.loads(x) for x in text.decode("utf-8").splitlines()]
    assert [line["kind"] for line in lines] == ["report", "inbound", "task", "report"]
    assert lines[1]["content"] == "hé\udfff" and lines[0]["status"] == "delivered" and lines[2]["sent"] == 2
    assert list(lines[0]) == ["event_id", "provider", "kind", "source", "message_id", "phone", "status", "content",
                              "received_at", "raw_status", "description", "reported_at", "biz_id", "raw"]


def test_payloads_are_json_text_of_the_plain_event(spool):
    from smsgate.receiving.store import plain_event
    from smsgate.wire import json_text

    events = [rep("A"), inbound("hé\udfff"), rep("C", phone="+86 138-0013-8000")]
    spool.put(events)
    stored = [r[0] for r in spool._book.execute("SELECT payload FROM events ORDER BY id")]
    kinds = ["report", "inbound", "report"]
    assert stored == [json_text(plain_event(e, k), default=str) for e, k in zip(events, kinds)]
    assert stored[1].isascii() and "\\udfff" in stored[1]  # the surrogate's whole text is \u-escaped


def test_a_put_wakes_one_claim_per_handler_not_one_per_worker(spool):
    claims = []
    claim = spool.claim

    def counting_claim(*args, **kwargs):
        got = claim(*args, **kwargs)
        claims.append(len(got))
        return got

    spool.claim = counting_claim
    handled = []
    workers, puts = 8, 6
    d = Dispatcher(spool, [Handler(name="batch", fn=handled.extend, batch=True, batch_size=100, workers=workers)],
                   poll_interval=60)  # no claims on timeouts during the test
    d.start()
    try:
        assert d.drain(30)
        for n in range(puts):
            spool.put([rep(f"M{n}-{i}") for i in range(5)])
            assert d.drain(30)
    finally:
        d.stop()
    assert len(handled) == 5 * puts
    # each worker's first look, then per put the claim that takes the rows and the one that finds
    # the rest empty (a woken sibling may slip in once); without the gate every worker claims per put
    assert len(claims) <= workers + 3 * puts, claims


def test_claims_walk_the_primary_key(spool):
    plan = spool._book.execute(
        "EXPLAIN QUERY PLAN SELECT event_id FROM deliveries WHERE handler=? AND ((state='pending' AND next_at<=?) "
        "OR (state='leased' AND lease_until<?)) ORDER BY event_id LIMIT ?", ("h", 1, 1, 10)).fetchall()
    assert "PRIMARY KEY" in str(plan) and "TEMP B-TREE" not in str(plan)
    indexes = [r[0] for r in spool._book.execute(
        "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='deliveries' AND sql IS NOT NULL")]
    assert indexes == []  # nothing else to write on every put, lease and completion


def test_an_event_that_cannot_be_read_back_fails_its_handler_and_the_worker_goes_on(spool):
    seen = []
    d = Dispatcher(spool, [Handler(name="one", fn=lambda r: seen.append(r.message_id), max_attempts=1)],
                   poll_interval=0.02)
    spool.put([rep("A")])
    spool._writer.execute("UPDATE events SET payload='{\"provider\": '")
    spool.put([rep("B")])
    d.start()
    try:
        assert d.drain(30)
    finally:
        d.stop()
    assert seen == ["B"] and d.failures == 1
    assert spool.counts()["handlers"]["one"]["dead"] == 1


@pytest.mark.parametrize("size", [49, 50, 51, 130])
def test_a_large_put_stores_each_new_event_once_in_push_order(spool, size):
    spool.put([rep(f"M{n}") for n in range(0, size, 7)])  # stored before: every 7th
    events = [rep(f"M{n}") for n in range(size)]
    events.insert(size // 2, rep("M1"))  # twice in the push
    events.append(inbound("hé\udfff"))
    put = spool.put(events, source="pull")
    new = [n for n in range(size) if n % 7]
    assert (put.stored, put.duplicates) == (len(new) + 1, len(events) - len(new) - 1)
    assert list(put.ids) == sorted(put.ids) and len(set(put.ids)) == len(put.ids)
    stored = {item.id: item for item in spool.events(after=min(put.ids) - 1, limit=1000)}
    assert [stored[i].event.message_id for i in put.ids[:-1]] == [f"M{n}" for n in new]
    assert stored[put.ids[-1]].event.content == "hé\udfff"
    assert {stored[i].source for i in put.ids} == {"pull"}
    assert spool.put(events).stored == 0


@pytest.mark.parametrize("size", [1, 50, 51, 250])
def test_a_puts_ids_are_the_ids_of_the_rows_it_stored(spool, size):
    """ids come from the last row's id when no row was a duplicate (AUTOINCREMENT gives the rows
    of one transaction consecutive ids), and from the file otherwise: an ignored duplicate uses up
    an id, and ids deleted by prune are never given again."""
    def stored_ids(keys):
        rows = spool._writer.execute(
            f"SELECT id FROM events WHERE dedup_key IN ({','.join('?' * len(keys))}) ORDER BY id", keys).fetchall()
        return [r[0] for r in rows]

    def check(events):
        keys = push_keys(events)
        before = set(stored_ids(keys))
        put = spool.put(events)
        assert list(put.ids) == [i for i in stored_ids(keys) if i not in before]
        return put

    check([rep(f"A{n}") for n in range(size)])  # an empty spool
    check([rep(f"B{n}") for n in range(size)])
    # the newest events pruned: their ids are not reused, the next put's ids start after them
    spool._writer.execute("DELETE FROM events WHERE dedup_key LIKE '%|B%'")
    put = check([rep(f"C{n}") for n in range(size)])
    assert min(put.ids) > size * 2
    # duplicates spread through a push (each uses up an id when ignored): the ids of the new rows
    events = [rep(f"{'C' if n % 3 == 0 else 'D'}{n}") for n in range(size)]
    put = check(events)
    assert put.stored == len([n for n in range(size) if n % 3]) and put.duplicates == size - put.stored
    assert [spool.events(after=i - 1, limit=1)[0].id for i in put.ids] == list(put.ids)


@pytest.mark.parametrize("mixed", [False, True])
def test_each_row_of_a_put_has_its_own_provider_and_kind(tmp_path, mixed):
    """A put of one provider's events of one kind binds the provider and kind once for every row;
    any other put binds them per row."""
    with Spool(tmp_path / "spool.sqlite3", clock=lambda: 1726631416.5) as spool:
        events = [rep(f"M{n}", provider="a") for n in range(60)]
        if mixed:
            events[7] = rep("M7", provider="b")
            events[55] = inbound()
        assert spool.put(events, source="pull").stored == 60
        rows = spool._book.execute("SELECT provider, kind, source, spooled_at FROM events ORDER BY id").fetchall()
    expected = [(e.provider, "inbound" if isinstance(e, InboundMessage) else "report", "pull", 1726631416.5)
                for e in events]
    assert rows == expected
