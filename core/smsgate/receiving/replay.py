"""Replay protection for signed pushes: remember each nonce for its time window.

A provider's ``verify_callback`` finds the store in ``ctx.extras["replay_store"]`` and calls
``store.add(key, ttl)``: True the first time ``key`` is seen within ``ttl`` seconds, False for a
replay. That one method is the whole interface; ``discard(key)`` is optional (the receiver uses it
to forget a nonce when it could not store the push, so the vendor's retry is not refused).

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


@runtime_checkable
class ReplayStore(Protocol):
    def add(self, key: str, ttl: float) -> bool:
        """Remember ``key`` for ``ttl`` seconds. True if it was new, False if seen before."""


class MemoryReplayStore:
    """In-process store (a dict of expiry times), swept as it grows."""

    def __init__(self, clock: Callable[[], float] = time.time, sweep_every: int = 1000):
        self.clock = clock
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._adds = 0
        self._sweep_every = sweep_every

    def add(self, key: str, ttl: float) -> bool:
        now = self.clock()
        with self._lock:
            self._adds += 1
            if self._adds % self._sweep_every == 0:
                self._seen = {k: t for k, t in self._seen.items() if t > now}
            expires = self._seen.get(key)
            if expires is not None and expires > now:
                return False
            self._seen[key] = now + ttl
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
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS replay_keys (key TEXT PRIMARY KEY, expires REAL NOT NULL)")

    def _after_fork(self) -> None:
        """SQLite connections (and a lock another thread may have held) must not cross a fork
        (gunicorn --preload): the child opens its own. The parent's connection is left alone."""
        if os.getpid() != self._pid and not self.closed:
            self._open()

    def add(self, key: str, ttl: float) -> bool:
        now = self.clock()
        self._after_fork()
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                self._adds += 1
                if self._adds % self._sweep_every == 0:
                    conn.execute("DELETE FROM replay_keys WHERE expires<=?", (now,))
                conn.execute("DELETE FROM replay_keys WHERE key=? AND expires<=?", (key, now))
                cur = conn.execute("INSERT OR IGNORE INTO replay_keys (key, expires) VALUES (?, ?)", (key, now + ttl))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return cur.rowcount == 1

    def discard(self, key: str) -> None:
        self._after_fork()
        with self._lock:
            self._conn.execute("DELETE FROM replay_keys WHERE key=?", (key,))

    def close(self) -> None:
        self.closed = True
        if os.getpid() == self._pid:
            self._conn.close()


class RedisReplayStore:
    """Several hosts: ``SET key 1 NX PX ttl`` on a redis-py compatible ``client`` you create."""

    def __init__(self, client: Any, prefix: str = "smsgate:replay:"):
        self.client = client
        self.prefix = prefix

    def add(self, key: str, ttl: float) -> bool:
        return bool(self.client.set(self.prefix + key, b"1", nx=True, px=max(1, int(ttl * 1000))))

    def discard(self, key: str) -> None:
        self.client.delete(self.prefix + key)


class RecordingStore:
    """Wraps a store for one push and remembers the keys it added (so they can be given back)."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.added: list[str] = []
        self.seen_before: list[str] = []  #: keys the inner store refused as replays

    def add(self, key: str, ttl: float) -> bool:
        ok = bool(self.inner.add(key, ttl))
        if ok:
            self.added.append(key)
        else:
            self.seen_before.append(key)
        return ok

    def give_back(self) -> None:
        discard = getattr(self.inner, "discard", None)
        if discard is None:
            return
        for key in self.added:
            try:
                discard(key)
            except Exception:
                pass


class AcceptingStore:
    """Says every key is new and remembers nothing: re-checks the signature and time window of a
    push whose nonce was already used, without recording anything."""

    def add(self, key: str, ttl: float) -> bool:
        return True


def replay_store_from(spec: Any) -> Any:
    """``None``/``"memory"`` -> memory store; ``"sqlite:PATH"`` (or a path ending .sqlite3/.db)
    -> SQLite store; an object with ``add`` is returned as it is."""
    if spec is None or spec == "memory":
        return MemoryReplayStore()
    if hasattr(spec, "add"):
        return spec
    text = os.fspath(spec)
    if text.startswith("sqlite:"):
        return SqliteReplayStore(text[len("sqlite:"):])
    if text.endswith((".sqlite3", ".sqlite", ".db")):
        return SqliteReplayStore(text)
    raise ValueError(f"replay store must be 'memory' or 'sqlite:PATH', not {text!r}")
