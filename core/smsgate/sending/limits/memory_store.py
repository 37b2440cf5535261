"""The limits store of one process: ``[limits] store = "memory://"`` (the default).

Every key holds a moving-window log: the times of the calls counted in it (a sorted list), and,
for vendor call budgets, the calls still in flight with the time their hold runs out. The Redis
store (``redis_store.py``) keeps the same logs in sorted sets and runs the same rules in Lua; the
two must agree, and the tests run the same cases on both.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

#: while another call of the same budget is in flight, look again this often (seconds)
BUSY_POLL = 0.1
_SWEEP_EVERY = 60.0  # seconds between sweeps of keys whose every window has passed


class _Log:
    """One key's log. The calls counted are two lists in step, sorted by time, rather than one list
    of (time, token) pairs: a pair is a container the cyclic collector counts, and a send at a high
    request rate would leave one per request alive for the window's length (more collections, each
    walking whatever the caller has just made, such as its list of a million phones)."""

    __slots__ = ("ended", "tokens", "flight", "expires")

    def __init__(self) -> None:
        self.ended: list[float] = []  # when each counted call ended (or was counted), ascending
        self.tokens: list[str] = []  # its token, at the same index
        self.flight: dict[str, float] = {}  # token -> hold deadline
        self.expires = 0.0

    def add(self, when: float, token: str) -> None:
        at = bisect.bisect_right(self.ended, when)
        self.ended.insert(at, when)
        self.tokens.insert(at, token)

    def drop(self, token: str) -> None:
        """Take ``token``'s entries out."""
        if token in self.tokens:
            kept = [i for i, t in enumerate(self.tokens) if t != token]
            self.ended = [self.ended[i] for i in kept]
            self.tokens = [self.tokens[i] for i in kept]

    def prune(self, now: float, longest: float) -> None:
        for token, deadline in list(self.flight.items()):
            if deadline <= now:  # its caller died or hung: count it as ended at its deadline
                del self.flight[token]
                self.add(deadline, token)
        cut = bisect.bisect_right(self.ended, now - longest)
        if cut:
            del self.ended[:cut]
            del self.tokens[:cut]

    def count_since(self, since: float) -> int:
        return len(self.ended) - bisect.bisect_right(self.ended, since)

    def room_at(self, now: float, rate: Any) -> float:
        """When ``rate`` has room again (``now`` or earlier: it has room)."""
        if self.count_since(now - rate.per) < rate.calls:
            return now
        return float(self.ended[-rate.calls] + rate.per)


class MemoryStore:
    """Thread-safe logs in this process. ``clock`` (any seconds that only go forward) is
    replaceable, so tests check the rules without waiting."""

    shared = False
    url = "memory://"

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._lock = threading.Lock()
        self._logs: dict[str, _Log] = {}
        self._next_sweep = 0.0

    def _log(self, key: str) -> _Log:
        log = self._logs.get(key)
        if log is None:
            log = self._logs[key] = _Log()
        return log

    def _sweep(self, now: float) -> None:
        if now < self._next_sweep:
            return
        self._next_sweep = now + _SWEEP_EVERY
        for key in [k for k, log in self._logs.items() if log.expires <= now and not log.flight]:
            del self._logs[key]

    def reserve(self, keys: Sequence[str], rates: Sequence[Any], token: str) -> list[float | None]:
        """Per key, on its own: count ``token`` now if every rate has room (None), else the
        seconds until they all will."""
        longest = max(r.per for r in rates)
        out: list[float | None] = []
        with self._lock:
            now = self.clock()
            self._sweep(now)
            for key in keys:
                log = self._log(key)
                log.prune(now, longest)
                retry = max(log.room_at(now, r) for r in rates)
                if retry > now:
                    out.append(retry - now)
                    continue
                log.add(now, token)
                log.expires = max(log.expires, now + longest)
                out.append(None)
        return out

    def release(self, keys: Sequence[str], token: str) -> None:
        """Take back what ``reserve`` counted for ``token``."""
        with self._lock:
            for key in keys:
                log = self._logs.get(key)
                if log is not None:
                    log.drop(token)

    def acquire(self, keys: Sequence[str], rates: Sequence[Any], token: str, hold: float = 0.0) -> float:
        """One call counted in every key (``rates[i]`` for ``keys[i]``) if all have room: 0.0;
        else the seconds to wait before trying again, and nothing is counted.

        ``hold`` > 0: the call is in flight until :meth:`settle` (at most ``hold`` seconds) and is
        counted from then; meanwhile no other call of these keys starts (one at a time).
        """
        with self._lock:
            now = self.clock()
            self._sweep(now)
            wait = 0.0
            logs = [self._log(k) for k in keys]
            for log, rate in zip(logs, rates):
                log.prune(now, rate.per)
                if hold and log.flight:
                    wait = max(wait, min(BUSY_POLL, min(log.flight.values()) - now))
                wait = max(wait, log.room_at(now, rate) - now)
            if wait > 0:
                return wait
            for log, rate in zip(logs, rates):
                if hold:
                    log.flight[token] = now + hold
                else:
                    log.add(now, token)
                log.expires = max(log.expires, now + hold + rate.per)
            return 0.0

    def settle(self, keys: Sequence[str], rates: Sequence[Any], token: str) -> None:
        """The held call ``token`` ended now: count it from now."""
        with self._lock:
            now = self.clock()
            for key, rate in zip(keys, rates):
                log = self._log(key)
                log.flight.pop(token, None)
                log.drop(token)  # counted at its deadline already
                log.add(now, token)
                log.expires = max(log.expires, now + rate.per)

    def close(self) -> None:
        pass
