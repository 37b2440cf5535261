"""The ledger's tables and queries, shared by the SQLite and PostgreSQL backends.

Statements are written with ``?`` placeholders; a backend turns them into its own style. A backend
supplies connections (:meth:`SqlLedger._connect`), its schema and how a write transaction begins;
everything else (claiming keys, writing requests, settling, matching reports) lives here once.

Tables:

* ``ledger_sends``: one row per key (fingerprint of the message, first provider, recipient count).
* ``ledger_requests``: one row per request (key, request index, its phones joined by commas, and
  the outcome they share). Written as ``sending`` before the request leaves, updated with the
  outcome after.
* ``ledger_recipients``: one row per recipient whose outcome is its own (a phone the vendor refused
  in an answer that took the others, a vendor's per-phone message id) or that a delivery report
  reached (the delivery columns); such a row wins over its request's shared outcome. A ledger
  written before ``ledger_requests`` existed holds a row per recipient here and no request rows:
  opening it adds the table, and its rows are read as they are (rows of their own, every one).
* ``ledger_reports``: delivery reports that matched no row yet (kept until their send is settled).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ...errors import LedgerError
from ...log import get_logger, safe_url, strip_userinfo
from ...models import DeliveryReport, Outcome, OutcomePart, RequestOutcome, Status
from ...phones import mask_phone, normalise_phone
from . import SENDING, Attempt, LedgerRequest, LedgerRow, SendRecord

log = get_logger("smsgate.ledger")

ROW_COLUMNS = ("key", "request_index", "phone", "provider", "vendor", "outcome", "message_id", "request_id", "reason_code",
               "reason_text", "not_sent", "sent_at", "settled_at", "delivery_status", "delivery_code",
               "delivery_text", "delivered_at", "reported_at")
_SELECT_ROWS = f"SELECT {', '.join(ROW_COLUMNS)} FROM ledger_recipients"
_UNRESOLVED = (SENDING, Outcome.UNKNOWN.value)
_FINAL = (Status.DELIVERED.value, Status.FAILED.value)


def _settle_sql(table: str) -> str:
    # A row settled by a report before our own answer was written keeps "accepted": the vendor had it.
    return (f"UPDATE {table} SET outcome = CASE WHEN outcome = 'accepted' THEN outcome ELSE ? END, "
            "message_id = COALESCE(?, message_id), request_id = ?, reason_code = ?, reason_text = ?, not_sent = ?, "
            "settled_at = ? WHERE key = ? AND request_index = ?")


#: a request's shared outcome, and the same for the rows its phones already have of their own
_SETTLE_REQUEST = _settle_sql("ledger_requests")
_SETTLE = _settle_sql("ledger_recipients")
#: a phone's own outcome: its row made from its request's (provider, vendor, sent_at), or updated
_SETTLE_OWN = ("INSERT INTO ledger_recipients (key, request_index, phone, provider, vendor, outcome, message_id, "
               "request_id, reason_code, reason_text, not_sent, sent_at, settled_at) "
               "SELECT key, request_index, ?, provider, vendor, ?, ?, ?, ?, ?, ?, sent_at, ? FROM ledger_requests "
               "WHERE key = ? AND request_index = ? ON CONFLICT (key, request_index, phone) DO UPDATE SET "
               "outcome = CASE WHEN ledger_recipients.outcome = 'accepted' THEN ledger_recipients.outcome "
               "ELSE excluded.outcome END, message_id = COALESCE(excluded.message_id, ledger_recipients.message_id), "
               "request_id = excluded.request_id, reason_code = excluded.reason_code, "
               "reason_text = excluded.reason_text, not_sent = excluded.not_sent, settled_at = excluded.settled_at")
_INSERT_REQUEST = ("INSERT INTO ledger_requests (key, request_index, provider, vendor, phones, outcome, sent_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?)")
_REQUEST_COLUMNS = ("request_index", "provider", "vendor", "phones", "outcome", "message_id", "request_id",
                    "reason_code", "reason_text", "not_sent", "sent_at", "settled_at")


class SqlLedger:
    """A ledger over a DB-API connection. Subclasses: :class:`~.sqlite.SqliteLedger`,
    :class:`~.postgres.PostgresLedger`."""

    #: connections kept open for reuse (SQLite: one, its writes are serialised anyway)
    max_idle = 8
    placeholder = "?"
    schema: tuple[str, ...] = ()
    #: run first in the schema's transaction (PostgreSQL: a lock, so concurrent creators queue)
    schema_preamble: tuple[str, ...] = ()
    #: a query answering whether the newest objects of ``schema`` exist (then all do)
    schema_done = ""
    #: the SQL function giving the position of its second argument in its first (0: absent)
    position = "instr"

    def __init__(self, url: str):
        self.url = url
        self._lock = threading.Lock()
        self._idle: list[Any] = []
        self._pid = os.getpid()
        self._ready = False
        self._schema_lock = threading.Lock()

    # -- connections -----------------------------------------------------------------------
    def _connect(self) -> Any:  # pragma: no cover - every backend implements it
        raise NotImplementedError

    def _sql(self, text: str) -> str:
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)

    def _acquire(self) -> Any:
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's connections are not ours to use
                self._idle, self._pid, self._ready = [], os.getpid(), False
            if self._idle:
                return self._idle.pop()
        conn = self._connect()
        if not self._ready:
            with self._schema_lock:  # one thread creates the tables; the others wait for it
                if not self._ready:
                    self._create_schema(conn)
        return conn

    def _release(self, conn: Any, broken: bool) -> None:
        with self._lock:
            if not broken and self._pid == os.getpid() and len(self._idle) < self.max_idle:
                self._idle.append(conn)
                return
        try:
            conn.close()
        except Exception:
            pass

    def _create_schema(self, conn: Any) -> None:
        """Create the tables when missing (connections are in autocommit mode: one transaction here)."""
        cur = conn.cursor()
        try:
            for statement in self.begin_statements["write"]:  # SQLite: the write lock first (see _tx)
                cur.execute(statement)
            for statement in self.schema_preamble:
                cur.execute(statement)
            # the tables are created in one transaction: its last index there means all are. Skipping
            # the DDL then matters: CREATE INDEX IF NOT EXISTS still locks its table, and would
            # deadlock with another process already writing
            cur.execute(self.schema_done)
            if not cur.fetchone()[0]:
                for statement in self.schema:
                    cur.execute(statement)
            cur.execute("COMMIT")
        except Exception as exc:
            try:
                cur.execute("ROLLBACK")
            except Exception:
                pass
            raise LedgerError(f"ledger {self.safe_url}: cannot create its tables: {exc}") from None
        self._ready = True

    @property
    def safe_url(self) -> str:
        """The url without user name and password (for messages and logs)."""
        return safe_url(self.url)

    @contextmanager
    def _tx(self, mode: str = "write") -> Iterator["_Cursor"]:
        """One transaction; every database error becomes a :class:`LedgerError`.

        ``mode``: ``write`` (BEGIN ... COMMIT; SQLite takes the write lock at once), ``settle`` (a
        write that need not be on disk when it returns, see :meth:`settle`), ``read`` (one snapshot)
        or ``single`` (one statement, which is its own transaction: one round trip)."""
        try:
            conn = self._acquire()
        except LedgerError:
            raise
        except Exception as exc:
            raise LedgerError(f"ledger {self.safe_url}: cannot connect: {strip_userinfo(str(exc))}") from None
        broken = False
        cur = _Cursor(conn.cursor(), self)
        try:
            for statement in self.begin_statements.get(mode, ()):
                cur.execute(statement)
            yield cur
            for statement in self.end_statements.get(mode, ()):
                cur.execute(statement)
        except BaseException as exc:
            broken = self._rollback(cur, mode)
            if isinstance(exc, self._db_errors()) and not isinstance(exc, LedgerError):
                raise LedgerError(f"ledger {self.safe_url}: {type(exc).__name__}: {strip_userinfo(str(exc))}") from None
            raise
        finally:
            self._release(conn, broken)

    #: how a transaction begins and ends, per mode
    begin_statements: dict[str, tuple[str, ...]] = {"write": ("BEGIN",), "settle": ("BEGIN",), "read": ("BEGIN",)}
    end_statements: dict[str, tuple[str, ...]] = {"write": ("COMMIT",), "settle": ("COMMIT",), "read": ("COMMIT",)}

    def _db_errors(self) -> tuple[type[BaseException], ...]:
        return (Exception,)

    def _rollback(self, cur: "_Cursor", mode: str) -> bool:
        if mode == "single":
            return False
        try:
            cur.execute("ROLLBACK")
            return False
        except Exception:
            return True  # the connection is unusable: do not reuse it

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            try:
                conn.close()
            except Exception:
                pass

    # -- sending ---------------------------------------------------------------------------
    def begin(self, key: str, fingerprint: str, provider: str, recipients: int, segments: int | None,
              now: float, first: Attempt | None = None) -> SendRecord | None:
        if self._claim(key, (key, fingerprint, provider, recipients, segments, now), first, now):
            return None
        record = self.status(key)
        if record is None:  # pruned between the two statements: claim it again
            return self.begin(key, fingerprint, provider, recipients, segments, now, first)
        return record

    _INSERT_SEND = ("INSERT INTO ledger_sends (key, fingerprint, provider, recipients, segments, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING")

    def _claim(self, key: str, send: tuple[Any, ...], first: Attempt | None, now: float) -> bool:
        """Insert the send's row unless the key exists, and ``first`` with it; True when inserted."""
        with self._tx() as cur:
            cur.execute(self._INSERT_SEND, send)
            claimed = cur.rowcount == 1
            if claimed and first is not None:
                self._insert_attempt(cur, key, first, now)
        return claimed

    def record_request(self, key: str, attempt: Attempt, now: float) -> None:
        with self._tx() as cur:
            self._insert_attempt(cur, key, attempt, now)

    def _insert_attempt(self, cur: "_Cursor", key: str, attempt: Attempt, now: float) -> None:
        # one row for the request: its phones joined (normal 11-digit numbers, never a comma)
        cur.execute(_INSERT_REQUEST, (key, attempt.index, attempt.provider, attempt.vendor, ",".join(attempt.phones),
                                      SENDING, now))

    def settle(self, key: str, index: int, results: Sequence[OutcomePart], now: float) -> None:
        # An outcome's record need not be on disk before the caller gets it: lost in a crash, the
        # row stays "sending" and a replay answers unknown -- never a resend. Only the "sending"
        # record must be durable before a request leaves. So settling waits for no flush (SQLite
        # FULL: this commit is not fsynced; PostgreSQL: synchronous_commit off for it), which
        # halves the flushes of a one-request send.
        units = _settle_units(results, now)
        if not units:
            return
        ids = sorted({values[1] for values, _ in units if values[1]})
        # the request's row takes the outcome most of its phones share (usually all of them: one
        # statement); each other phone gets a row of its own
        shares: dict[tuple[Any, ...], int] = {}
        for values, phones in units:
            shares[values] = shares.get(values, 0) + len(phones)
        shared = max(shares, key=shares.__getitem__)
        own = [(phone,) + values + (key, index) for values, phones in units if values != shared for phone in phones]
        if self._settle_request(key, index, shared, own, ids):
            with self._tx("settle") as cur:
                self._apply_early_reports(cur, ids, now)

    def _settle_request(self, key: str, index: int, shared: tuple[Any, ...], own: list[tuple[Any, ...]],
                        ids: list[str]) -> int:
        """Settle request ``index``: ``shared`` for its row (and the rows its phones already have),
        ``own`` rows for the phones whose outcome is their own; returns how many early reports
        wait for ``ids``."""
        with self._tx("settle") as cur:
            cur.execute(_SETTLE_REQUEST, shared + (key, index))
            cur.execute(_SETTLE, shared + (key, index))
            cur.executemany(_SETTLE_OWN, own)
            return self._count_early_reports(cur, ids)

    def _count_early_reports(self, cur: "_Cursor", ids: list[str]) -> int:
        if not ids:
            return 0
        cur.execute(f"SELECT COUNT(*) FROM ledger_reports WHERE message_id IN ({', '.join('?' * len(ids))})", ids)
        return int(cur.fetchone()[0])

    def _apply_early_reports(self, cur: "_Cursor", message_ids: list[str], now: float) -> None:
        """Reports that arrived before this request's message ids were written."""
        marks = ", ".join("?" * len(message_ids))
        cur.execute("SELECT id, provider, message_id, phone, status, raw_status, description, reported_at "
                    f"FROM ledger_reports WHERE message_id IN ({marks})", message_ids)
        pending = cur.fetchall()
        done = []
        for rid, provider, message_id, phone, status, raw_status, description, reported_at in pending:
            report = DeliveryReport(provider=provider, message_id=message_id, phone=phone, status=Status(status),
                                    raw_status=raw_status, description=description, reported_at=reported_at)
            if self._match_one(cur, report, now, by_phone=False):
                done.append((rid,))
        if done:
            cur.executemany("DELETE FROM ledger_reports WHERE id = ?", done)

    # -- reports ---------------------------------------------------------------------------
    def match_reports(self, reports: Iterable[DeliveryReport], now: float) -> int:
        reports = list(reports)
        if not reports:
            return 0
        matched = 0
        with self._tx() as cur:
            for report in reports:
                n = self._match_one(cur, report, now, by_phone=True)
                if n:
                    matched += n
                elif report.message_id or report.phone:
                    cur.execute("INSERT INTO ledger_reports (provider, message_id, phone, status, raw_status, "
                                "description, reported_at, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                                (report.provider, report.message_id, _phone(report.phone), report.status.value,
                                 report.raw_status, report.description, report.reported_at, now))
        return matched

    def _match_one(self, cur: "_Cursor", report: DeliveryReport, now: float, by_phone: bool) -> int:
        """Apply one report to its recipients: by provider + message id (+ phone when the report has
        one); failing that, by provider + phone to the one unresolved recipient (sending or unknown,
        no message id) of that phone -- the vendor had that request, so it was accepted. A recipient
        is its own row when it has one, else its request's shared outcome (the report then gives it
        a row of its own). Returns recipients updated."""
        phone = _phone(report.phone)
        # (key, request index, phone, its delivery status, whether it has a row of its own)
        targets: list[tuple[Any, Any, str, Any, bool]] = []
        if report.message_id:
            sql = ("SELECT key, request_index, phone, delivery_status FROM ledger_recipients "
                   "WHERE vendor = ? AND message_id = ?")
            args: list[Any] = [report.provider, report.message_id]
            if phone:
                sql += " AND phone = ?"
                args.append(phone)
            cur.execute(sql, args)
            targets = [(key, index, p, status, True) for key, index, p, status in cur.fetchall()]
            cur.execute("SELECT key, request_index, phones FROM ledger_requests WHERE vendor = ? AND message_id = ?",
                        (report.provider, report.message_id))
            for key, index, phones in cur.fetchall():
                if phone:
                    if f",{phone}," in f",{phones}," and not self._has_own_row(cur, key, index, phone):
                        targets.append((key, index, phone, None, False))
                    continue
                own = self._own_phones(cur, key, index)
                targets.extend((key, index, p, None, False) for p in phones.split(",") if p not in own)
            if not phone and len({t[2] for t in targets}) > 1:
                # one id for a whole request and no phone in the report: which recipient is unknowable
                log.info("smsgate.ledger.report_ambiguous", provider=report.provider, message_id=report.message_id,
                         recipients=len(targets))
                return 0
        if not targets and phone and by_phone:
            targets = self._unresolved(cur, report.provider, phone)
            if targets:
                log.info("smsgate.ledger.unknown_settled", provider=report.provider, phone=mask_phone(phone),
                         message_id=report.message_id)
        updated = 0
        status = report.status.value
        delivery = (status, report.raw_status, report.description, report.reported_at, now)
        for key, index, row_phone, current, has_row in targets:
            if current in _FINAL and status not in _FINAL:
                updated += 1  # a late "pending" never hides a final status
                continue
            if has_row:
                cur.execute("UPDATE ledger_recipients SET delivery_status = ?, delivery_code = ?, delivery_text = ?, "
                            "delivered_at = ?, reported_at = ?, message_id = COALESCE(message_id, ?), "
                            "outcome = CASE WHEN outcome IN (?, ?) THEN 'accepted' ELSE outcome END "
                            "WHERE key = ? AND request_index = ? AND phone = ?",
                            delivery + (report.message_id,) + _UNRESOLVED + (key, index, row_phone))
            else:  # the phone's first row of its own: its request's outcome, with the report
                cur.execute("INSERT INTO ledger_recipients (key, request_index, phone, provider, vendor, outcome, "
                            "message_id, request_id, reason_code, reason_text, not_sent, sent_at, settled_at, "
                            "delivery_status, delivery_code, delivery_text, delivered_at, reported_at) "
                            "SELECT key, request_index, ?, provider, vendor, "
                            "CASE WHEN outcome IN (?, ?) THEN 'accepted' ELSE outcome END, COALESCE(message_id, ?), "
                            "request_id, reason_code, reason_text, not_sent, sent_at, settled_at, ?, ?, ?, ?, ? "
                            "FROM ledger_requests WHERE key = ? AND request_index = ?",
                            (row_phone,) + _UNRESOLVED + (report.message_id,) + delivery + (key, index))
            updated += 1
        return updated

    def _has_own_row(self, cur: "_Cursor", key: str, index: int, phone: str) -> bool:
        cur.execute("SELECT 1 FROM ledger_recipients WHERE key = ? AND request_index = ? AND phone = ?",
                    (key, index, phone))
        return cur.fetchone() is not None

    def _own_phones(self, cur: "_Cursor", key: str, index: int) -> set[str]:
        cur.execute("SELECT phone FROM ledger_recipients WHERE key = ? AND request_index = ?", (key, index))
        return {row[0] for row in cur.fetchall()}

    def _unresolved(self, cur: "_Cursor", vendor: str, phone: str) -> list[tuple[Any, Any, str, Any, bool]]:
        """The oldest unresolved recipient (sending or unknown, no message id) ``phone`` has at
        ``vendor``: a row of its own, or a phone of an unresolved request without one."""
        cur.execute("SELECT key, request_index, delivery_status, sent_at FROM ledger_recipients "
                    "WHERE vendor = ? AND phone = ? AND outcome IN (?, ?) AND message_id IS NULL "
                    "ORDER BY sent_at LIMIT 1", (vendor, phone) + _UNRESOLVED)
        found = [(row[3], (row[0], row[1], phone, row[2], True)) for row in cur.fetchall()]
        # unresolved requests are few (in flight, or failed on the way): their phones are searched
        cur.execute(f"SELECT key, request_index, sent_at FROM ledger_requests WHERE vendor = ? AND outcome IN (?, ?) "
                    f"AND message_id IS NULL AND {self.position}(',' || phones || ',', ?) > 0 ORDER BY sent_at",
                    (vendor,) + _UNRESOLVED + (f",{phone},",))
        for key, index, sent_at in cur.fetchall():
            if not self._has_own_row(cur, key, index, phone):  # its own row decides (found above if unresolved)
                found.append((sent_at, (key, index, phone, None, False)))
                break
        if not found:
            return []
        return [min(found, key=lambda f: f[0])[1]]

    # -- reading back and forgetting ---------------------------------------------------------
    def status(self, key: str) -> SendRecord | None:
        with self._tx("read") as cur:
            cur.execute("SELECT fingerprint, provider, recipients, segments, created_at FROM ledger_sends "
                        "WHERE key = ?", (key,))
            head = cur.fetchone()
            if head is None:
                return None
            cur.execute(f"SELECT {', '.join(_REQUEST_COLUMNS)} FROM ledger_requests WHERE key = ? "
                        "ORDER BY request_index", (key,))
            requests = tuple(_request(key, r) for r in cur.fetchall())
            cur.execute(_SELECT_ROWS + " WHERE key = ? ORDER BY request_index, phone", (key,))
            own = tuple(_row(r) for r in cur.fetchall())
        fp, provider, recipients, segments, created_at = head
        return SendRecord(key=key, fingerprint=fp, provider=provider, recipients=int(recipients),
                          segments=segments, created_at=float(created_at), requests=requests, own_rows=own)

    def delivery_times(self, since: float, limit: int = 10000) -> list[tuple[str, float]]:
        """``(vendor, seconds from the request leaving to its delivered report being matched)`` for
        the recipients whose delivered report was matched after ``since``, newest first, at most
        ``limit`` (the metrics' send-to-delivery gauges, on each scrape)."""
        with self._tx("read") as cur:
            cur.execute("SELECT vendor, reported_at - sent_at FROM ledger_recipients WHERE reported_at > ? "
                        "AND delivery_status = ? ORDER BY reported_at DESC LIMIT ?",
                        (since, Status.DELIVERED.value, int(limit)))
            return [(vendor, float(seconds)) for vendor, seconds in cur.fetchall()]

    def prune(self, before: float) -> int:
        with self._tx() as cur:
            cur.execute("DELETE FROM ledger_recipients WHERE key IN "
                        "(SELECT key FROM ledger_sends WHERE created_at < ?)", (before,))
            cur.execute("DELETE FROM ledger_requests WHERE key IN "
                        "(SELECT key FROM ledger_sends WHERE created_at < ?)", (before,))
            cur.execute("DELETE FROM ledger_sends WHERE created_at < ?", (before,))
            sends = cur.rowcount
            cur.execute("DELETE FROM ledger_reports WHERE received_at < ?", (before,))
        return sends


class _Cursor:
    """A DB-API cursor that takes ``?`` placeholders whatever the backend's style."""

    def __init__(self, raw: Any, ledger: SqlLedger):
        self.raw = raw
        self._sql = ledger._sql

    def execute(self, sql: str, args: Sequence[Any] = ()) -> None:
        self.raw.execute(self._sql(sql), tuple(args))

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.raw.executemany(self._sql(sql), rows)

    @property
    def rowcount(self) -> int:
        return int(self.raw.rowcount)

    def fetchone(self) -> Any:
        return self.raw.fetchone()

    def fetchall(self) -> list[Any]:
        return list(self.raw.fetchall())


def _phone(raw: str | None) -> str | None:
    if not raw:
        return None
    return normalise_phone(raw) or raw


def _settle_units(results: Sequence[OutcomePart], now: float) -> list[tuple[tuple[Any, ...], Sequence[str]]]:
    """``results`` as (the columns an outcome writes, the phones that share them)."""
    units: list[tuple[tuple[Any, ...], Sequence[str]]] = []
    for r in results:
        reason = r.reason
        tail = (r.request_id, None if reason is None else reason.code, None if reason is None else reason.message,
                None if reason is None else bool(reason.not_sent), now)
        outcome = r.outcome.value
        if type(r) is RequestOutcome:
            ids = r.message_ids
            if ids:  # one id per phone: each phone its own values
                units.extend(((outcome, ids.get(p, r.message_id)) + tail, (p,)) for p in r.phones)
            else:
                units.append(((outcome, r.message_id) + tail, r.phones))
        else:
            units.append(((outcome, r.message_id) + tail, (r.phone,)))  # type: ignore[union-attr]
    return units


def _request(key: str, values: Sequence[Any]) -> LedgerRequest:
    data = dict(zip(_REQUEST_COLUMNS, values))
    data["phones"] = tuple(data["phones"].split(",")) if data["phones"] else ()
    if data["not_sent"] is not None:
        data["not_sent"] = bool(data["not_sent"])
    return LedgerRequest(key=key, **data)


def _row(values: Sequence[Any]) -> LedgerRow:
    data = dict(zip(ROW_COLUMNS, values))
    if data["not_sent"] is not None:
        data["not_sent"] = bool(data["not_sent"])
    return LedgerRow(**data)
