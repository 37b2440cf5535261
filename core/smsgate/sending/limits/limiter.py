"""``Limits``: the three limits of the sending service over one store.

* **Per-phone quotas** (:meth:`Limits.hold_phones`, :meth:`Limits.settle`): before a send, every
  recipient is counted in its quota in one round trip; a phone over its quota is ``rejected``
  ``RATE_LIMITED``, ``not_sent``, with the time it may be sent again. After the send, phones whose
  request never left this process are taken back: only phones handed to a vendor use quota.
* **Vendor request rate** (:meth:`Limits.request_gate`): each send request takes a slot of its
  provider's ``rate`` ("300/second"), waiting up to ``rate_wait`` seconds; the recipients of a
  request that got none are ``rejected`` ``RATE_LIMITED``, ``not_sent``.
* **Vendor call budgets** (:meth:`Limits.spend`): a query (pull, balance) waits until every budget
  it spends from has room, runs alone in those budgets, and is counted from its answer.

With a shared store (Redis) every process and host counts in the same windows. When the store
cannot be reached, the per-phone quotas fail closed (:class:`LimitsUnavailable`, nothing sent)
unless ``fail_open``; the vendor rate and budgets fall back to this process's own counts, since
they protect the vendor's limits rather than the recipients.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs

from ...errors import LimitsUnavailable, RateLimited
from ...log import get_logger
from ...models import CHINA_TZ, Outcome, OutcomePart, Reason, RecipientResult, part_phones
from ...phones import mask_phone
from .memory_store import MemoryStore
from .rates import Rate
from .settings import LimitsSettings

log = get_logger("smsgate.limits")

RATE_LIMITED = "RATE_LIMITED"
#: codes the core gives to recipients whose request never left this process: their quota is given
#: back (CIRCUIT_OPEN: a route skipped every provider, routing/route.py)
NEVER_LEFT = frozenset({RATE_LIMITED, "CONNECT", "PLUGIN", "INVALID", "LEDGER", "CIRCUIT_OPEN"})
DEFAULT_SCOPE = "*"
_STORE_LOG_EVERY = 30.0  # seconds between two warnings that the shared store is down


def open_store(url: str, clock: Callable[[], float] = time.monotonic) -> Any:
    """The store a ``[limits] store`` URL names."""
    if url.startswith("memory://"):
        return MemoryStore(clock)
    from .redis_store import RedisStore

    return RedisStore(url)


def _when(seconds: float) -> tuple[float, str]:
    at = time.time() + seconds
    text = dt.datetime.fromtimestamp(round(at + 0.4999), CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")
    return at, text


@attrs.frozen
class PhoneHold:
    """What :meth:`Limits.hold_phones` counted: ``held`` phone -> key; ``refused`` phone -> Reason."""

    token: str = ""
    held: dict[str, str] = attrs.field(factory=dict)
    refused: dict[str, Reason] = attrs.field(factory=dict)

    def refused_results(self) -> list[RecipientResult]:
        return [RecipientResult(phone=p, outcome=Outcome.REJECTED, reason=r) for p, r in self.refused.items()]


def _never_left(attempt: OutcomePart) -> bool:
    return attempt.outcome is Outcome.REJECTED and attempt.reason is not None and attempt.reason.code in NEVER_LEFT


class Limits:
    """Per-phone quotas, vendor request rates and vendor call budgets over one store.

    ``clock`` and ``sleep`` serve the memory store and every wait (tests replace them to check the
    rules without waiting); a Redis store keeps its own clock (the server's).
    """

    def __init__(self, settings: LimitsSettings | None = None, *, store: Any = None,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self.settings = settings or LimitsSettings()
        self.clock = clock
        self.sleep = sleep
        self._store = store
        self._local: MemoryStore | None = None
        self._open_lock = threading.Lock()
        self._last_warning = -_STORE_LOG_EVERY

    # -- the store ---------------------------------------------------------------------------
    @property
    def store(self) -> Any:
        """The configured store, opened on first use (connecting to Redis happens per call)."""
        if self._store is None:
            with self._open_lock:
                if self._store is None:
                    self._store = open_store(self.settings.store, self.clock)
        return self._store

    def _fallback(self, exc: LimitsUnavailable, what: str) -> MemoryStore:
        """This process's own counts, while the shared store is down (vendor limits only)."""
        now = time.monotonic()
        if now - self._last_warning >= _STORE_LOG_EVERY:
            self._last_warning = now
            log.warning("smsgate.limits.store_down", limit=what, error=str(exc),
                        hint="counting in this process only until the store answers again")
        with self._open_lock:
            if self._local is None:
                self._local = MemoryStore(self.clock)
        return self._local

    def _key(self, *parts: str) -> str:
        return self.settings.prefix + ":".join(parts)

    def close(self) -> None:
        if self._store is not None:
            self._store.close()

    # -- per-phone quotas --------------------------------------------------------------------
    @property
    def phone_quotas(self) -> bool:
        """Whether any send is counted in a per-phone quota (``[limits] per_phone``, a
        ``[templates.NAME]`` or a ``[routes.NAME]`` ``per_phone``); when not, the send flow skips
        the quota stage."""
        return self.settings.phone_quotas

    def phone_rates(self, scope: str | None, route: str | None = None) -> tuple[str, tuple[Rate, ...]]:
        """The quotas of a send in ``scope`` over ``route`` (a ``[templates.NAME]`` with
        ``per_phone``, else the ``[routes.NAME]`` one, else the ``[limits] per_phone`` default) and
        the name they are counted under."""
        if scope is not None and scope in self.settings.scopes:
            return f"t:{scope}", self.settings.scopes[scope]
        if route is not None and route in self.settings.routes:
            return f"r:{route}", self.settings.routes[route]
        return DEFAULT_SCOPE, self.settings.per_phone

    def _phone_key(self, scope: str, phone: str) -> str:
        # the store holds a digest, never the number itself
        return self._key("phone", scope, hashlib.blake2b(phone.encode(), digest_size=10).hexdigest())

    def hold_phones(self, phones: Sequence[str], scope: str | None = None, route: str | None = None) -> PhoneHold:
        """Count every phone in its quotas now, in one round trip; refuse those over one. A routed
        send is held once, whichever providers it then tries (``route``: the route's name)."""
        label, rates = self.phone_rates(scope, route)
        if not rates:
            return PhoneHold()
        token = os.urandom(8).hex()
        keys = [self._phone_key(label, p) for p in phones]
        try:
            waits = self.store.reserve(keys, rates, token)
        except LimitsUnavailable as exc:
            if not self.settings.fail_open:
                raise LimitsUnavailable(
                    f"per-phone quotas cannot be checked ({exc}); nothing was sent "
                    "([limits] fail_open = true sends without them while the store is down)") from None
            log.warning("smsgate.limits.fail_open", error=str(exc), recipients=len(phones),
                        hint="sending without per-phone quotas: [limits] fail_open = true")
            return PhoneHold()
        held, refused = {}, {}
        whose = {DEFAULT_SCOPE: "", f"r:{route}": f" for route {route!r}"}.get(label, f" for {scope!r}")
        quota = ", ".join(str(r) for r in rates) + whose
        for phone, key, wait in zip(phones, keys, waits):
            if wait is None:
                held[phone] = key
                continue
            at, text = _when(wait)
            refused[phone] = Reason(code=RATE_LIMITED, not_sent=True, retry_at=at,
                                    message=f"over its per-phone quota ({quota}); may be sent again at "
                                            f"{text} China time (in {max(1, round(wait))} s)")
        if refused:
            log.warning("smsgate.limits.phone_refused", scope=label, recipients=len(refused),
                        phones=[mask_phone(p) for p in list(refused)[:10]])
        return PhoneHold(token=token, held=held, refused=refused)

    def settle(self, hold: PhoneHold, results: Sequence[OutcomePart]) -> None:
        """Give back the quota of phones no request of which left this process (for a routed send:
        none of its attempts at any provider). ``results``: a send's outcomes, per recipient or
        shared by a request's phones."""
        held = hold.held
        if not held:
            return
        self._release(hold, [held[p] for r in results
                             if _never_left(r) and all(map(_never_left, r.earlier))
                             for p in part_phones(r) if p in held])

    def release(self, hold: PhoneHold) -> None:
        """Give back the quota of every phone of ``hold``: the send sent nothing (a replay)."""
        self._release(hold, list(hold.held.values()))

    def _release(self, hold: PhoneHold, keys: list[str]) -> None:
        if not keys:
            return
        try:
            self.store.release(keys, hold.token)
        except LimitsUnavailable as exc:  # the phones keep their count: the safe side
            log.warning("smsgate.limits.release_failed", recipients=len(keys), error=str(exc))

    # -- vendor request rate -----------------------------------------------------------------
    def take_slot(self, key: str, rate: Rate, deadline: float) -> bool:
        """A slot of ``rate`` in ``key``, waiting until ``deadline`` (this Limits' clock) at most."""
        token = os.urandom(8).hex()
        store = self.store
        while True:
            try:
                wait = store.acquire([key], [rate], token)
            except LimitsUnavailable as exc:
                store = self._fallback(exc, "rate")
                continue
            if wait <= 0:
                return True
            # room comes no sooner than ``wait``: give up now rather than sleep in vain
            if self.clock() + wait > deadline:
                return False
            self.sleep(wait + random.uniform(0, 0.002))  # spread the waiters a little

    def request_gate(self, provider: str, rate: Rate | None) -> Callable[[int, Any], Reason | None] | None:
        """For one send: a function each request calls before it leaves (None: no rate)."""
        if rate is None:
            return None
        wait = self.settings.rate_wait
        deadline = self.clock() + wait
        key = self._key("rate", provider)
        reason = Reason(code=RATE_LIMITED, not_sent=True,
                        message=f"provider {provider!r} allows {rate} requests and had no room within "
                                f"{wait:g} s ([limits] rate_wait)")

        def gate(index: int, batch: Any) -> Reason | None:
            return None if self.take_slot(key, rate, deadline) else reason

        return gate

    # -- vendor call budgets -----------------------------------------------------------------
    @contextlib.contextmanager
    def spend(self, account: str, budgets: Sequence[Any], *, hold: float = 60.0,
              **log_fields: Any) -> Iterator[None]:
        """Wait until every one of ``budgets`` (``.name``, ``.calls``, ``.per``) has room for a
        call of ``account``, hold them while it runs (at most ``hold`` seconds, in case this
        process dies), and count it from its end. Raises RateLimited (nothing sent) when room does
        not come within ``[limits] query_wait`` seconds."""
        if not budgets:
            yield
            return
        keys = [self._key("budget", account, b.name) for b in budgets]
        token = os.urandom(8).hex()
        deadline = self.clock() + self.settings.query_wait
        store = self.store
        logged = False
        while True:
            try:
                wait = store.acquire(keys, budgets, token, hold)
            except LimitsUnavailable as exc:
                store = self._fallback(exc, "budget")
                continue
            if wait <= 0:
                break
            if self.clock() + wait > deadline:
                raise RateLimited(f"provider {account!r}: no room in its call budget within "
                                  f"{self.settings.query_wait:g} s ([limits] query_wait)", code=RATE_LIMITED,
                                  retry_after=wait, provider=account)
            if not logged:
                logged = True
                log.info("smsgate.budget.waiting", provider=account, seconds=round(wait, 3),
                         budgets=[b.name for b in budgets], **log_fields)
            self.sleep(wait)
        try:
            yield
        finally:
            try:
                store.settle(keys, budgets, token)
            except LimitsUnavailable as exc:  # the hold runs out and counts it then
                log.warning("smsgate.limits.settle_failed", provider=account, error=str(exc))
