"""The PostgreSQL ledger: shared by every process on every host (``postgresql://user@host/db``).

Needs psycopg 3 (``pip install 'smsgate[postgres]'``). A commit returns once the server has
flushed it to its WAL (``synchronous_commit = on``, PostgreSQL's default), so a record survives a
kill of the sending process and power loss of either host; with ``synchronous_commit = off`` on
the server it survives the sender's death only (the server may lose its last commits on a crash).
Concurrent claims of one key are decided by the primary key: ``INSERT ... ON CONFLICT DO NOTHING``
waits for the other transaction and then inserts nothing.

``[ledger] schema = "name"`` keeps the tables in their own schema (created when missing);
``[ledger] synchronous = "off"`` sets ``synchronous_commit`` for the ledger's own sessions.

The hot statements are single statements (a key's claim with its first request; a request's
outcome with the check for early reports), each its own transaction: one round trip each.
"""

from __future__ import annotations

import re
from typing import Any

from ...errors import ConfigError
from . import SENDING, Attempt
from .sql import _SETTLE, _SETTLE_REQUEST, SqlLedger

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS ledger_sends (key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, "
    "provider TEXT NOT NULL, recipients INTEGER NOT NULL, segments INTEGER, created_at DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ledger_sends_created ON ledger_sends (created_at)",
    "CREATE TABLE IF NOT EXISTS ledger_recipients (key TEXT NOT NULL, request_index INTEGER NOT NULL, "
    "phone TEXT NOT NULL, provider TEXT NOT NULL, vendor TEXT NOT NULL, outcome TEXT NOT NULL, message_id TEXT, request_id TEXT, "
    "reason_code TEXT, reason_text TEXT, not_sent BOOLEAN, sent_at DOUBLE PRECISION NOT NULL, "
    "settled_at DOUBLE PRECISION, delivery_status TEXT, delivery_code TEXT, delivery_text TEXT, "
    "delivered_at TEXT, reported_at DOUBLE PRECISION, PRIMARY KEY (key, request_index, phone))",
    # with the phone: a report's own-row lookup by id + phone stays one seek as reports add rows
    # (ledgers from before request rows keep their ledger_recipients_message on (vendor, message_id))
    "CREATE INDEX IF NOT EXISTS ledger_recipients_message_phone ON ledger_recipients (vendor, message_id, phone) "
    "WHERE message_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS ledger_recipients_unresolved ON ledger_recipients (vendor, phone, sent_at) "
    "WHERE outcome IN ('sending', 'unknown')",
    # the metrics' send-to-delivery gauges read the reports matched lately
    "CREATE INDEX IF NOT EXISTS ledger_recipients_reported ON ledger_recipients (reported_at) "
    "WHERE reported_at IS NOT NULL",
    "CREATE TABLE IF NOT EXISTS ledger_reports (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
    "provider TEXT NOT NULL, message_id TEXT, phone TEXT, status TEXT NOT NULL, raw_status TEXT, "
    "description TEXT, reported_at TEXT, received_at DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ledger_reports_message ON ledger_reports (message_id)",
    # one row per request (see sql.py); added after the tables above, so an older schema gains it
    "CREATE TABLE IF NOT EXISTS ledger_requests (key TEXT NOT NULL, request_index INTEGER NOT NULL, "
    "provider TEXT NOT NULL, vendor TEXT NOT NULL, phones TEXT NOT NULL, outcome TEXT NOT NULL, message_id TEXT, "
    "request_id TEXT, reason_code TEXT, reason_text TEXT, not_sent BOOLEAN, sent_at DOUBLE PRECISION NOT NULL, "
    "settled_at DOUBLE PRECISION, PRIMARY KEY (key, request_index))",
    "CREATE INDEX IF NOT EXISTS ledger_requests_message ON ledger_requests (vendor, message_id) "
    "WHERE message_id IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS ledger_requests_unresolved ON ledger_requests (vendor, sent_at) "
    "WHERE outcome IN ('sending', 'unknown')",
)

_SYNCHRONOUS = ("on", "off", "local", "remote_write", "remote_apply")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_LOCK_ID = 0x736D7367  # "smsg": serialises schema creation across processes


class PostgresLedger(SqlLedger):
    placeholder = "%s"
    schema = SCHEMA
    position = "strpos"
    begin_statements = {**SqlLedger.begin_statements,
                        "settle": ("BEGIN", "SET LOCAL synchronous_commit = off")}
    # concurrent CREATE ... IF NOT EXISTS can still collide in the catalog: creators queue on a lock
    schema_preamble: tuple[str, ...] = (f"SELECT pg_advisory_xact_lock({_LOCK_ID})",)
    # every object of the schema's newest additions (one transaction made each set of them)
    schema_done = ("SELECT to_regclass('ledger_requests_unresolved') IS NOT NULL "
                   "AND to_regclass('ledger_recipients_message_phone') IS NOT NULL")

    def __init__(self, url: str, schema: str | None = None, synchronous: str | None = None,
                 connect_timeout: float = 10.0):
        super().__init__(url)
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ConfigError("[ledger] url is PostgreSQL, which needs psycopg 3: pip install 'smsgate[postgres]'",
                              field="url") from None
        if schema is not None and not _IDENTIFIER.fullmatch(schema):
            raise ConfigError(f"[ledger] schema must be a plain SQL name (letters, digits, _), not {schema!r}",
                              field="schema")
        if synchronous is not None and synchronous.lower() not in _SYNCHRONOUS:
            raise ConfigError(f"[ledger] synchronous for PostgreSQL is synchronous_commit: one of "
                              f"{', '.join(_SYNCHRONOUS)}, not {synchronous!r}", field="synchronous")
        self.db_schema = schema
        self.synchronous = synchronous
        self.connect_timeout = connect_timeout
        if schema is not None:
            self.schema_preamble = self.schema_preamble + (f'CREATE SCHEMA IF NOT EXISTS "{schema}"',)

    def _connect(self) -> Any:
        import psycopg

        settings = []
        if self.db_schema is not None:
            settings.append(f"-c search_path={self.db_schema}")
        if self.synchronous is not None:
            settings.append(f"-c synchronous_commit={self.synchronous.lower()}")
        options: dict[str, Any] = {"options": " ".join(settings)} if settings else {}
        # autocommit: a single statement is its own transaction (one round trip); longer ones BEGIN
        return psycopg.connect(self.url, connect_timeout=max(1, int(self.connect_timeout)), autocommit=True,
                               **options)

    def _claim(self, key: str, send: tuple[Any, ...], first: Attempt | None, now: float) -> bool:
        if first is None:
            return super()._claim(key, send, first, now)
        with self._tx("single") as cur:
            cur.execute("WITH send AS (" + self._INSERT_SEND + " RETURNING key) "
                        "INSERT INTO ledger_requests (key, request_index, provider, vendor, phones, outcome, sent_at) "
                        "SELECT send.key, ?, ?, ?, ?, ?, ? FROM send",
                        send + (first.index, first.provider, first.vendor, ",".join(first.phones), SENDING, now))
            return cur.rowcount > 0

    def _settle_request(self, key: str, index: int, shared: tuple[Any, ...], own: list[tuple[Any, ...]],
                        ids: list[str]) -> int:
        if own:  # phones with outcomes of their own: a transaction (synchronous_commit off in it)
            return super()._settle_request(key, index, shared, own, ids)
        # One statement, its own transaction: the updates run to completion whatever the outer query
        # reads (data-modifying WITHs), and set_config(..., true) turns synchronous_commit off for
        # this transaction's commit only (see SqlLedger.settle).
        with self._tx("single") as cur:
            cur.execute("WITH lazy AS (SELECT set_config('synchronous_commit', 'off', true)), "
                        "request AS (" + _SETTLE_REQUEST + " RETURNING 1), "
                        "own AS (" + _SETTLE + " RETURNING 1) "
                        "SELECT (SELECT COUNT(*) FROM ledger_reports WHERE message_id = ANY(?::text[])) FROM lazy",
                        shared + (key, index) + shared + (key, index) + (ids,))
            return int(cur.fetchone()[0])

    def _db_errors(self) -> tuple[type[BaseException], ...]:
        import psycopg

        return (psycopg.Error,)

    def drop_schema(self) -> None:
        """Drop this ledger's own schema and everything in it (tests use one schema per run)."""
        if self.db_schema is None:
            raise ValueError("no schema of its own to drop")
        self.close()
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.db_schema}" CASCADE')
