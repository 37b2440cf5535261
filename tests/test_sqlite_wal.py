"""Several processes opening one new SQLite file at once (a ledger, a spool): every one of them
gets the file in WAL mode, although SQLite answers some of their switches "database is locked"
at once, without waiting through the busy timeout."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from smsgate.sqlite_wal import use_wal

PROCESSES = 8
ROUNDS = 12  # a plain PRAGMA journal_mode=WAL failed for 14 of 240 such openings here

# each process waits for the start file, then opens the database (fresh interpreters, not forks of
# this one, whose other threads may hold locks a fork would copy held)
OPEN = """
import os, sqlite3, sys, time
from smsgate.sqlite_wal import use_wal
start, path = sys.argv[1], sys.argv[2]
print("ready", flush=True)
while not os.path.exists(start):
    time.sleep(0.0002)
try:
    print(use_wal(sqlite3.connect(path, timeout=10, isolation_level=None), 10))
except sqlite3.Error as exc:
    print(f"{type(exc).__name__}: {exc}")
"""


def test_processes_opening_a_new_file_at_once_all_get_wal(tmp_path: Path) -> None:
    for n in range(ROUNDS):
        start, path = tmp_path / f"start-{n}", str(tmp_path / f"shared-{n}.sqlite3")
        procs = [subprocess.Popen([sys.executable, "-c", OPEN, str(start), path], stdout=subprocess.PIPE, text=True)
                 for _ in range(PROCESSES)]
        try:
            for proc in procs:  # every one started and waiting
                assert proc.stdout is not None and proc.stdout.readline() == "ready\n"
            start.touch()
            answers = [proc.communicate(timeout=60)[0].strip() for proc in procs]
        finally:
            for proc in procs:
                proc.kill()
        assert answers == ["wal"] * PROCESSES


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    (tmp_path / "not-a-database").write_bytes(b"this is not a database file, nothing like one" * 4)
    conn = sqlite3.connect(str(tmp_path / "not-a-database"))
    began = time.monotonic()
    try:
        use_wal(conn, 10)
    except sqlite3.DatabaseError as exc:
        assert "locked" not in str(exc) and time.monotonic() - began < 5
    else:
        raise AssertionError("a file that is no database was put in WAL mode")
    assert os.path.exists(tmp_path / "not-a-database")
