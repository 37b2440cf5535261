"""The durable local spool: every received event is written here before the vendor gets its 2xx.

SQLite in WAL mode. The receiver and the poller :meth:`Spool.put` events; handlers consume them
through a :class:`Dispatcher`. Guarantees:

* ``put`` returns only after the transaction is committed (``synchronous=FULL`` by default, so
  it survives a power cut too, not only a killed process). If it cannot commit it raises
  :class:`SpoolError` and the receiver answers 5xx, so the vendor pushes again.
* One event per dedup key (provider, kind, message id, phone, status for reports): a pushed and a
  pulled copy of the same report, or a vendor's retry, is stored and handled once. Identical
  inbound SMS within one push or pull stay separate events (two "Y" replies in one minute are two
  replies); across pushes, ``inbound_dedup`` says how an identical one is taken (see
  :func:`push_keys`).
* Each handler registered in the spool gets every event of its kinds stored after it registered.
  Storing writes nothing per handler: each handler's row holds a cursor, the highest event id it
  has taken, and every later event of its kinds waits for it. A claim takes events past the
  cursor, moves it and records them as leased delivery rows in one transaction; only leased,
  retrying and dead events have a row. Event ids are never reused (AUTOINCREMENT, also after
  prune), so a cursor never passes over an event stored later. A handler that raises leaves its
  row for a retry with exponential backoff; other handlers are unaffected.
* A process killed at any moment loses nothing committed. Rows it had leased are released when
  its pid is found dead (same host) or its lease expires, and run again: a handler can be called
  a second time for an event it had finished just before the kill, so side effects should be
  keyed on ``SpooledEvent.id`` (the built-in JSON-lines sink is, and writes each event once).

Several processes on one host may share one spool file (gunicorn/waitress workers, a poller).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import contextlib

import attrs

from ..config import INBOUND_DEDUP
from ..errors import SmsError
from ..log import get_logger
from ..sqlite_wal import use_wal
from ..wire import json_utf8, json_utf8_each, load_json, load_json_each

log = get_logger("smsgate.spool")

KINDS = ("report", "inbound", "task")
# A payload is bound as its UTF-8 bytes (:func:`encode_events`) and stored as the text they spell:
# no decoding to str here and no encoding back by sqlite3. That takes a UTF-8 database (checked
# when a spool is opened; SQLite's default, and every spool file this module makes).
#: events one INSERT of a put writes: one statement for many rows costs about a third less than a
#: statement per row (executemany); at most 50 rows keeps a statement under the 999 parameters
#: that SQLite before 3.32 allows, and the prepared statements few (one per row count)
_INSERT_ROWS = 50


@functools.lru_cache(maxsize=None)
def _insert_events(rows: int, shared: bool) -> str:
    """The INSERT of ``rows`` events. ``?1`` is the source and ``?2`` the time, bound once for
    every row; with ``shared``, ``?3`` and ``?4`` are the provider and kind of every row too (one
    vendor's push of one kind, the usual put), so each row binds only its dedup key and payload."""
    if shared:
        values = [f"(?{5 + 2 * i},?3,?4,?1,?2,CAST(?{6 + 2 * i} AS TEXT))" for i in range(rows)]
    else:
        values = [f"(?{3 + 4 * i},?{4 + 4 * i},?{5 + 4 * i},?1,?2,CAST(?{6 + 4 * i} AS TEXT))" for i in range(rows)]
    return ("INSERT OR IGNORE INTO events (dedup_key, provider, kind, source, spooled_at, payload) VALUES "
            + ",".join(values))


_HAS_RETURNING = sqlite3.sqlite_version_info >= (3, 35, 0)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, not even after prune: cursors need that
    dedup_key TEXT NOT NULL UNIQUE,
    provider TEXT NOT NULL,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    spooled_at REAL NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS handlers (
    name TEXT PRIMARY KEY,
    kinds TEXT NOT NULL,
    created_at REAL NOT NULL,
    cursor INTEGER NOT NULL DEFAULT 0  -- the highest event id taken; later events of its kinds wait
);
-- a row only for an event a handler has taken and not finished (the rest are done, or wait past
-- its cursor)
CREATE TABLE IF NOT EXISTS deliveries (
    handler TEXT NOT NULL,
    event_id INTEGER NOT NULL,
    state TEXT NOT NULL,            -- pending (to run again) | leased | dead   (done rows are deleted)
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL DEFAULT 0,
    owner TEXT,
    lease_until REAL,
    last_error TEXT,
    PRIMARY KEY (handler, event_id)
) WITHOUT ROWID;
-- claims walk the primary key (handler, event_id) in event order; an index on (handler, state,
-- next_at) served no claim and cost a write on every put, lease and completion (spools made
-- by earlier versions lose it here)
DROP INDEX IF EXISTS deliveries_ready;
"""


class SpoolError(SmsError):
    """The spool could not be written (disk full, read-only, locked too long, corrupt file)."""


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back on *any* exception (not only sqlite3.Error):
    a transaction left open would keep the file's write lock from every other writer."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:  # the connection is broken: nothing more to undo here
                pass
        raise


def _add_cursors(conn: sqlite3.Connection) -> None:
    """Give the handlers of a spool written before cursors existed theirs. Every put of that
    version wrote a row for each handler, so the events a handler has not finished all have a row
    (claimed as before) and the rest are done: its cursor starts at the newest event."""

    def upgraded() -> bool:
        return any(row[1] == "cursor" for row in conn.execute("PRAGMA table_info(handlers)"))

    if upgraded():
        return
    with transaction(conn):
        if upgraded():  # another process sharing the file was first
            return
        conn.execute("ALTER TABLE handlers ADD COLUMN cursor INTEGER NOT NULL DEFAULT 0")
        conn.execute("UPDATE handlers SET cursor=(SELECT COALESCE(MAX(id), 0) FROM events)")


_UNREAD: Any = object()  # an event whose stored JSON has not been decoded yet


@attrs.frozen(kw_only=True, eq=False, repr=False)
class SpooledEvent:
    """An event as stored: its spool id (stable, use it to make side effects idempotent), where it
    came from (``push`` or ``pull``), when it was stored, and the model object itself (``event``).

    A claimed event's model is built from its stored JSON when ``event`` is first read, so a handler
    that only counts or forwards events (the events file reads :func:`plain_fields`) never pays for
    models it does not look at."""

    id: int
    provider: str
    kind: str  #: ``report``, ``inbound`` or ``task``
    source: str
    spooled_at: float
    _event: Any = attrs.field(default=_UNREAD)  # given as ``event=``; read through :attr:`event`
    attempts: int = 0  #: failed attempts of this handler so far
    _payload: str | None = attrs.field(default=None)  # the stored JSON, given as ``payload=``

    def __attrs_post_init__(self) -> None:
        if self._event is _UNREAD and self._payload is None:
            raise TypeError("SpooledEvent needs event= (or the stored payload=)")

    @property
    def event(self) -> Any:
        """DeliveryReport, InboundMessage or TaskSummary."""
        event = self._event
        if event is _UNREAD:
            event = decode_event(self.kind, self._payload or "")
            object.__setattr__(self, "_event", event)  # a cache: the value never changes
        return event

    def _identity(self) -> tuple[Any, ...]:
        return (self.id, self.provider, self.kind, self.source, self.spooled_at, self.event, self.attempts)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._identity() == other._identity()

    def __hash__(self) -> int:
        return hash(self._identity())

    def __repr__(self) -> str:
        return (f"SpooledEvent(id={self.id!r}, provider={self.provider!r}, kind={self.kind!r}, "
                f"source={self.source!r}, spooled_at={self.spooled_at!r}, event={self.event!r}, "
                f"attempts={self.attempts!r})")


_STORED_FIELDS = ("id", "provider", "kind", "source", "spooled_at", "_payload", "attempts", "_event")
_SET_STORED = tuple(getattr(SpooledEvent, name).__set__ for name in _STORED_FIELDS)  # the slots' setters


def _stored_events(rows: list[tuple[Any, ...]]) -> list[SpooledEvent]:
    """SpooledEvents of rows ``(id, provider, kind, source, spooled_at, payload, attempts)``,
    their models not built yet. The slots are filled directly: the attrs ``__init__`` (keywords,
    a setattr call per field, the check of ``__attrs_post_init__``) cost more than twice as much,
    for every event of every claim. The same objects as the constructor makes (tested)."""
    set_id, set_provider, set_kind, set_source, set_at, set_payload, set_attempts, set_event = _SET_STORED
    new = object.__new__
    out = []
    for event_id, provider, kind, source, spooled_at, payload, attempts in rows:
        item = new(SpooledEvent)
        set_id(item, event_id)
        set_provider(item, provider)
        set_kind(item, kind)
        set_source(item, source)
        set_at(item, spooled_at)
        set_payload(item, payload)
        set_attempts(item, attempts)
        set_event(item, _UNREAD)
        out.append(item)
    return out


def plain_fields(item: SpooledEvent) -> dict[str, Any]:
    """The event's fields as JSON-ready values (what :func:`plain_event` gives), read from the
    stored JSON when the model was not built yet: the same values either way."""
    if item._event is _UNREAD and item._payload is not None:
        data: dict[str, Any] = load_json(item._payload)
        return data
    return plain_event(item.event, item.kind)


def plain_fields_each(items: Sequence[SpooledEvent]) -> list[dict[str, Any]]:
    """:func:`plain_fields` of each item, the stored JSON parsed with orjson when it is installed
    (:func:`smsgate.wire.load_json_each`: the same values as the standard parser)."""
    payloads = [item._payload if item._event is _UNREAD else None for item in items]
    loaded = iter(load_json_each([payload for payload in payloads if payload is not None]))
    return [next(loaded) if payload is not None else plain_event(item.event, item.kind)
            for item, payload in zip(items, payloads)]


@attrs.frozen
class PutResult:
    stored: int
    duplicates: int
    ids: tuple[int, ...] = ()


_TYPES: dict[str, type] = {}
_KIND_OF: dict[type, str] = {}
_STATUS: dict[str, Any] = {}


def _types() -> dict[str, type]:
    if not _TYPES:
        from ..models import DeliveryReport, InboundMessage, Status, TaskSummary

        _STATUS.update((s.value, s) for s in Status)
        _KIND_OF.update({DeliveryReport: "report", InboundMessage: "inbound", TaskSummary: "task"})
        _TYPES.update(report=DeliveryReport, inbound=InboundMessage, task=TaskSummary)
    return _TYPES


def event_kind(event: Any) -> str:
    found = _KIND_OF.get(type(event))
    if found is None:
        _types()
        found = _KIND_OF.get(type(event))
    if found is not None:
        return found
    for kind, cls in _types().items():  # a subclass of a model
        if isinstance(event, cls):
            return kind
    raise TypeError(f"not an event: {type(event).__name__}")


_PHONE_OK: Any = None


def _phone_ok() -> Any:
    """A mainland mobile number already in its normal form (the common case)."""
    global _PHONE_OK
    if _PHONE_OK is None:
        import re

        _PHONE_OK = re.compile(r"1[3-9][0-9]{9}").fullmatch
    return _PHONE_OK


def _phone_key(phone: Any) -> str:
    if phone is None:
        return ""
    phone = str(phone)
    if _phone_ok()(phone):  # the common case, without the full normalisation
        return str(phone)
    from ..phones import normalise_phone

    return normalise_phone(phone) or phone


def dedup_key(event: Any, kind: str | None = None) -> str:
    """The identity of an event: two pushes (or a push and a pull) with the same key are one event."""
    kind = kind or event_kind(event)
    if kind == "report":
        if event.message_id is None and event.phone is None:
            digest = hashlib.sha256(json.dumps(event.raw, sort_keys=True, default=str).encode()).hexdigest()
            return f"{event.provider}|report|raw:{digest}"
        key = f"{event.provider}|report|{event.message_id or ''}|{_phone_key(event.phone)}|{event.status._value_}"
    elif kind == "inbound":
        content = hashlib.sha256(event.content.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        key = (f"{event.provider}|inbound|{_phone_key(event.phone)}|{event.received_at or ''}|"
               f"{event.service_code or ''}|{content}")
    else:
        key = f"{event.provider}|task|{event.task_id}|{event.total}|{event.sent}|{event.failed}"
    return utf8_safe(key)


def push_keys(events: Sequence[Any], inbound_dedup: str = "retries") -> list[str]:
    """The dedup key of each event of one push (or pull).

    Identical inbound SMS within it are separate events: the second copy's key ends ``|#2``, the
    third ``|#3``. Across pushes, ``inbound_dedup`` decides: ``"retries"`` (default) takes an
    inbound SMS whose key is already stored as the vendor resending it (a push whose 2xx was lost
    comes back with the same items, so each is matched by its place among its copies) and stores it
    once; ``"none"`` stores every inbound SMS of every push as a new event (nothing merged, and a
    vendor's resent push is handled again)."""
    return [key for key, _ in _keyed(events, inbound_dedup)]


def _keyed(events: Sequence[Any], inbound_dedup: str) -> list[tuple[str, str]]:
    """(dedup key, kind) of each event of one push (:func:`push_keys`)."""
    _types()
    kind_of = _KIND_OF
    phone_ok = _phone_ok()
    seen: dict[str, int] = {}
    keys = []
    for event in events:
        kind = kind_of.get(type(event)) or event_kind(event)
        if kind == "report" and (event.message_id is not None or event.phone is not None):
            # dedup_key()'s report key, inline: this loop runs for every report of every push
            phone = event.phone
            if phone is None:
                phone = ""
            elif type(phone) is not str or not phone_ok(phone):
                phone = _phone_key(phone)
            key = f"{event.provider}|report|{event.message_id or ''}|{phone}|{event.status._value_}"
            if not key.isascii():
                key = utf8_safe(key)
            keys.append((key, kind))
            continue
        key = dedup_key(event, kind)
        if kind == "inbound":
            if inbound_dedup == "none":
                key += "|" + uuid.uuid4().hex
            else:
                n = seen[key] = seen.get(key, 0) + 1
                if n > 1:
                    key += f"|#{n}"
        keys.append((key, kind))
    return keys


def utf8_safe(text: str) -> str:
    """``text`` unchanged, or with each lone surrogate written as its ``\\udxxx`` escape: the one
    rule for text that SQLite must store as UTF-8 but that does not encode (keys, not payloads,
    which :func:`smsgate.wire.json_text` keeps losslessly)."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def plain_event(event: Any, kind: str) -> dict[str, Any]:
    """The event's fields as JSON-ready values (what the spool stores)."""
    if kind == "report":
        return {"provider": event.provider, "message_id": event.message_id, "phone": event.phone,
                "status": event.status._value_, "raw_status": event.raw_status, "description": event.description,
                "reported_at": event.reported_at, "biz_id": event.biz_id, "raw": event.raw}
    if kind == "inbound":
        return {"provider": event.provider, "phone": event.phone, "content": event.content,
                "received_at": event.received_at, "service_code": event.service_code, "raw": event.raw}
    return {"provider": event.provider, "task_id": event.task_id, "total": event.total, "sent": event.sent,
            "failed": event.failed, "raw": event.raw}


def encode_events(events: Iterable[tuple[Any, str]], json_native: bool = False) -> list[bytes]:
    """The stored JSON of each ``(event, kind)``, UTF-8 encoded: :func:`plain_event` through
    :func:`smsgate.wire.json_utf8` (lossless even for text holding lone surrogates).
    ``json_native``: every field of every event holds only JSON's own values
    (:attr:`smsgate.models.CallbackResult.json_native`)."""
    return json_utf8([plain_event(event, kind) for event, kind in events], default=str, native=json_native)


def encode_event(event: Any, kind: str | None = None) -> str:
    """The stored JSON of an event."""
    return encode_events([(event, kind or event_kind(event))])[0].decode("utf-8")


def decode_event(kind: str, payload: str) -> Any:
    data = load_json(payload)
    cls = _types()[kind]
    if kind == "report":
        data["status"] = _STATUS.get(data["status"]) or _status(data["status"])
    return cls(**data)


def _status(value: Any) -> Any:
    from ..models import Status

    return Status(value)


def _owner_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _owner_dead(owner: str) -> bool:
    """True when ``owner`` names a process on this host that no longer runs."""
    try:
        host, pid_text, _ = owner.split(":", 2)
        pid = int(pid_text)
    except ValueError:
        return False
    if host != socket.gethostname():
        return False
    if pid == os.getpid():
        return False  # our own earlier token: leases of this process are still held by live threads
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _kinds_sql(kinds: str) -> tuple[str, list[str]]:
    """`` AND kind IN (...)`` for a handler's stored ``kinds`` (nothing when it takes every kind)."""
    wanted = kinds.split(",")
    if set(wanted) >= set(KINDS):
        return "", []
    return f" AND kind IN ({','.join('?' * len(wanted))})", wanted


def _waiting(conn: sqlite3.Connection, handler: str, kinds: str, cursor: int) -> tuple[str, list[Any]]:
    """WHERE clause (on ``events``) and its arguments: the events waiting for ``handler`` past its
    cursor. Rows past the cursor are not written by this module, but an older version sharing the
    file writes one per handler on every put: such an event is taken through its row, not twice."""
    kind_sql, kind_args = _kinds_sql(kinds)
    if conn.execute("SELECT 1 FROM deliveries WHERE handler=? AND event_id>? LIMIT 1", (handler, cursor)).fetchone():
        return (f"id>?{kind_sql} AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.handler=? "
                "AND d.event_id=events.id)", [cursor, *kind_args, handler])
    return f"id>?{kind_sql}", [cursor, *kind_args]


class _QueuedPut:
    """One put waiting for the write lock (group commit: see :meth:`Spool.put`): its INSERT's
    values, ready to bind, and once committed its new ids."""

    __slots__ = ("values", "head", "shared", "rows", "ids", "error", "done")

    def __init__(self, values: list[Any], head: list[Any], shared: bool, rows: int):
        self.values = values
        self.head = head
        self.shared = shared
        self.rows = rows
        self.ids: list[int] | None = None  # set once committed
        self.error: BaseException | None = None
        self.done = False

    @property
    def width(self) -> int:
        """Values a row binds: its dedup key and payload, and with no ``shared`` provider and kind
        its own provider and kind too (see :func:`_insert_events`)."""
        return 2 if self.shared else 4


class _RollBack(Exception):
    """Ends a transaction that only checked something."""


class Spool:
    """A durable event spool in one SQLite file (WAL mode).

    ``synchronous`` is SQLite's setting for the writes that acknowledge events: ``FULL`` (default)
    survives a power cut; ``NORMAL`` survives a killed process but may lose the last commits on
    a power cut. Handler bookkeeping always uses ``NORMAL`` (a lost mark only means a handler
    runs again). ``inbound_dedup`` (``"retries"`` or ``"none"``) is how an inbound SMS identical
    to a stored one is taken (:func:`push_keys`); every process sharing a spool should use the same.
    """

    def __init__(self, path: str | os.PathLike[str], *, synchronous: str = "FULL", busy_timeout: float = 10.0,
                 clock: Callable[[], float] = time.time, inbound_dedup: str = "retries"):
        if str(synchronous).upper() not in ("FULL", "NORMAL", "EXTRA"):
            raise ValueError("synchronous must be FULL, NORMAL or EXTRA")
        if inbound_dedup not in INBOUND_DEDUP:
            raise ValueError(f"inbound_dedup must be one of {', '.join(INBOUND_DEDUP)}")
        self.inbound_dedup = inbound_dedup
        self.path = os.fspath(path)
        self.synchronous = str(synchronous).upper()
        self.busy_timeout = busy_timeout
        self.clock = clock
        # One lock for every transaction this process makes: our two connections then never
        # meet SQLite's busy handler (which sleeps in steps of milliseconds); only other
        # processes sharing the file do.
        self._write_lock = self._book_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue: list[_QueuedPut] = []  # puts waiting for the write lock
        self._puts = 0
        self._wake = threading.Condition()
        self._generation = 0
        self.closed = False
        self._pid = os.getpid()
        try:
            self._writer = self._connect(self.synchronous)
            self._writer.executescript(_SCHEMA)
            encoding = self._writer.execute("PRAGMA encoding").fetchone()[0]
            if encoding != "UTF-8":
                raise sqlite3.DatabaseError(f"the file's text encoding is {encoding}, not UTF-8")
            _add_cursors(self._writer)
            # checkpoints run on the bookkeeping connection (handler threads), not in a push's answer
            self._writer.execute("PRAGMA wal_autocheckpoint=0")
            self._book = self._connect("NORMAL")
        except sqlite3.Error as exc:
            raise SpoolError(f"cannot open spool {self.path}: {exc}") from None

    def _after_fork(self) -> None:
        """SQLite connections must not cross a fork (gunicorn --preload): reopen them in the child."""
        if os.getpid() == self._pid:
            return
        self._write_lock = self._book_lock = threading.Lock()
        self._queue_lock = threading.Lock()
        self._queue = []
        self._wake = threading.Condition()
        self._writer = self._connect(self.synchronous)
        self._writer.execute("PRAGMA wal_autocheckpoint=0")
        self._book = self._connect("NORMAL")
        self._pid = os.getpid()

    def _connect(self, synchronous: str) -> sqlite3.Connection:
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise sqlite3.OperationalError(f"directory {directory} does not exist")
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
        mode = use_wal(conn, self.busy_timeout)
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"could not switch to WAL mode (got {mode})")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute(f"PRAGMA busy_timeout={int(self.busy_timeout * 1000)}")
        return conn

    # -- handlers ----------------------------------------------------------------------------
    def register_handler(self, name: str, kinds: Iterable[str] | None = None, since_id: int | None = None) -> None:
        """Make ``name`` receive every event of ``kinds`` stored from now on; with ``since_id`` also
        the stored events of ``kinds`` after that id that it has not taken yet or finished since
        (those run again). Events already stored keep the kinds that were registered when they
        were stored."""
        wanted = ",".join(sorted(set(kinds or KINDS)))
        self._after_fork()
        with self._write_lock, transaction(self._writer) as conn:
            newest = conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
            found = conn.execute("SELECT kinds, cursor FROM handlers WHERE name=?", (name,)).fetchone()
            if found is None:
                cursor = newest if since_id is None else min(since_id, newest)
                conn.execute("INSERT INTO handlers (name, kinds, created_at, cursor) VALUES (?, ?, ?, ?)",
                             (name, wanted, self.clock(), cursor))
            else:
                before, cursor = found
                if before != wanted:
                    # the events waiting past the cursor were stored for the kinds registered then:
                    # give them rows, so that the new kinds apply from now on only
                    where, args = _waiting(conn, name, before, cursor)
                    conn.execute(f"INSERT INTO deliveries (handler, event_id, state) SELECT ?, id, 'pending' "
                                 f"FROM events WHERE {where}", (name, *args))
                    cursor = max(cursor, newest)
                    conn.execute("UPDATE handlers SET kinds=?, cursor=? WHERE name=?", (wanted, cursor, name))
                if since_id is not None and since_id < cursor:
                    # the later events are waiting already; those up to the cursor get a row again
                    # unless they still have one (leased, retrying or dead)
                    kind_sql, kind_args = _kinds_sql(wanted)
                    conn.execute(
                        "INSERT OR IGNORE INTO deliveries (handler, event_id, state) SELECT ?, id, 'pending' FROM "
                        f"events WHERE id>? AND id<=?{kind_sql}", (name, since_id, cursor, *kind_args))
        if since_id is not None:
            self.notify()

    def last_id(self) -> int:
        """The id of the newest stored event (0 when empty)."""
        self._after_fork()
        with self._book_lock:
            return int(self._book.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0])

    def forget_handler(self, name: str) -> None:
        """Stop feeding ``name`` and drop its outstanding rows (a handler removed from the app)."""
        self._after_fork()
        with self._write_lock, transaction(self._writer) as conn:
            conn.execute("DELETE FROM handlers WHERE name=?", (name,))
            conn.execute("DELETE FROM deliveries WHERE handler=?", (name,))

    def handler_names(self) -> dict[str, set[str]]:
        with self._write_lock:
            rows = self._writer.execute("SELECT name, kinds FROM handlers").fetchall()
        return {name: set(kinds.split(",")) for name, kinds in rows}

    # -- writing -----------------------------------------------------------------------------
    def put(self, events: Sequence[Any], source: str = "push", *, json_native: bool = False) -> PutResult:
        """Store ``events`` in one committed transaction; duplicates of stored events are skipped.

        ``json_native``: the caller knows that every field of every event holds only text, ints,
        finite floats, booleans, None, and dicts and lists of these
        (:attr:`smsgate.models.CallbackResult.json_native`); their payloads are then encoded
        without looking at each value first (:func:`smsgate.wire.json_utf8`).

        Raises :class:`SpoolError` when the transaction cannot be committed (nothing is stored then).

        Puts of several threads that wait for the write lock are committed together (group
        commit): the thread that gets the lock writes every put queued by then, each as before,
        in one transaction with one fsync, and each put returns once that commit is done. If that
        transaction fails, each of its puts is tried alone, so a put that cannot be stored fails
        only itself.
        """
        events = list(events)
        if not events:
            return PutResult(0, 0)
        self._after_fork()
        rows: dict[str, tuple[Any, str]] = {}
        for e, (key, kind) in zip(events, _keyed(events, self.inbound_dedup)):
            if key not in rows:  # the same report (or task summary) twice in one push
                rows[key] = (e, kind)
        pairs = list(rows.values())
        provider, kind = pairs[0][0].provider, pairs[0][1]
        shared = all(k == kind and e.provider == provider for e, k in pairs)
        # each payload is copied into a bytearray as it is encoded: sqlite3 binds a bytearray as
        # it is, while for bytes it first looks for an adapter (a registry lookup and two failed
        # attribute lookups, several times the copy's cost); either is bound as a blob and stored
        # as the text it spells (the CAST)
        encoded = json_utf8_each([plain_event(e, k) for e, k in pairs], default=str, native=json_native)
        values: list[Any] = []
        if shared:
            for key, payload in zip(rows, encoded):
                values += (key, bytearray(payload))
        else:
            for (key, (e, k)), payload in zip(rows.items(), encoded):
                values += (key, e.provider, k, bytearray(payload))
        now = self.clock()
        head: list[Any] = [source, now, provider, kind] if shared else [source, now]
        pending = _QueuedPut(values, head, shared, len(rows))
        with self._queue_lock:
            self._queue.append(pending)
        with self._write_lock:
            if not pending.done:  # no earlier holder of the lock took it along
                self._commit_queued()
        if pending.ids is None:  # rolled back: nothing of this call is stored
            exc = pending.error
            why = f"{type(exc).__name__}: {exc}" if exc is not None else "the committing thread was interrupted"
            log.error("smsgate.spool.write_failed", path=self.path, error=why, events=len(events))
            raise SpoolError(f"spool {self.path} could not store {len(events)} events: {why}")
        ids = pending.ids
        if ids:
            self.notify()
        return PutResult(len(ids), len(events) - len(ids), tuple(ids))

    def _commit_queued(self) -> None:
        """Commit every queued put (the write lock is held)."""
        with self._queue_lock:
            group, self._queue = self._queue, []
        try:
            if len(group) > 1:
                try:
                    self._write_puts(group)
                    return
                except Exception:  # rolled back: each alone, so that one bad put fails only itself
                    pass
            for queued in group:
                try:
                    self._write_puts([queued])
                except Exception as exc:
                    queued.error = exc
        finally:
            for queued in group:
                queued.done = True  # with ids None: not stored (an error, or this thread was interrupted)

    def _write_puts(self, group: list["_QueuedPut"]) -> None:
        """One transaction for ``group``; each put's new ids are set once it is committed."""
        stored: list[list[int]] = []
        with transaction(self._writer) as conn:
            # we hold the write lock, so every id above the current maximum is one of ours
            before = conn.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
            for queued in group:
                values, width, head, shared = queued.values, queued.width, queued.head, queued.shared
                step = _INSERT_ROWS * width
                inserted = last = 0
                for start in range(0, len(values), step):
                    part = values[start:start + step]
                    cur = conn.execute(_insert_events(len(part) // width, shared), head + part)
                    inserted += cur.rowcount
                    last = cur.lastrowid or 0
                # nothing per handler: they take the new events past their cursors
                if inserted == queued.rows and last - inserted >= before:
                    # no row ignored as a duplicate: AUTOINCREMENT gave them consecutive ids
                    # ending at the last one (an ignored row uses up an id, hence the check)
                    ids = list(range(last - inserted + 1, last + 1))
                else:
                    ids = [r[0] for r in conn.execute("SELECT id FROM events WHERE id>? ORDER BY id", (before,))]
                if ids:
                    before = ids[-1]
                stored.append(ids)
        for queued, ids in zip(group, stored):
            queued.ids = ids
        self._puts += 1
        if self._puts % 1000 == 0:  # in case no handler thread checkpoints (a put-only process)
            try:
                self._writer.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except sqlite3.Error:
                pass

    def contains_all(self, events: Sequence[Any]) -> bool:
        """True when every one of ``events`` is already stored (by its dedup key)."""
        keys = list(set(push_keys(events, self.inbound_dedup)))
        self._after_fork()
        with self._book_lock:
            found = 0
            for i in range(0, len(keys), 500):
                chunk = keys[i:i + 500]
                found += self._book.execute(
                    f"SELECT COUNT(*) FROM events WHERE dedup_key IN ({','.join('?' * len(chunk))})", chunk).fetchone()[0]
        return found == len(keys)

    def notify(self) -> None:
        with self._wake:
            self._generation += 1
            self._wake.notify_all()

    def wait(self, generation: int, timeout: float) -> int:
        """Block until a put after ``generation`` (in this process) or ``timeout``; return the new one."""
        with self._wake:
            if self._generation == generation:
                self._wake.wait(timeout)
            return self._generation

    @property
    def generation(self) -> int:
        return self._generation

    def check_writable(self) -> None:
        """Raise SpoolError unless a write to the spool would succeed now (a health check: it
        takes the write lock and writes the header, then rolls back)."""
        try:
            def tx(conn: sqlite3.Connection) -> None:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                conn.execute(f"PRAGMA user_version={int(version)}")
                raise _RollBack

            self._book_tx(tx)
        except _RollBack:
            return
        except sqlite3.Error as exc:
            raise SpoolError(f"spool {self.path} is not writable: {exc}") from None

    # -- consuming ---------------------------------------------------------------------------
    def _book_tx(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        self._after_fork()
        with self._book_lock, transaction(self._book) as conn:
            return fn(conn)

    def claim(self, handler: str, owner: str, limit: int = 100, lease_seconds: float = 300.0) -> list[SpooledEvent]:
        """Lease up to ``limit`` due events for ``handler``: first its rows that are due again (a
        retry whose time has come, an expired lease), then new events past its cursor, oldest first."""
        now = self.clock()
        until = now + lease_seconds
        columns = "id, provider, kind, source, spooled_at, payload"

        due = ("handler=? AND ((state='pending' AND next_at<=?) OR (state='leased' AND lease_until<?)) "
               "ORDER BY event_id LIMIT ?")

        def tx(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
            if _HAS_RETURNING:
                rows = conn.execute(
                    "UPDATE deliveries SET state='leased', owner=?, lease_until=? WHERE handler=? AND event_id IN "
                    f"(SELECT event_id FROM deliveries WHERE {due}) RETURNING event_id, attempts",
                    (owner, until, handler, handler, now, now, limit)).fetchall()
            else:  # SQLite < 3.35
                rows = conn.execute(f"SELECT event_id, attempts FROM deliveries WHERE {due}",
                                    (handler, now, now, limit)).fetchall()
                conn.executemany(
                    "UPDATE deliveries SET state='leased', owner=?, lease_until=? WHERE handler=? AND event_id=?",
                    [(owner, until, handler, eid) for eid, _ in rows])
            out: list[tuple[Any, ...]] = []
            if rows:
                attempts = dict(rows)
                ids = sorted(attempts)
                for i in range(0, len(ids), 500):
                    chunk = ids[i:i + 500]
                    out.extend(r + (attempts[r[0]],) for r in conn.execute(
                        f"SELECT {columns} FROM events WHERE id IN ({','.join('?' * len(chunk))}) ORDER BY id",
                        chunk).fetchall())
            room = limit - len(rows)
            found = conn.execute("SELECT kinds, cursor FROM handlers WHERE name=?", (handler,)).fetchone()
            if room <= 0 or found is None:
                return out
            kinds, cursor = found
            where, args = _waiting(conn, handler, kinds, cursor)
            fresh = conn.execute(f"SELECT {columns}, 0 FROM events WHERE {where} ORDER BY id LIMIT ?",
                                 (*args, room)).fetchall()
            if fresh:  # the same events, without binding one parameter per row
                conn.execute("INSERT INTO deliveries (handler, event_id, state, owner, lease_until) "
                             f"SELECT ?, id, 'leased', ?, ? FROM events WHERE {where} AND id<=?",
                             (handler, owner, until, *args, fresh[-1][0]))
            # a full batch ends at its last event; a short one took every event there is
            taken = fresh[-1][0] if len(fresh) == room else conn.execute(
                "SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
            if taken > cursor:
                conn.execute("UPDATE handlers SET cursor=? WHERE name=?", (taken, handler))
            # oldest first (rows past the cursor, from an older version, are among the fresh ids)
            return sorted(out + fresh) if out else fresh  # ids are unique: only they are compared

        # models are built when a handler reads .event (SpooledEvent), not here for every handler
        return _stored_events(self._book_tx(tx))

    def renew(self, handler: str, owner: str, event_ids: Iterable[int], lease_seconds: float = 300.0) -> set[int]:
        """Extend ``owner``'s lease on ``event_ids`` to now + ``lease_seconds``; return the ids it
        still holds (a row whose lease expired and that another worker claimed is not among them)."""
        ids = list(event_ids)
        if not ids:
            return set()
        until = self.clock() + lease_seconds

        def tx(conn: sqlite3.Connection) -> set[int]:
            held: set[int] = set()
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                marks = ",".join("?" * len(chunk))
                held.update(r[0] for r in conn.execute(
                    f"SELECT event_id FROM deliveries WHERE handler=? AND owner=? AND state='leased' "
                    f"AND event_id IN ({marks})", (handler, owner, *chunk)).fetchall())
                conn.execute(f"UPDATE deliveries SET lease_until=? WHERE handler=? AND owner=? AND state='leased' "
                             f"AND event_id IN ({marks})", (until, handler, owner, *chunk))
            return held

        held_now: set[int] = self._book_tx(tx)
        return held_now

    def complete(self, handler: str, event_ids: Iterable[int]) -> None:
        """Mark ``event_ids`` handled: their rows go."""
        ids = list(event_ids)
        if not ids:
            return
        first, last = min(ids), max(ids)
        # a batch of new events is usually a run of consecutive ids: one range instead of an id list
        run = last - first + 1 == len(ids) == len(set(ids))

        def tx(conn: sqlite3.Connection) -> None:
            if run:
                conn.execute("DELETE FROM deliveries WHERE handler=? AND event_id BETWEEN ? AND ?",
                             (handler, first, last))
                return
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                conn.execute(f"DELETE FROM deliveries WHERE handler=? AND event_id IN ({','.join('?' * len(chunk))})",
                             (handler, *chunk))

        self._book_tx(tx)

    def fail(self, handler: str, event_ids: Iterable[int], error: str, delay: Callable[[int], float],
             max_attempts: int | None = None) -> None:
        """Record a failed attempt; the row becomes due again after ``delay(attempts)`` seconds, or
        ``dead`` once ``max_attempts`` is reached (kept, see :meth:`requeue_dead`)."""
        now = self.clock()
        ids = list(event_ids)

        def tx(conn: sqlite3.Connection) -> None:
            for eid in ids:
                row = conn.execute("SELECT attempts FROM deliveries WHERE handler=? AND event_id=?",
                                   (handler, eid)).fetchone()
                if row is None:
                    continue
                attempts = row[0] + 1
                state = "dead" if max_attempts and attempts >= max_attempts else "pending"
                conn.execute(
                    "UPDATE deliveries SET state=?, attempts=?, next_at=?, owner=NULL, lease_until=NULL, "
                    "last_error=? WHERE handler=? AND event_id=?",
                    (state, attempts, now + delay(attempts), error[:2000], handler, eid))

        self._book_tx(tx)

    def release_dead_owners(self) -> int:
        """Make rows leased by processes that died (kill -9, crash) due again at once."""
        self._after_fork()
        with self._book_lock:
            owners = [r[0] for r in self._book.execute(
                "SELECT DISTINCT owner FROM deliveries WHERE state='leased'").fetchall()]
        dead = [o for o in owners if o and _owner_dead(o)]
        if not dead:
            return 0

        def tx(conn: sqlite3.Connection) -> int:
            n = 0
            for owner in dead:
                n += conn.execute("UPDATE deliveries SET state='pending', owner=NULL, lease_until=NULL "
                                  "WHERE state='leased' AND owner=?", (owner,)).rowcount
            return n

        released: int = self._book_tx(tx)
        if released:
            log.warning("smsgate.spool.released", rows=released, owners=len(dead))
        return released

    def release_owner(self, owner: str) -> None:
        self._book_tx(lambda c: c.execute(
            "UPDATE deliveries SET state='pending', owner=NULL, lease_until=NULL WHERE state='leased' AND owner=?",
            (owner,)))

    def requeue_dead(self, handler: str | None = None) -> int:
        """Give dead rows (``max_attempts`` reached) another round of attempts."""
        sql = "UPDATE deliveries SET state='pending', attempts=0, next_at=0 WHERE state='dead'"
        args: tuple[str, ...] = ()
        if handler:
            sql += " AND handler=?"
            args = (handler,)
        n: int = self._book_tx(lambda c: c.execute(sql, args).rowcount)
        self.notify()
        return n

    # -- looking -----------------------------------------------------------------------------
    def _read(self, fn: Callable[[sqlite3.Connection], Any]) -> Any:
        """``fn(conn)`` in one read transaction: the figures of its several statements come from
        one state of the file, also while other processes claim."""
        self._after_fork()
        with self._book_lock:
            self._book.execute("BEGIN")
            try:
                return fn(self._book)
            finally:
                self._book.execute("COMMIT")

    @staticmethod
    def _waiting_counts(conn: sqlite3.Connection, names: list[str] | None = None) -> dict[str, int]:
        """Per handler (all, or ``names``): the events waiting past its cursor."""
        counts = {}
        for name, kinds, cursor in conn.execute("SELECT name, kinds, cursor FROM handlers").fetchall():
            if names is None or name in names:
                where, args = _waiting(conn, name, kinds, cursor)
                counts[name] = int(conn.execute(f"SELECT COUNT(*) FROM events WHERE {where}", args).fetchone()[0])
        return counts

    def counts(self) -> dict[str, Any]:
        """``{"events": n, "handlers": {name: {"pending": n, "leased": n, "dead": n}}}``; pending
        counts the events waiting past the handler's cursor too."""

        def read(conn: sqlite3.Connection) -> tuple[int, list[tuple[str, str, int]], dict[str, int]]:
            events = conn.execute("SELECT COUNT(*) FROM events").fetchone()[0]
            rows = conn.execute("SELECT handler, state, COUNT(*) FROM deliveries GROUP BY handler, state").fetchall()
            return events, rows, self._waiting_counts(conn)

        events, rows, waiting = self._read(read)
        handlers: dict[str, dict[str, int]] = {n: {"pending": w, "leased": 0, "dead": 0} for n, w in waiting.items()}
        for handler, state, n in rows:
            counts = handlers.setdefault(handler, {"pending": 0, "leased": 0, "dead": 0})
            counts[state] = counts.get(state, 0) + n
        return {"events": events, "handlers": handlers}

    def oldest_outstanding(self) -> dict[str, float]:
        """Per handler, when the oldest event it has not yet handled (pending, leased or waiting
        past its cursor) was spooled (Unix seconds); handlers with nothing outstanding are left out."""

        def read(conn: sqlite3.Connection) -> list[tuple[str, float | None]]:
            rows = conn.execute(
                "SELECT d.handler, MIN(e.spooled_at) FROM deliveries d JOIN events e ON e.id=d.event_id "
                "WHERE d.state IN ('pending','leased') GROUP BY d.handler").fetchall()
            for name, kinds, cursor in conn.execute("SELECT name, kinds, cursor FROM handlers").fetchall():
                where, args = _waiting(conn, name, kinds, cursor)
                rows += conn.execute(f"SELECT ?, MIN(spooled_at) FROM events WHERE {where}", (name, *args)).fetchall()
            return rows

        oldest: dict[str, float] = {}
        for handler, at in self._read(read):
            if at is not None:
                oldest[handler] = min(at, oldest.get(handler, at))
        return oldest

    def outstanding(self, handlers: Iterable[str] | None = None) -> int:
        """Events not yet handled, summed over ``handlers`` (default all): pending, leased or
        waiting past the handler's cursor (dead rows are not counted)."""
        return self.due(handlers, include_retries=True)

    def due(self, handlers: Iterable[str] | None = None, include_retries: bool = False) -> int:
        """What ``handlers`` (default all) still have to do now, summed: leased rows, rows due
        again and the events waiting past their cursors; with ``include_retries`` also the rows
        whose retry comes later."""
        names = list(handlers) if handlers is not None else None
        if names is not None and not names:
            return 0
        sql = "SELECT COUNT(*) FROM deliveries WHERE (state='leased' OR (state='pending'"
        args: list[Any] = []
        if not include_retries:
            sql += " AND next_at<=?"
            args.append(self.clock())
        sql += "))"
        if names is not None:
            sql += f" AND handler IN ({','.join('?' * len(names))})"
            args += names

        def read(conn: sqlite3.Connection) -> int:
            return int(conn.execute(sql, args).fetchone()[0]) + sum(self._waiting_counts(conn, names).values())

        due: int = self._read(read)
        return due

    def events(self, after: int = 0, limit: int = 1000) -> list[SpooledEvent]:
        self._after_fork()
        with self._book_lock:
            rows = self._book.execute(
                "SELECT id, provider, kind, source, spooled_at, payload, 0 FROM events WHERE id>? ORDER BY id LIMIT ?",
                (after, limit)).fetchall()
        return _stored_events(rows)

    def prune(self, older_than_seconds: float) -> int:
        """Delete events older than the given age that no handler still needs. Their dedup keys go
        with them, so keep this well beyond any vendor's retry window (days, not minutes)."""
        cutoff = self.clock() - older_than_seconds
        self._after_fork()
        with self._write_lock:
            # kept: events that a handler has a row for, or that wait past its cursor for it
            cur = self._writer.execute(
                "DELETE FROM events WHERE spooled_at<? AND id NOT IN (SELECT event_id FROM deliveries) "
                "AND NOT EXISTS (SELECT 1 FROM handlers h WHERE events.id>h.cursor "
                "AND instr(','||h.kinds||',', ','||events.kind||',')>0)", (cutoff,))
            return cur.rowcount

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for conn in (self._writer, self._book):
            try:
                conn.close()
            except sqlite3.Error:
                pass

    def __enter__(self) -> "Spool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
