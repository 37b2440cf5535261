"""The spool's bookkeeping per handler: a cursor into the events, and a row only for the events a
handler holds, retries or gave up on. Spools written before cursors existed keep working."""

from __future__ import annotations

import json
import socket
import sqlite3
import subprocess
import sys
import threading

import pytest

from smsgate.models import DeliveryReport, InboundMessage, Status, TaskSummary
from smsgate.receiving import Dispatcher, Handler, Spool


def rep(mid="M1", phone="13800138000"):
    return DeliveryReport(provider="p", message_id=mid, phone=phone, status=Status.DELIVERED)


def inbound(content="hello"):
    return InboundMessage(provider="p", phone="13800138000", content=content, received_at="2024-09-18 11:30:16")


def task(task_id="T1"):
    return TaskSummary(provider="p", task_id=task_id, total=1, sent=1, failed=0)


def ids(batch):
    return [item.event.message_id for item in batch]


def rows(spool, handler=None):
    sql = "SELECT handler, event_id, state FROM deliveries"
    if handler is not None:
        return spool._book.execute(sql + " WHERE handler=? ORDER BY event_id", (handler,)).fetchall()
    return spool._book.execute(sql + " ORDER BY handler, event_id").fetchall()


def dead_owner():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return f"{socket.gethostname()}:{proc.pid}:abcd"


def test_a_put_writes_nothing_per_handler_and_every_handler_still_gets_its_events(spool):
    spool.register_handler("all")
    spool.register_handler("reports", ["report"])
    spool.put([rep("A"), inbound(), rep("B")])
    assert rows(spool) == []
    counts = spool.counts()["handlers"]
    assert counts["all"] == {"pending": 3, "leased": 0, "dead": 0}
    assert counts["reports"] == {"pending": 2, "leased": 0, "dead": 0}
    assert [i.kind for i in spool.claim("all", "me")] == ["report", "inbound", "report"]
    assert ids(spool.claim("reports", "me")) == ["A", "B"]
    # taken: leased rows now, and nothing waits past the cursors
    assert spool.counts()["handlers"]["reports"] == {"pending": 0, "leased": 2, "dead": 0}
    assert [r[2] for r in rows(spool)] == ["leased"] * 5


def test_a_claim_takes_in_order_up_to_its_limit_and_the_next_claim_goes_on(spool):
    spool.register_handler("h")
    spool.put([rep(f"M{i}") for i in range(7)])
    assert ids(spool.claim("h", "me", limit=3)) == ["M0", "M1", "M2"]
    assert ids(spool.claim("h", "me", limit=3)) == ["M3", "M4", "M5"]
    assert ids(spool.claim("h", "me", limit=3)) == ["M6"]
    assert spool.claim("h", "me", limit=3) == []


def test_complete_removes_the_rows_of_exactly_the_events_given(spool):
    spool.register_handler("h")
    spool.put([rep(f"M{i}") for i in range(6)])
    first = spool.claim("h", "me")[0].id
    spool.complete("h", [first + 1, first + 3])  # not a run
    spool.complete("h", [first + 4, first + 5, first + 4])  # a repeated id: not a run either
    spool.complete("h", [first])  # a run of one
    assert [r[1] - first for r in rows(spool, "h")] == [2]


def test_a_new_handler_gets_the_events_stored_from_now_on(spool):
    spool.put([rep("before")])
    spool.register_handler("h")
    spool.put([rep("after")])
    assert ids(spool.claim("h", "me")) == ["after"]
    spool.register_handler("h")  # registered again (a restart): nothing changes
    assert spool.claim("h", "me") == []


def test_a_handler_of_one_kind_passes_over_the_others_once(spool):
    spool.register_handler("tasks", ["task"])
    spool.put([rep(f"M{i}") for i in range(50)])
    assert spool.claim("tasks", "me", limit=5) == []
    # the cursor went past the reports: they are not looked at again, nor counted as waiting
    newest = spool.last_id()
    assert spool._book.execute("SELECT cursor FROM handlers WHERE name='tasks'").fetchone()[0] == newest
    assert spool.counts()["handlers"]["tasks"]["pending"] == 0
    spool.put([rep("M50"), task()])
    assert [i.kind for i in spool.claim("tasks", "me", limit=5)] == ["task"]


def test_since_id_for_a_new_handler(spool):
    spool.put([rep("A"), inbound(), rep("B")])
    first = spool.events()[0].id
    spool.register_handler("from-start", ["report"], since_id=0)
    spool.register_handler("after-A", since_id=first)
    spool.register_handler("ahead", since_id=first + 100)  # beyond the newest: like no since_id
    spool.put([rep("C")])
    assert ids(spool.claim("from-start", "me")) == ["A", "B", "C"]
    assert [i.kind for i in spool.claim("after-A", "me")] == ["inbound", "report", "report"]
    assert ids(spool.claim("ahead", "me")) == ["C"]


def test_since_id_for_a_known_handler_runs_again_what_it_finished_but_nothing_twice(spool):
    """As before cursors: every stored event after since_id that the handler has no row for
    gets one (those it finished run again), those it holds, retries or gave up on keep their
    row, and those it has not taken yet are taken once."""
    spool.register_handler("h")
    spool.put([rep(f"M{i}") for i in range(6)])
    taken = spool.claim("h", "me", limit=4)  # M0..M3
    spool.complete("h", [taken[0].id, taken[1].id])  # M0, M1 done
    spool.fail("h", [taken[2].id], "boom", delay=lambda n: 0, max_attempts=1)  # M2 dead
    # M3 stays leased by "me"; M4, M5 wait past the cursor
    spool.register_handler("h", since_id=taken[0].id)  # after M0
    again = spool.claim("h", "other")
    assert ids(again) == ["M1", "M4", "M5"]
    assert spool.counts()["handlers"]["h"] == {"pending": 0, "leased": 4, "dead": 1}


def test_new_kinds_apply_to_events_stored_from_then_on(spool):
    """Events already stored keep the kinds registered when they were stored (as when each put
    wrote a row per handler)."""
    spool.register_handler("h", ["report"])
    spool.put([rep("A"), inbound("before")])
    spool.register_handler("h", ["inbound"])
    spool.put([rep("B"), inbound("after")])
    got = spool.claim("h", "me")
    assert [(i.kind, getattr(i.event, "message_id", None) or i.event.content) for i in got] == [
        ("report", "A"), ("inbound", "after")]


def test_forget_handler_drops_its_rows_and_its_cursor(spool):
    spool.register_handler("h")
    spool.put([rep("A"), rep("B")])
    spool.claim("h", "me", limit=1)
    spool.forget_handler("h")
    assert rows(spool) == [] and spool.counts()["handlers"] == {}
    spool.register_handler("h")  # a new handler of the same name: from now on
    spool.put([rep("C")])
    assert ids(spool.claim("h", "me")) == ["C"]


def test_counts_outstanding_oldest_and_drain_see_the_waiting_events(tmp_path):
    now = [1_000_000.0]
    spool = Spool(tmp_path / "s.sqlite3", clock=lambda: now[0])
    try:
        spool.register_handler("a")
        spool.register_handler("b", ["inbound"])
        spool.put([rep("A")])
        now[0] += 10
        spool.put([rep("B"), inbound()])
        assert spool.outstanding() == 4 and spool.outstanding(["a"]) == 3 and spool.outstanding(["b"]) == 1
        assert spool.oldest_outstanding() == {"a": 1_000_000.0, "b": 1_000_010.0}
        [first] = spool.claim("a", "me", limit=1)
        spool.fail("a", [first.id], "boom", delay=lambda n: 60)
        assert spool.counts()["handlers"]["a"] == {"pending": 3, "leased": 0, "dead": 0}
        assert spool.due(["a"]) == 2  # the retry is not due for a minute
        assert spool.due(["a"], include_retries=True) == 3
        d = Dispatcher(spool, [Handler(name="a", fn=lambda e: None), Handler(name="b", fn=lambda e: None)])
        assert not d.drain(0.05)  # nothing runs them: waiting events are due
        d.start()
        try:
            assert d.drain(30)
            assert spool.due(["a"], include_retries=True) == 1
            assert spool.oldest_outstanding() == {"a": 1_000_000.0}
        finally:
            d.stop()
    finally:
        spool.close()


def test_prune_keeps_what_a_handler_has_not_taken_or_still_holds(tmp_path):
    now = [1_000_000.0]
    spool = Spool(tmp_path / "s.sqlite3", clock=lambda: now[0])
    try:
        spool.register_handler("reports", ["report"])
        spool.register_handler("inbound", ["inbound"])
        spool.put([rep("done"), rep("dead"), rep("waiting"), inbound("done")])
        done, dead = spool.claim("reports", "me", limit=2)
        spool.complete("reports", [done.id])
        spool.fail("reports", [dead.id], "boom", delay=lambda n: 0, max_attempts=1)
        [handled] = spool.claim("inbound", "me")
        spool.complete("inbound", [handled.id])
        now[0] += 100
        assert spool.prune(50) == 2  # the handled report and inbound SMS
        assert ids(spool.events()) == ["dead", "waiting"]
        spool.forget_handler("reports")
        assert spool.prune(50) == 2
        # ids are never given again, even after the newest event was pruned: cursors rely on it
        spool.put([rep("new")])
        assert spool.events()[0].id == 5
    finally:
        spool.close()


def test_events_taken_by_a_killed_process_run_again(spool):
    spool.register_handler("h")
    spool.put([rep("A"), rep("B")])
    assert len(spool.claim("h", dead_owner(), lease_seconds=3600)) == 2
    assert spool.claim("h", "me") == []
    assert spool.release_dead_owners() == 2
    again = spool.claim("h", "me")
    assert ids(again) == ["A", "B"] and [i.attempts for i in again] == [0, 0]


def test_events_whose_lease_expired_run_again_and_complete_once(tmp_path):
    now = [1_000_000.0]
    spool = Spool(tmp_path / "s.sqlite3", clock=lambda: now[0])
    try:
        spool.register_handler("h")
        spool.put([rep("A"), rep("B")])
        first = spool.claim("h", "one", lease_seconds=10)
        now[0] += 5
        assert spool.claim("h", "two") == []
        assert spool.renew("h", "one", [first[0].id], lease_seconds=10) == {first[0].id}
        now[0] += 6  # B's lease ran out, A's was renewed
        assert ids(spool.claim("h", "two", lease_seconds=10)) == ["B"]
        spool.complete("h", [i.id for i in first])
        now[0] += 100
        assert spool.claim("h", "three") == [] and spool.outstanding() == 0
    finally:
        spool.close()


def test_a_failing_handler_retries_then_goes_dead_and_requeue_dead_brings_it_back(spool):
    spool.register_handler("h")
    spool.register_handler("other")
    spool.put([rep("A")])
    for attempt in range(3):
        [item] = spool.claim("h", "me")
        assert item.attempts == attempt
        spool.fail("h", [item.id], "boom", delay=lambda n: 0, max_attempts=3)
    assert spool.claim("h", "me") == []
    assert spool.counts()["handlers"]["h"]["dead"] == 1
    assert ids(spool.claim("other", "me")) == ["A"]  # not affected
    assert spool.requeue_dead("h") == 1
    assert ids(spool.claim("h", "me")) == ["A"]


def test_workers_of_two_processes_take_every_event_once(tmp_path):
    path = tmp_path / "s.sqlite3"
    spools = [Spool(path), Spool(path)]
    try:
        spools[0].register_handler("h")
        taken: list[int] = []
        lock = threading.Lock()
        total = 600

        stored = threading.Event()

        def work(spool, owner):
            while True:
                batch = spool.claim("h", owner, limit=7)
                if not batch and stored.is_set():
                    return  # nothing left: every lease lasts 5 minutes
                with lock:
                    taken.extend(i.id for i in batch)
                spool.complete("h", [i.id for i in batch])

        threads = [threading.Thread(target=work, args=(spools[n % 2], f"w{n}")) for n in range(4)]
        for t in threads:
            t.start()
        for n in range(0, total, 50):
            spools[n % 2].put([rep(f"M{i}") for i in range(n, n + 50)])
        stored.set()
        for t in threads:
            t.join(60)
        assert sorted(taken) == [e.id for e in spools[0].events(limit=total)]
        assert len(taken) == total
    finally:
        for s in spools:
            s.close()


def test_the_claim_walks_the_events_primary_key(spool):
    plan = spool._book.execute("EXPLAIN QUERY PLAN SELECT id FROM events WHERE id>? AND kind IN (?) ORDER BY id "
                               "LIMIT ?", (0, "report", 10)).fetchall()
    assert "INTEGER PRIMARY KEY" in str(plan) and "TEMP B-TREE" not in str(plan)


# -- spools written before cursors existed --------------------------------------------------------
# the schema as the version before cursors created it: a copy on purpose, store._SCHEMA moves on
OLD_SCHEMA = """
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key TEXT NOT NULL UNIQUE,
    provider TEXT NOT NULL,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    spooled_at REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE handlers (
    name TEXT PRIMARY KEY,
    kinds TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE deliveries (
    handler TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL DEFAULT 0,
    owner TEXT,
    lease_until REAL,
    last_error TEXT,
    PRIMARY KEY (handler, event_id)
) WITHOUT ROWID;
"""


def old_put(conn, mid, kind="report"):
    """What a put of the version before cursors wrote: the event, and a pending row per handler."""
    payload = ('{"provider":"p","message_id":"%s","phone":"13800138000","status":"delivered","raw_status":null,'
               '"description":null,"reported_at":null,"biz_id":null,"raw":null}' % mid)
    if kind == "inbound":
        payload = ('{"provider":"p","phone":"13800138000","content":"%s","received_at":null,"service_code":null,'
                   '"raw":null}' % mid)
    event_id = conn.execute("INSERT INTO events (dedup_key, provider, kind, source, spooled_at, payload) "
                            "VALUES (?, 'p', ?, 'push', 1.0, ?)", (f"p|{kind}|{mid}", kind, payload)).lastrowid
    for name, kinds in conn.execute("SELECT name, kinds FROM handlers").fetchall():
        if kind in kinds.split(","):
            conn.execute("INSERT INTO deliveries (handler, event_id, state) VALUES (?, ?, 'pending')", (name, event_id))
    return event_id


@pytest.fixture
def old_spool(tmp_path):
    """A spool file as the version before cursors left it: handler h had finished A, holds B
    (its process was killed), gave up on C, has D still to do; reports-only handler r came
    after A and has done nothing; an inbound SMS E is only for h."""
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(OLD_SCHEMA)
    conn.execute("INSERT INTO handlers VALUES ('h', 'inbound,report,task', 0)")
    a = old_put(conn, "A")
    conn.execute("INSERT INTO handlers VALUES ('r', 'report', 0)")
    b, c, d = old_put(conn, "B"), old_put(conn, "C"), old_put(conn, "D")
    old_put(conn, "E", "inbound")
    conn.execute("DELETE FROM deliveries WHERE handler='h' AND event_id=?", (a,))  # done
    conn.execute("UPDATE deliveries SET state='leased', owner=?, lease_until=9e12 WHERE handler='h' AND event_id=?",
                 (dead_owner(), b))
    conn.execute("UPDATE deliveries SET state='dead', attempts=5 WHERE handler='h' AND event_id=?", (c,))
    conn.close()
    return path


def contents(item):
    return getattr(item.event, "message_id", None) or item.event.content


def test_an_old_spool_opens_and_nothing_is_handled_twice_or_skipped(old_spool):
    with Spool(old_spool) as spool:
        assert spool.counts()["handlers"] == {"h": {"pending": 2, "leased": 1, "dead": 1},
                                              "r": {"pending": 3, "leased": 0, "dead": 0}}
        assert spool.release_dead_owners() == 1
        assert [contents(i) for i in spool.claim("h", "me")] == ["B", "D", "E"]
        assert [contents(i) for i in spool.claim("r", "me")] == ["B", "C", "D"]
        spool.put([rep("F"), inbound("G")])
        assert [contents(i) for i in spool.claim("h", "me")] == ["F", "G"]
        assert [contents(i) for i in spool.claim("r", "me")] == ["F"]
        assert spool.requeue_dead("h") == 1
        assert [contents(i) for i in spool.claim("h", "me")] == ["C"]
    with Spool(old_spool) as spool:  # opened again: upgraded once only
        assert spool.claim("h", "me") == [] and spool.claim("r", "me") == []


def test_a_put_by_the_old_version_sharing_the_file_is_handled_once(old_spool):
    with Spool(old_spool) as spool:
        spool.put([rep("F")])
        conn = sqlite3.connect(old_spool, isolation_level=None)
        old_put(conn, "G")  # a process still running the old version: a row per handler
        conn.close()
        spool.put([rep("H")])
        assert spool.counts()["handlers"]["r"]["pending"] == 6  # B C D F G H, G once
        assert [contents(i) for i in spool.claim("r", "me")] == ["B", "C", "D", "F", "G", "H"]
        assert spool.claim("r", "me") == []


def test_smsgate_check_reads_an_old_spool_without_changing_it(old_spool, tmp_path, capsys):
    from smsgate.cli import main

    before = old_spool.read_bytes()
    config = tmp_path / "smsgate.toml"
    config.write_text(f'[providers.loopback]\n[receiver]\nspool = "{old_spool}"\n', encoding="utf-8")
    assert main(["check", "--config", str(config)]) == 0
    assert f"spool: {old_spool} (writable)" in capsys.readouterr().out
    assert old_spool.read_bytes() == before
    assert main(["spool", "status", "--spool", str(old_spool)]) == 0  # opens it: upgraded
    assert json.loads(capsys.readouterr().out)["handlers"]["r"] == {"pending": 3, "leased": 0, "dead": 0}


def test_claimed_and_listed_events_are_what_the_constructor_makes(spool):
    import attrs

    from smsgate.receiving import SpooledEvent

    spool.register_handler("h")
    spool.put([rep("A"), inbound(), task()])
    first = spool.claim("h", "me", limit=1)
    spool.fail("h", [first[0].id], "boom", delay=lambda n: 0)
    items = spool.claim("h", "me") + spool.events()
    assert [i.attempts for i in items] == [1, 0, 0, 0, 0, 0]
    for item in items:
        made = SpooledEvent(id=item.id, provider=item.provider, kind=item.kind, source=item.source,
                            spooled_at=item.spooled_at, payload=item._payload, attempts=item.attempts)
        # every field set (a field added to SpooledEvent must be filled by the claim too), the same values
        assert [getattr(item, f.name) for f in attrs.fields(SpooledEvent)] == [
            getattr(made, f.name) for f in attrs.fields(SpooledEvent)]
        assert item == made and hash(item) == hash(made) and repr(item) == repr(made)
