"""Replay protection for signed pushes: remember each nonce for its time window.

A provider's ``verify_callback`` finds the store in ``ctx.extras["replay_store"]`` and calls
``store.add(key, ttl)``: True the first time ``key`` is seen within ``ttl`` seconds, False for a
replay. That one method is the whole interface a plugin sees.

The receiver wraps the store (:class:`RecordingStore`) so that a nonce is kept for its window only
once the push's events are committed to the spool: the plugin's ``add`` *reserves* the nonce for a
short hold (``reserve(key, hold)``), the receiver *confirms* it for the full window after the
commit (``confirm(key, ttl)``) or *discards* it when the commit fails (``discard(key)``). A process
killed between the two leaves only a reservation that expires after the hold: meanwhile the
vendor's retry gets 503 (push again later), afterwards it is accepted; it never gets 401 for a push
that was not stored. A store with only ``add`` still works, without that guarantee.

* :class:`MemoryReplayStore` — the default; one process.
* :class:`SqliteReplayStore` — one file shared by several worker processes on one host.
* :class:`RedisReplayStore` — several hosts; wraps a redis-py client you pass in (``SET NX PX``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

from ..sqlite_wal import use_wal
from .store import transaction, utf8_safe


@runtime_checkable
class ReplayStore(Protocol):
    def add(self, key: str, ttl: float) -> bool:
        """Remember ``key`` for ``ttl`` seconds. True if it was new, False if seen before."""


#: what :meth:`reserve` answers: the key was free (now held by the caller), is held by a push
#: still being stored (or by a process that died while storing it), or was confirmed
NEW, HELD, SEEN = "new", "held", "seen"

#: how long a reserved nonce waits for its push's commit before it is free again
DEFAULT_HOLD = 60.0


class MemoryReplayStore:
    """In-process store (a dict of expiry times), swept as it grows."""

    def __init__(self, clock: Callable[[], float] = time.time, sweep_every: int = 1000):
        self.clock = clock
        self._seen: dict[str, tuple[float, bool]] = {}  # key -> (expires, confirmed)
        self._lock = threading.Lock()
        self._adds = 0
        self._sweep_every = sweep_every

    def reserve(self, key: str, hold: float) -> str:
        now = self.clock()
        with self._lock:
            self._adds += 1
            if self._adds % self._sweep_every == 0:
                self._seen = {k: v for k, v in self._seen.items() if v[0] > now}
            found = self._seen.get(key)
            if found is not None and found[0] > now:
                return SEEN if found[1] else HELD
            self._seen[key] = (now + hold, False)
            return NEW

    def confirm(self, key: str, ttl: float) -> None:
        with self._lock:
            self._seen[key] = (self.clock() + ttl, True)

    def add(self, key: str, ttl: float) -> bool:
        if self.reserve(key, ttl) != NEW:
            return False
        self.confirm(key, ttl)
        return True

    def discard(self, key: str) -> None:
        with self._lock:
            self._seen.pop(key, None)

    def __len__(self) -> int:
        return len(self._seen)


class SqliteReplayStore:
    """A store in one SQLite file (WAL), shared by every process on the host that opens it.

    SQLite's write lock makes ``add`` atomic across processes: of two workers receiving the same
    push at once, exactly one gets True.
    """

    def __init__(self, path: str | os.PathLike[str], clock: Callable[[], float] = time.time,
                 busy_timeout: float = 10.0, sweep_every: int = 1000):
        self.path = os.fspath(path)
        self.clock = clock
        self.busy_timeout = busy_timeout
        self._adds = 0
        self._sweep_every = sweep_every
        self.closed = False
        self._open()

    def _open(self) -> None:
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                                     check_same_thread=False)
        use_wal(self._conn, self.busy_timeout)
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS replay_keys (key TEXT PRIMARY KEY, expires REAL NOT NULL)")
        columns = [r[1] for r in self._conn.execute("PRAGMA table_info(replay_keys)")]
        if "confirmed" not in columns:  # a file from before reservations: its keys were all confirmed
            try:
                self._conn.execute("ALTER TABLE replay_keys ADD COLUMN confirmed INTEGER NOT NULL DEFAULT 1")
            except sqlite3.OperationalError:  # another process added it at the same moment
                pass

    def _after_fork(self) -> None:
        """SQLite connections (and a lock another thread may have held) must not cross a fork
        (gunicorn --preload): the child opens its own. The parent's connection is left alone."""
        if os.getpid() != self._pid and not self.closed:
            self._open()

    def reserve(self, key: str, hold: float) -> str:
        now = self.clock()
        key = utf8_safe(key)
        self._after_fork()
        with self._lock, transaction(self._conn) as conn:
            self._adds += 1
            if self._adds % self._sweep_every == 0:
                conn.execute("DELETE FROM replay_keys WHERE expires<=?", (now,))
            row = conn.execute("SELECT expires, confirmed FROM replay_keys WHERE key=?", (key,)).fetchone()
            if row is not None and row[0] > now:
                return SEEN if row[1] else HELD
            conn.execute("INSERT OR REPLACE INTO replay_keys (key, expires, confirmed) VALUES (?, ?, 0)",
                         (key, now + hold))
            return NEW

    def confirm(self, key: str, ttl: float) -> None:
        key = utf8_safe(key)
        self._after_fork()
        with self._lock:
            self._conn.execute("UPDATE replay_keys SET expires=?, confirmed=1 WHERE key=?", (self.clock() + ttl, key))

    def add(self, key: str, ttl: float) -> bool:
        if self.reserve(key, ttl) != NEW:
            return False
        self.confirm(key, ttl)
        return True

    def discard(self, key: str) -> None:
        key = utf8_safe(key)
        self._after_fork()
        with self._lock:
            self._conn.execute("DELETE FROM replay_keys WHERE key=?", (key,))

    def close(self) -> None:
        self.closed = True
        if os.getpid() == self._pid:
            self._conn.close()


class RedisReplayStore:
    """Several hosts: ``SET key held NX PX hold`` on a redis-py compatible ``client`` you create,
    then ``SET key seen PX ttl`` once the push is stored."""

    def __init__(self, client: Any, prefix: str = "smsgate:replay:"):
        self.client = client
        self.prefix = prefix

    def _key(self, key: str) -> str:
        return self.prefix + utf8_safe(key)

    def reserve(self, key: str, hold: float) -> str:
        name = self._key(key)
        if self.client.set(name, b"held", nx=True, px=max(1, int(hold * 1000))):
            return NEW
        value = self.client.get(name)
        if value is None:  # expired in between: try once more
            return NEW if self.client.set(name, b"held", nx=True, px=max(1, int(hold * 1000))) else HELD
        return HELD if value in (b"held", "held") else SEEN

    def confirm(self, key: str, ttl: float) -> None:
        self.client.set(self._key(key), b"seen", px=max(1, int(ttl * 1000)))

    def add(self, key: str, ttl: float) -> bool:
        return bool(self.client.set(self._key(key), b"seen", nx=True, px=max(1, int(ttl * 1000))))

    def discard(self, key: str) -> None:
        self.client.delete(self._key(key))


class RecordingStore:
    """Wraps the receiver's store for one push: the plugin's ``add`` reserves the nonce (when the
    store can), :meth:`confirm` keeps it for its window after the events are committed,
    :meth:`give_back` frees it when they could not be."""

    def __init__(self, inner: Any, hold: float = DEFAULT_HOLD):
        self.inner = inner
        self.hold = hold
        self.added: list[tuple[str, float]] = []
        self.seen_before: list[str] = []  #: keys the inner store refused as replays
        self.held: list[str] = []  #: keys reserved by a push still being stored (or by a dead process)

    def add(self, key: str, ttl: float) -> bool:
        reserve = getattr(self.inner, "reserve", None)
        if reserve is None:
            ok = bool(self.inner.add(key, ttl))
            state = NEW if ok else SEEN
        else:
            state = reserve(key, min(self.hold, ttl))
        if state == NEW:
            self.added.append((key, ttl))
        elif state == HELD:
            self.held.append(key)
        else:
            self.seen_before.append(key)
        return state == NEW

    def confirm(self) -> None:
        confirm = getattr(self.inner, "confirm", None)
        if confirm is None:
            return
        for key, ttl in self.added:
            try:
                confirm(key, ttl)
            except Exception as exc:  # the events are stored; the reservation still guards the hold
                from ..log import get_logger

                get_logger("smsgate.callbacks").warning("smsgate.replay.confirm_failed",
                                                        error=f"{type(exc).__name__}: {exc}")

    def give_back(self) -> None:
        discard = getattr(self.inner, "discard", None)
        if discard is None:
            return
        for key, _ in self.added:
            try:
                discard(key)
            except Exception:
                pass
        self.added.clear()


class AcceptingStore:
    """Says every key is new and remembers nothing: re-checks the signature and time window of a
    push whose nonce was already used, without recording anything."""

    def add(self, key: str, ttl: float) -> bool:
        return True


def replay_store_path(spec: str | os.PathLike[str] | None) -> str | None:
    """The SQLite file a replay store setting names (None: the memory store). ValueError when
    it names neither."""
    if spec is None or spec == "memory":
        return None
    text = os.fspath(spec)
    if text.startswith("sqlite:"):
        return text[len("sqlite:"):]
    if text.endswith((".sqlite3", ".sqlite", ".db")):
        return text
    raise ValueError(f"replay store must be 'memory' or 'sqlite:PATH', not {text!r}")


def replay_store_from(spec: Any) -> Any:
    """``None``/``"memory"`` -> memory store; ``"sqlite:PATH"`` (or a path ending .sqlite3/.db)
    -> SQLite store; an object with ``add`` is returned as it is."""
    if hasattr(spec, "add"):
        return spec
    path = replay_store_path(spec)
    return MemoryReplayStore() if path is None else SqliteReplayStore(path)
