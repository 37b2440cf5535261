"""Group commit: puts that wait for the spool's write lock are committed together, each with its
own ids, and a put that cannot be stored fails only itself."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest

from smsgate import DeliveryReport, Status
from smsgate.receiving import Spool, SpoolError

LIMIT = 60.0


def reports(tag, n=3):
    return [DeliveryReport(provider="loopback", message_id=f"{tag}-{i}", phone="13800138000",
                           status=Status.DELIVERED) for i in range(n)]


def queued_puts(spool, batches):
    """Put each batch from its own thread while the test holds the write lock, release it once
    every put is queued; {tag: PutResult or the exception}."""
    results = {}

    def put(tag, events):
        try:
            results[tag] = spool.put(events)
        except Exception as exc:
            results[tag] = exc

    threads = [threading.Thread(target=put, args=item) for item in batches.items()]
    with spool._write_lock:
        for t in threads:
            t.start()
        deadline = time.monotonic() + LIMIT
        while len(spool._queue) < len(threads):
            assert time.monotonic() < deadline, "the puts did not queue"
            time.sleep(0.005)
    for t in threads:
        t.join(LIMIT)
    return results


def test_waiting_puts_share_one_commit_and_keep_their_own_ids(tmp_path):
    with Spool(tmp_path / "s.sqlite3") as spool:
        spool.put(reports("first"))
        commits = spool._puts
        batches = {f"b{n}": reports(f"b{n}", 2 + n) for n in range(6)}
        batches["dup"] = reports("b0", 2)  # the same events as b0: stored once, whichever comes first
        results = queued_puts(spool, batches)
        assert spool._puts == commits + 1  # one transaction (one fsync) for all seven puts
        stored = {e.id: e.event.message_id for e in spool.events(limit=100)}
        for tag, events in batches.items():
            result = results[tag]
            assert not isinstance(result, Exception), result
            assert [stored[i] for i in result.ids] == [e.message_id for e in events][:result.stored]
        assert results["b0"].stored + results["dup"].stored == 2
        assert results["b0"].duplicates + results["dup"].duplicates == 2
        assert len(stored) == 3 + sum(2 + n for n in range(6))


def test_a_put_that_cannot_be_stored_fails_only_itself(tmp_path):
    path = tmp_path / "s.sqlite3"
    with Spool(path) as spool:
        with sqlite3.connect(path) as db:
            db.execute("CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.dedup_key LIKE '%POISON%' "
                       "BEGIN SELECT RAISE(ABORT, 'refused'); END")
        results = queued_puts(spool, {"ok1": reports("ok1"), "bad": reports("POISON"), "ok2": reports("ok2")})
        assert isinstance(results["bad"], SpoolError)
        assert results["ok1"].stored == 3 and results["ok2"].stored == 3
        assert sorted(e.event.message_id for e in spool.events()) == sorted(
            [f"ok1-{i}" for i in range(3)] + [f"ok2-{i}" for i in range(3)])
        with pytest.raises(SpoolError, match="refused"):
            spool.put(reports("POISON"))  # alone as well
