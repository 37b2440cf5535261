"""Opening the SQLite files several processes share (send ledger, event spool, replay keys) in WAL mode."""

from __future__ import annotations

import sqlite3
import time


def use_wal(conn: sqlite3.Connection, timeout: float) -> str:
    """Put ``conn``'s database in WAL mode (the file keeps it) and return the mode it is in.

    Switching takes the file's exclusive lock. When several processes open a new file at once, SQLite
    answers some of them "database is locked" at once, without waiting through the busy timeout
    (their locks would otherwise deadlock): the switch is tried again here until ``timeout``
    seconds have passed."""
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        try:
            return str(conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
