"""The limits store shared by processes and hosts: ``[limits] store = "redis://host:6379/0"``.

The same moving-window logs as ``memory_store.py``, as Redis sorted sets (member: a call's token,
score: its time in milliseconds), and the same rules as Lua scripts, so that one round trip checks
and counts a whole send's phones atomically. Times come from the Redis server's clock (``TIME``),
so hosts whose clocks disagree still share one window.

Why not the ``limits`` library's Redis strategies: they check one key against one rate per call
(a send to 1000 phones with three rates each would be 3000 round trips, and a phone could be
counted in its minute window yet refused by its hour window); they cannot take back a counted
call (a phone refused by the vendor's rate before it left must not use its quota); and they have
no notion of a call in flight (a vendor counts a query when it arrives, so the next one must wait
for the answer). The scripts below are those three things, on redis-py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ...errors import ConfigError, LimitsUnavailable
from ...log import safe_url
from .memory_store import BUSY_POLL

_NOW = """
if redis.replicate_commands then redis.replicate_commands() end  -- Redis < 5: TIME before writes
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: one log per phone. ARGV: token, then (calls, per_ms) for every rate.
# Returns, per key, 0 (counted now) or the milliseconds until every rate has room.
_RESERVE = _NOW + """
local token = ARGV[1]
local rates, longest = {}, 0
for i = 2, #ARGV, 2 do
  local calls, per = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  rates[#rates + 1] = {calls, per}
  if per > longest then longest = per end
end
local out = {}
for k, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - longest)
  local room = now
  for _, r in ipairs(rates) do
    if redis.call('ZCOUNT', key, '(' .. (now - r[2]), '+inf') >= r[1] then
      local e = redis.call('ZREVRANGE', key, r[1] - 1, r[1] - 1, 'WITHSCORES')
      room = math.max(room, tonumber(e[2]) + r[2])
    end
  end
  if room > now then
    out[k] = room - now
  else
    redis.call('ZADD', key, now, token)
    redis.call('PEXPIRE', key, longest)
    out[k] = 0
  end
end
return out
"""

# KEYS: for every budget its log, then its in-flight set. ARGV: token, hold_ms, busy_poll_ms, then
# (calls, per_ms) per budget. Returns 0 (counted in all) or the milliseconds to wait.
_ACQUIRE = _NOW + """
local token, hold, poll = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local n = #KEYS / 2
local wait = 0
for i = 1, n do
  local log, flight = KEYS[2 * i - 1], KEYS[2 * i]
  local calls, per = tonumber(ARGV[2 + 2 * i]), tonumber(ARGV[3 + 2 * i])
  -- a call still in flight past its hold: its caller died or hung; count it as ended then
  local dead = redis.call('ZRANGEBYSCORE', flight, '-inf', now, 'WITHSCORES')
  for j = 1, #dead, 2 do
    redis.call('ZADD', log, dead[j + 1], dead[j])
    redis.call('ZREM', flight, dead[j])
  end
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - per)
  if hold > 0 then
    local first = redis.call('ZRANGE', flight, 0, 0, 'WITHSCORES')
    if first[2] then wait = math.max(wait, math.min(poll, tonumber(first[2]) - now)) end
  end
  if redis.call('ZCARD', log) >= calls then
    local e = redis.call('ZREVRANGE', log, calls - 1, calls - 1, 'WITHSCORES')
    wait = math.max(wait, tonumber(e[2]) + per - now)
  end
end
if wait > 0 then return wait end
for i = 1, n do
  local log, flight = KEYS[2 * i - 1], KEYS[2 * i]
  local per = tonumber(ARGV[3 + 2 * i])
  if hold > 0 then
    redis.call('ZADD', flight, now + hold, token)
    redis.call('PEXPIRE', flight, hold + per)
  else
    redis.call('ZADD', log, now, token)
  end
  redis.call('PEXPIRE', log, hold + per)
end
return 0
"""

# KEYS: as for _ACQUIRE. ARGV: token, then per_ms per budget. The held call ended now.
_SETTLE = _NOW + """
for i = 1, #KEYS / 2 do
  local log, flight = KEYS[2 * i - 1], KEYS[2 * i]
  redis.call('ZREM', flight, ARGV[1])
  redis.call('ZADD', log, now, ARGV[1])
  redis.call('PEXPIRE', log, tonumber(ARGV[1 + i]))
end
return 0
"""


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class RedisStore:
    """Logs in Redis, one round trip per operation. Every Redis failure is a LimitsUnavailable."""

    shared = True

    def __init__(self, url: str, *, timeout: float = 2.0):
        try:
            import redis
        except ImportError:
            raise ConfigError(f"[limits] store = {safe_url(url)!r} needs the redis package: "
                              "pip install 'smsgate[limits]'", field="store") from None
        self.url = safe_url(url)
        self._errors = (redis.RedisError,)
        try:
            self.client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout,
                                               health_check_interval=30)
        except ValueError as exc:
            raise ConfigError(f"[limits] store: {exc}", field="store") from None
        self._reserve = self.client.register_script(_RESERVE)
        self._acquire = self.client.register_script(_ACQUIRE)
        self._settle = self.client.register_script(_SETTLE)

    def _run(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except self._errors as exc:
            raise LimitsUnavailable(f"the limits store {self.url} failed: {type(exc).__name__}: {exc}") from None

    @staticmethod
    def _keys(keys: Sequence[str]) -> list[str]:
        return [k for key in keys for k in (key, key + ":flight")]

    def reserve(self, keys: Sequence[str], rates: Sequence[Any], token: str) -> list[float | None]:
        args: list[Any] = [token]
        for r in rates:
            args += [int(r.calls), _ms(r.per)]
        answers = self._run(self._reserve, keys=list(keys), args=args)
        return [None if int(a) == 0 else int(a) / 1000.0 for a in answers]

    def release(self, keys: Sequence[str], token: str) -> None:
        def run() -> None:
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.zrem(key, token)
            pipe.execute()

        self._run(run)

    def acquire(self, keys: Sequence[str], rates: Sequence[Any], token: str, hold: float = 0.0) -> float:
        args: list[Any] = [token, _ms(hold) if hold else 0, _ms(BUSY_POLL)]
        for r in rates:
            args += [int(r.calls), _ms(r.per)]
        return int(self._run(self._acquire, keys=self._keys(keys), args=args)) / 1000.0

    def settle(self, keys: Sequence[str], rates: Sequence[Any], token: str) -> None:
        self._run(self._settle, keys=self._keys(keys), args=[token, *(_ms(r.per) for r in rates)])

    def close(self) -> None:
        self.client.close()
