"""Circuit breakers: a provider that keeps failing is skipped by routes for a while.

Per provider (shared by every route that lists it): ``failures`` consecutive failed attempts
(connection never made, transport failures, the vendor refusing a whole attempt as not sent) open
its breaker; routes then skip it for ``cooldown`` seconds; after that one send is let through as a
trial (others keep skipping it meanwhile): a success closes the breaker, a failure opens it again.
Each route passes its own ``breaker_failures`` / ``breaker_cooldown``.

Skipping a provider never risks a double send, so the breaker fails open: if the shared store is
down, this process's own state is used until it answers again.

State lives in this process (:class:`MemoryBreakerState`) or, when ``[limits] store`` is a Redis
URL, in Redis for every process and host (:class:`RedisBreakerState`, one round trip per check).
Times are wall-clock seconds from :attr:`Breakers.clock` (tests replace it); hosts sharing Redis
need clocks within a fraction of the cool-down of each other.

:meth:`Breakers.status` reads each provider's breaker without changing it (the metrics plugin's
``smsgate_circuit_breaker_state`` gauge): closed, open (skipped until the cool-down ends) or
half-open (the cool-down is over: the next send, or the one under way, is the trial).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from ...errors import LimitsUnavailable
from ...log import get_logger

log = get_logger("smsgate.routing")

CLOSED, TRIAL = "closed", "trial"  # what allow() lets through
OPENED, RECLOSED = "opened", "closed"  # what record() changed
OPEN, HALF_OPEN = "open", "half_open"  # what status() reads (besides CLOSED)
STATES = (CLOSED, OPEN, HALF_OPEN)
_KEEP = 24 * 3600.0  # seconds a provider's state outlives its last change
_STORE_LOG_EVERY = 30.0


@attrs.define
class _State:
    failures: int = 0
    open_until: float | None = None
    trial_until: float | None = None


class MemoryBreakerState:
    """Breakers of this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}

    def allow(self, key: str, now: float, hold: float) -> str | None:
        with self._lock:
            state = self._states.get(key)
            if state is None or state.open_until is None:
                return CLOSED
            if now < state.open_until or (state.trial_until is not None and now < state.trial_until):
                return None
            state.trial_until = now + hold  # this send is the one trial
            return TRIAL

    def record(self, key: str, verdict: bool | None, now: float, failures: int, cooldown: float,
               trial: bool) -> str | None:
        with self._lock:
            state = self._states.get(key)
            if verdict is True:
                self._states.pop(key, None)
                return RECLOSED if state is not None and state.open_until is not None else None
            if state is None:
                if verdict is None:
                    return None
                state = self._states[key] = _State()
            if verdict is None:
                if trial:
                    state.trial_until = None  # the trial said nothing: the next send is the trial
                return None
            state.failures += 1
            if trial or state.failures >= failures:
                state.open_until, state.trial_until = now + cooldown, None
                return OPENED
            return None

    def peek(self, keys: Sequence[str]) -> list[tuple[int, float | None]]:
        """Each key's consecutive failures and the time its breaker is open until (None: closed)."""
        with self._lock:
            states = [self._states.get(key) for key in keys]
            return [(0, None) if s is None else (s.failures, s.open_until) for s in states]

    def close(self) -> None:
        pass


# KEYS[1]: the provider's hash (f: failures, o: open until, t: trial until; milliseconds).
# ARGV: now, hold. Returns 1 closed, 2 the trial, 0 skip.
_ALLOW = """
local now, hold = tonumber(ARGV[1]), tonumber(ARGV[2])
local o = tonumber(redis.call('HGET', KEYS[1], 'o') or '0')
if o == 0 then return 1 end
if now < o then return 0 end
local t = tonumber(redis.call('HGET', KEYS[1], 't') or '0')
if now < t then return 0 end
redis.call('HSET', KEYS[1], 't', now + hold)
return 2
"""

# ARGV: verdict (1 success, 0 failure, -1 nothing), now, failures, cooldown, trial (1/0), keep.
# Returns 1 opened, 2 closed again, 0 no change.
_RECORD = """
local verdict, now, failures = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local cooldown, trial, keep = tonumber(ARGV[4]), ARGV[5] == '1', tonumber(ARGV[6])
if verdict == 1 then
  local was = redis.call('HGET', KEYS[1], 'o')
  redis.call('DEL', KEYS[1])
  if was then return 2 end
  return 0
end
if verdict == -1 then
  if trial then redis.call('HDEL', KEYS[1], 't') end
  return 0
end
local f = redis.call('HINCRBY', KEYS[1], 'f', 1)
redis.call('PEXPIRE', KEYS[1], keep)
if trial or f >= failures then
  redis.call('HSET', KEYS[1], 'o', now + cooldown)
  redis.call('HDEL', KEYS[1], 't')
  return 1
end
return 0
"""


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


class RedisBreakerState:
    """Breakers shared by every process on the limits store's Redis (its client and key prefix)."""

    def __init__(self, store: Any):
        self.store = store
        self._allow = store.client.register_script(_ALLOW)
        self._record = store.client.register_script(_RECORD)

    def allow(self, key: str, now: float, hold: float) -> str | None:
        answer = int(self.store._run(self._allow, keys=[key], args=[_ms(now), _ms(hold)]))
        return {1: CLOSED, 2: TRIAL}.get(answer)

    def record(self, key: str, verdict: bool | None, now: float, failures: int, cooldown: float,
               trial: bool) -> str | None:
        code = {True: 1, False: 0, None: -1}[verdict]
        answer = int(self.store._run(self._record, keys=[key], args=[
            code, _ms(now), failures, _ms(cooldown), "1" if trial else "0", _ms(_KEEP)]))
        return {1: OPENED, 2: RECLOSED}.get(answer)

    def peek(self, keys: Sequence[str]) -> list[tuple[int, float | None]]:
        """As :meth:`MemoryBreakerState.peek`, every key in one round trip."""
        def run() -> list[Any]:
            pipe = self.store.client.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(key, "f", "o")
            return list(pipe.execute())

        return [(int(f or 0), float(o) / 1000.0 if o else None) for f, o in self.store._run(run)]

    def close(self) -> None:
        pass


@attrs.frozen
class BreakerStatus:
    """One provider's breaker, as :meth:`Breakers.status` read it."""

    provider: str  #: the configured provider name (breakers are per configured provider)
    #: "closed"; "open": routes skip the provider until ``open_until``; "half_open": the cool-down
    #: is over, the next send (or the one under way) is the trial that closes or reopens it
    state: str
    failures: int = 0  #: consecutive failed attempts since the breaker last closed
    open_until: float | None = None  #: when the cool-down ends (wall-clock seconds); None: closed


@attrs.frozen
class Pass:
    """What :meth:`Breakers.allow` let through: record its verdict with :meth:`Breakers.record`."""

    provider: str
    trial: bool


class Breakers:
    """The breakers of every provider, over ``state`` (memory, or Redis via ``limits``)."""

    def __init__(self, limits: Any = None, *, clock: Callable[[], float] = time.time):
        self.limits = limits
        self.clock = clock
        self._state: Any = None
        self._local = MemoryBreakerState()
        self._last_warning = -_STORE_LOG_EVERY
        self._lock = threading.Lock()

    @property
    def state(self) -> Any:
        """Redis when the limits store is shared, else this process's."""
        if self._state is None:
            with self._lock:
                if self._state is None:
                    shared = self.limits is not None and not self.limits.settings.store.startswith("memory:")
                    self._state = RedisBreakerState(self.limits.store) if shared else self._local
        return self._state

    def _key(self, provider: str) -> str:
        prefix = self.limits.settings.prefix if self.limits is not None else "smsgate:"
        return f"{prefix}breaker:{provider}"

    def _fallback(self, exc: Exception) -> MemoryBreakerState:
        now = time.monotonic()
        if now - self._last_warning >= _STORE_LOG_EVERY:
            self._last_warning = now
            log.warning("smsgate.breaker.store_down", error=str(exc),
                        hint="breakers kept in this process until the store answers again")
        return self._local

    def status(self, providers: Iterable[str]) -> dict[str, BreakerStatus]:
        """The breaker of each of ``providers``, read without changing it (one round trip on Redis;
        this process's state while the store does not answer, as for sending)."""
        names = list(providers)
        keys, now = [self._key(p) for p in names], self.clock()
        try:
            raw = self.state.peek(keys)
        except LimitsUnavailable as exc:
            raw = self._fallback(exc).peek(keys)
        out = {}
        for name, (failures, until) in zip(names, raw):
            state = CLOSED if until is None else OPEN if now < until else HALF_OPEN
            out[name] = BreakerStatus(provider=name, state=state, failures=failures, open_until=until)
        return out

    def allow(self, provider: str, cooldown: float) -> Pass | None:
        """A pass for ``provider``, or None: its breaker is open (skip it)."""
        key, now = self._key(provider), self.clock()
        try:
            answer = self.state.allow(key, now, cooldown)
        except LimitsUnavailable as exc:
            answer = self._fallback(exc).allow(key, now, cooldown)
        if answer is None:
            return None
        if answer == TRIAL:
            log.info("smsgate.breaker.trial", provider=provider)
        return Pass(provider=provider, trial=answer == TRIAL)

    def record(self, granted: Pass, verdict: bool | None, failures: int, cooldown: float) -> None:
        """The outcome of an attempt ``granted`` let through: True it worked, False it failed,
        None it says nothing of the provider (our own refusals, a replay)."""
        key, now = self._key(granted.provider), self.clock()
        try:
            change = self.state.record(key, verdict, now, failures, cooldown, granted.trial)
        except LimitsUnavailable as exc:
            change = self._fallback(exc).record(key, verdict, now, failures, cooldown, granted.trial)
        if change == OPENED:
            log.warning("smsgate.breaker.opened", provider=granted.provider, seconds=cooldown,
                        trial=granted.trial)
        elif change == RECLOSED:
            log.info("smsgate.breaker.closed", provider=granted.provider)
