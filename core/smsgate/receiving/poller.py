"""Pulling reports and inbound SMS from vendors that offer pulls, into the same spool as pushes.

cmas offers only pulls (reports and inbound, at most one call per 5 s each); opass offers a report
pull beside its pushes. The :class:`Poller` keeps pulling each configured provider's pull
operations, never faster than the vendor's ``Capabilities.min_interval`` (the Gateway enforces it
too), and stores what it gets in the spool with ``source="pull"``. Dedup keys are the same as for
pushes, so a report that arrives both ways is handled once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from ..errors import ProviderError, RateLimited, TransportError
from ..log import get_logger
from ..models import Operation, PullQuery
from .store import Spool, SpoolError

log = get_logger("smsgate.poller")

PULL_OPERATIONS = (Operation.PULL_REPORTS, Operation.PULL_INBOUND)


@attrs.define
class PullOutcome:
    provider: str
    operation: Operation
    events: int = 0
    stored: int = 0
    duplicates: int = 0
    error: str | None = None


def pull_targets(gateway: Any, providers: Iterable[str] | None = None) -> list[tuple[str, Operation]]:
    """``(provider, operation)`` pairs to poll: configured providers whose plugin offers pulls."""
    names = list(providers) if providers else gateway.provider_names()
    targets = []
    for name in names:
        entry, _ = gateway.provider(name)
        for op in PULL_OPERATIONS:
            if op in entry.spec.capabilities.operations:
                targets.append((name, op))
    return targets


class Poller:
    """Pull every target in turn, forever (:meth:`run`) or once (:meth:`poll_once`).

    ``interval`` is the pause between two pulls of the same target when the vendor had nothing
    (at least its ``min_interval``); after a full answer the next pull follows as soon as the
    vendor allows. Errors are logged and backed off (doubling up to ``max_backoff``); they never
    stop the loop.
    """

    def __init__(self, gateway: Any, spool: Spool, *, providers: Iterable[str] | None = None,
                 interval: float = 10.0, max_backoff: float = 300.0,
                 query: Callable[[str], PullQuery] | None = None):
        self.gateway = gateway
        self.spool = spool
        self.targets = pull_targets(gateway, providers)
        self.interval = interval
        self.max_backoff = max_backoff
        self.query = query or (lambda name: PullQuery())
        self._stop = threading.Event()
        self._next: dict[tuple[str, Operation], float] = {}
        self._failures: dict[tuple[str, Operation], int] = {}
        self._thread: threading.Thread | None = None

    def min_interval(self, name: str, op: Operation) -> float:
        entry, _ = self.gateway.provider(name)
        return float(entry.spec.capabilities.min_interval.get(op, 0.0))

    def pull(self, name: str, op: Operation) -> PullOutcome:
        """One pull of one target; events go to the spool before this returns."""
        outcome = PullOutcome(name, op)
        try:
            if op is Operation.PULL_REPORTS:
                events = self.gateway.pull_reports(name, self.query(name))
            else:
                events = self.gateway.pull_inbound(name)
        except (ProviderError, TransportError) as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
            log.warning("smsgate.poll.failed", provider=name, operation=op.value, error=outcome.error)
            return outcome
        outcome.events = len(events)
        if events:
            put = self.spool.put(events, source="pull")  # SpoolError propagates: the events are lost otherwise
            outcome.stored, outcome.duplicates = put.stored, put.duplicates
        log.info("smsgate.poll.pulled", provider=name, operation=op.value, events=outcome.events,
                 stored=outcome.stored, duplicates=outcome.duplicates)
        return outcome

    def poll_once(self) -> list[PullOutcome]:
        """Pull each target once (waiting out rate limits as needed)."""
        return [self.pull(name, op) for name, op in self.targets]

    def _delay_after(self, key: tuple[str, Operation], outcome: PullOutcome, is_rate_limit: bool) -> float:
        floor = self.min_interval(*key)
        if outcome.error:
            n = self._failures[key] = self._failures.get(key, 0) + 1
            return float(min(self.max_backoff,
                             max(floor, self.interval) * (2 ** (n - 1) if not is_rate_limit else 2 ** n)))
        self._failures.pop(key, None)
        return floor if outcome.events else max(floor, self.interval)

    def run(self, on_pull: Callable[[PullOutcome], None] | None = None) -> None:
        """Poll until :meth:`stop`. A SpoolError stops the loop (pulled reports would be lost)."""
        if not self.targets:
            log.warning("smsgate.poll.nothing", hint="no configured provider offers pulls")
            return
        while not self._stop.is_set():
            now = time.monotonic()
            key = min(self.targets, key=lambda k: self._next.get(k, 0.0))
            due = self._next.get(key, 0.0)
            if due > now:
                if self._stop.wait(min(due - now, 1.0)):
                    break
                continue
            try:
                outcome = self.pull(*key)
            except SpoolError:
                raise
            except Exception as exc:  # a plugin bug: log, back off, keep the others going
                outcome = PullOutcome(key[0], key[1], error=f"{type(exc).__name__}: {exc}")
                log.error("smsgate.poll.error", provider=key[0], operation=key[1].value, error=outcome.error)
            rate_limited = bool(outcome.error and outcome.error.startswith(RateLimited.__name__))
            self._next[key] = time.monotonic() + self._delay_after(key, outcome, rate_limited)
            if on_pull:
                on_pull(outcome)

    def stop(self) -> None:
        self._stop.set()

    def shutdown_timeout(self, margin: float = 5.0) -> float:
        """How long a pull already in flight may still take: the longest wait for a vendor's rate
        limit plus its connect attempts and read timeout, plus ``margin``."""
        longest = 0.0
        for name, op in self.targets:
            try:
                _, config = self.gateway.provider(name)
                connect = float(getattr(config, "connect_timeout", 5.0)) * (1 + int(getattr(config, "connect_retries", 0)))
                read = float(getattr(config, "read_timeout", 15.0))
            except Exception:
                connect, read = 15.0, 15.0
            longest = max(longest, self.min_interval(name, op) + connect + read)
        return longest + margin

    def join(self, timeout: float | None = None) -> bool:
        """After :meth:`stop`: wait for the thread of :meth:`start_thread` to finish its pull in
        flight (default :meth:`shutdown_timeout`). True when it finished."""
        t = self._thread
        if t is None:
            return True
        t.join(self.shutdown_timeout() if timeout is None else timeout)
        if t.is_alive():
            log.warning("smsgate.poll.still_running", hint="a pull did not finish before shutdown")
            return False
        return True

    def _run_thread(self) -> None:
        try:
            self.run()
        except SpoolError as exc:  # logged, not a traceback; what was pulled is at the vendor no more
            log.error("smsgate.poll.spool_failed", error=str(exc), hint="polling stopped: the spool cannot be written")

    def start_thread(self) -> threading.Thread:
        """Run :meth:`run` in a daemon thread. Stop it with :meth:`stop` then :meth:`join` before
        closing the spool, so a pull in flight still stores what the vendor handed out."""
        t = threading.Thread(target=self._run_thread, name="smsgate-poller", daemon=True)
        self._thread = t
        t.start()
        return t
