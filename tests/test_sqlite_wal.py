"""Several processes opening one new SQLite file at once (a ledger, a spool): every one of them
gets the file in WAL mode, although SQLite answers some of their switches "database is locked"
at once, without waiting through the busy timeout."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path
from typing import Any

from smsgate.sqlite_wal import use_wal

PROCESSES = 8
ROUNDS = 20  # a plain PRAGMA journal_mode=WAL failed for 14 of 240 such openings here


def _open(path: str, start: Any) -> str:
    start.wait()  # all at once
    try:
        return use_wal(sqlite3.connect(path, timeout=10, isolation_level=None), 10)
    except sqlite3.Error as exc:
        return f"{type(exc).__name__}: {exc}"


def test_processes_opening_a_new_file_at_once_all_get_wal(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    with context.Manager() as manager, context.Pool(PROCESSES) as pool:
        for n in range(ROUNDS):
            start = manager.Barrier(PROCESSES)
            path = str(tmp_path / f"shared-{n}.sqlite3")
            assert pool.starmap(_open, [(path, start)] * PROCESSES) == ["wal"] * PROCESSES


def test_other_errors_are_not_retried(tmp_path: Path) -> None:
    (tmp_path / "not-a-database").write_bytes(b"this is not a database file, nothing like one" * 4)
    conn = sqlite3.connect(str(tmp_path / "not-a-database"))
    try:
        use_wal(conn, 10)
    except sqlite3.DatabaseError as exc:
        assert "locked" not in str(exc)
    else:
        raise AssertionError("a file that is no database was put in WAL mode")
