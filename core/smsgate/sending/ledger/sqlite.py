"""The SQLite ledger: one file shared by every process of one host (``sqlite:///path``).

The file runs in WAL mode. ``synchronous`` (``[ledger] synchronous``) decides which crash it
survives:

* ``NORMAL`` (default): a commit is in the WAL file when it returns, so a process killed at any
  moment (kill -9, OOM) loses nothing -- the operating system still writes the file. Power loss or a
  kernel crash may lose the last commits before the next checkpoint: after such a crash a key whose
  ``sending`` record was lost could be sent again. Costs about 0.1-0.2 ms per commit here.
* ``FULL``: each commit is fsynced before it returns, so it survives power loss too. Costs one
  fsync per commit (about 3 ms on the development machine's disk), twice per one-request send.

Several threads of one process share one connection (SQLite serialises writers anyway, and its busy
handler sleeps in steps of milliseconds, so threads queue on a lock instead); other processes wait
on the file lock (``busy_timeout``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

from ...errors import ConfigError
from ...sqlite_wal import use_wal
from .sql import SqlLedger

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ledger_sends (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, "
    "provider TEXT NOT NULL, recipients INTEGER NOT NULL, segments INTEGER, created_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ledger_sends_created ON ledger_sends (created_at)",
    "CREATE TABLE IF NOT EXISTS ledger_recipients (key TEXT NOT NULL, request_index INTEGER NOT NULL, "
    "phone TEXT NOT NULL, provider TEXT NOT NULL, vendor TEXT NOT NULL, outcome TEXT NOT NULL, message_id TEXT, request_id TEXT, "
    "reason_code TEXT, reason_text TEXT, not_sent INTEGER, sent_at REAL NOT NULL, settled_at REAL, "
    "delivery_status TEXT, delivery_code TEXT, delivery_text TEXT, delivered_at TEXT, reported_at REAL, "
    "PRIMARY KEY (key, request_index, phone)) WITHOUT ROWID",
    # with the phone: a report's own-row lookup by id + phone stays one seek as reports add rows
    # (ledgers from before request rows keep their ledger_recipients_message on (vendor, message_id))
    "CREATE INDEX IF NOT EXISTS ledger_recipients_message_phone ON ledger_recipients (vendor, message_id, phone) "
    "WHERE message_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS ledger_recipients_unresolved ON ledger_recipients (vendor, phone, sent_at) "
    "WHERE outcome IN ('sending', 'unknown')",
    # the metrics' send-to-delivery gauges read the reports matched lately
    "CREATE INDEX IF NOT EXISTS ledger_recipients_reported ON ledger_recipients (reported_at) "
    "WHERE reported_at IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS ledger_reports (id INTEGER PRIMARY KEY AUTOINCREMENT, provider TEXT NOT NULL, "
    "message_id TEXT, phone TEXT, status TEXT NOT NULL, raw_status TEXT, description TEXT, reported_at TEXT, "
    "received_at REAL NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ledger_reports_message ON ledger_reports (message_id)",
    # one row per request (see sql.py); added after the tables above, so an older file gains it
    "CREATE TABLE IF NOT EXISTS ledger_requests (key TEXT NOT NULL, request_index INTEGER NOT NULL, "
    "provider TEXT NOT NULL, vendor TEXT NOT NULL, phones TEXT NOT NULL, outcome TEXT NOT NULL, message_id TEXT, "
    "request_id TEXT, reason_code TEXT, reason_text TEXT, not_sent INTEGER, sent_at REAL NOT NULL, settled_at REAL, "
    "PRIMARY KEY (key, request_index))",
    "CREATE INDEX IF NOT EXISTS ledger_requests_message ON ledger_requests (vendor, message_id) "
    "WHERE message_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS ledger_requests_unresolved ON ledger_requests (vendor, sent_at) "
    "WHERE outcome IN ('sending', 'unknown')",
)

def sqlite_path(url: str) -> str:
    """``sqlite:///relative/path`` or ``sqlite:////absolute/path`` (SQLAlchemy's convention) -> the path."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqlite" or parts.netloc not in ("", "localhost") or len(parts.path) < 2:
        raise ConfigError(f"[ledger] url {url!r}: write sqlite:///relative/path or sqlite:////absolute/path",
                          field="url")
    return unquote(parts.path)[1:]


class SqliteLedger(SqlLedger):
    schema = SCHEMA
    # every object of the schema's newest additions (one transaction made each set of them)
    schema_done = ("SELECT COUNT(*) = 2 FROM sqlite_master WHERE name IN "
                   "('ledger_requests_unresolved', 'ledger_recipients_message_phone')")

    def __init__(self, url: str, synchronous: str = "NORMAL", busy_timeout: float = 30.0, schema: str | None = None):
        super().__init__(url)
        if schema is not None:
            raise ConfigError("[ledger] schema is for PostgreSQL; a SQLite ledger is one file", field="schema")
        self.path = sqlite_path(url)
        self.synchronous = str(synchronous).upper()
        if self.synchronous not in ("NORMAL", "FULL", "EXTRA"):
            raise ConfigError(f"[ledger] synchronous must be NORMAL, FULL or EXTRA, not {synchronous!r}",
                              field="synchronous")
        self.busy_timeout = busy_timeout
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise ConfigError(f"[ledger] url: directory {directory} does not exist", field="url")
        if self.synchronous != "NORMAL":  # settling commits need no fsync (see SqlLedger.settle)
            self.begin_statements = {**self.begin_statements,
                                     "settle": ("PRAGMA synchronous=NORMAL", "BEGIN IMMEDIATE")}
            self.end_statements = {**self.end_statements,
                                   "settle": ("COMMIT", f"PRAGMA synchronous={self.synchronous}")}
        self._conn: sqlite3.Connection | None = None
        self._conn_lock = threading.Lock()

    # One connection per process, lent to one thread at a time: SQLite serialises writers anyway,
    # and its busy handler sleeps in steps of milliseconds, so threads queue on a lock instead.
    def _acquire(self) -> Any:
        self._conn_lock.acquire()
        try:
            if self._conn is None or self._pid != os.getpid():
                self._pid = os.getpid()  # after a fork the parent's connection is not ours to use
                self._conn = self._connect()
                self._create_schema(self._conn)
            return self._conn
        except BaseException:
            self._conn_lock.release()
            raise

    def _rollback(self, cur: Any, mode: str) -> bool:
        # a failed settle may have left the connection at synchronous=NORMAL: open a fresh one
        return super()._rollback(cur, mode) or (mode == "settle" and self.synchronous != "NORMAL")

    def _release(self, conn: Any, broken: bool) -> None:
        if broken:
            self._conn = None
            try:
                conn.close()
            except Exception:
                pass
        self._conn_lock.release()

    def _connect(self) -> Any:
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        use_wal(conn, self.busy_timeout)
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        return conn

    # a write takes the write lock at once: a read that later upgrades to a write fails with "busy"
    begin_statements = {"write": ("BEGIN IMMEDIATE",), "settle": ("BEGIN IMMEDIATE",), "read": ("BEGIN",)}

    def _db_errors(self) -> tuple[type[BaseException], ...]:
        return (sqlite3.Error,)

    def close(self) -> None:
        with self._conn_lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
