"""Pulling reports and inbound SMS from vendors that offer pulls, into the same spool as pushes.

cmas offers only pulls (reports and inbound, one call per 5 s for both); opass offers a report
pull beside its pushes. The :class:`Poller` keeps pulling each configured provider's pull
operations, never faster than the vendor's call budgets allow (``Capabilities.budgets``; the
Gateway enforces them too), and stores what it gets in the spool with ``source="pull"``. Dedup keys are the same as for
pushes, so a report that arrives both ways is handled once.

A vendor hands each pulled item out once, so nothing pulled may be dropped: when the spool refuses
a batch, the poller stores what it can item by item and keeps every item it could not store aside
in a dead-letter file (``<spool>.dead-letter.jsonl``, one JSON line per item, logged as
``smsgate.poll.dead_letter``); if even that file cannot be written the items stay in memory and are
tried again before every later pull. Neither :meth:`Poller.pull` nor :meth:`Poller.run` raises for it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from ..errors import ProviderError, RateLimited, TransportError
from ..log import get_logger
from ..models import Operation, PullQuery
from .store import Spool, event_kind, plain_event

log = get_logger("smsgate.poller")

PULL_OPERATIONS = (Operation.PULL_REPORTS, Operation.PULL_INBOUND)
#: the pause after an empty pull when neither the caller nor the vendor chose one
DEFAULT_INTERVAL = 10.0


@attrs.define
class PullOutcome:
    provider: str
    operation: Operation
    events: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_letter: int = 0  #: items that could not be stored, kept aside (see the module's text)
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

    ``interval`` is the pause between two pulls of the same target when the vendor had nothing:
    by default the vendor's suggestion (``Capabilities.poll_interval``, e.g. opass's once a
    minute), else 10 s; never below what its budgets allow. After a full answer the next pull
    follows as soon as the budgets allow. Errors are logged and backed off (doubling up to ``max_backoff``); they never
    stop the loop.
    """

    def __init__(self, gateway: Any, spool: Spool, *, providers: Iterable[str] | None = None,
                 interval: float | None = None, max_backoff: float = 300.0,
                 query: Callable[[str], PullQuery] | None = None, dead_letter: str | os.PathLike[str] | None = None):
        self.gateway = gateway
        self.spool = spool
        self._dead_letter = os.fspath(dead_letter) if dead_letter else None
        self._unsaved: list[tuple[Any, str]] = []  # (event, error) neither stored nor dead-lettered yet
        self._unsaved_lock = threading.Lock()
        self.targets = pull_targets(gateway, providers)
        self.interval = interval
        self.max_backoff = max_backoff
        self.query = query or (lambda name: PullQuery())
        self._stop = threading.Event()
        self._next: dict[tuple[str, Operation], float] = {}
        self._failures: dict[tuple[str, Operation], int] = {}
        self._thread: threading.Thread | None = None

    @property
    def dead_letter(self) -> str:
        """The file that keeps pulled items the spool refused (default ``<spool>.dead-letter.jsonl``)."""
        return self._dead_letter or f"{self.spool.path}.dead-letter.jsonl"

    def min_interval(self, name: str, op: Operation) -> float:
        """The least pause between pulls of one target that keeps within the vendor's budgets,
        counting this poller's other pulls that spend from the same budget (cmas's two pulls
        share one call per 5 s, so each comes every 10 s)."""
        caps = self.gateway.provider(name)[0].spec.capabilities
        floor = 0.0
        for budget in caps.budgets_for(op):
            sharing = sum(1 for n, o in self.targets if n == name and o in budget.operations)
            floor = max(floor, budget.spacing * max(1, sharing))
        return floor

    def longest_wait(self, name: str, op: Operation) -> float:
        """The longest a pull can wait for room in its budgets: the longest window."""
        caps = self.gateway.provider(name)[0].spec.capabilities
        return max((b.per for b in caps.budgets_for(op)), default=0.0)

    def idle_interval(self, name: str, op: Operation) -> float:
        """The pause after a pull that brought nothing (see the class docstring)."""
        if self.interval is not None:
            chosen = self.interval
        else:
            suggested = self.gateway.provider(name)[0].spec.capabilities.poll_interval
            chosen = DEFAULT_INTERVAL if suggested is None else suggested
        return max(self.min_interval(name, op), chosen)

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
            self._store(events, outcome)
        log.info("smsgate.poll.pulled", provider=name, operation=op.value, events=outcome.events,
                 stored=outcome.stored, duplicates=outcome.duplicates, dead_letter=outcome.dead_letter)
        return outcome

    def _store(self, events: list[Any], outcome: PullOutcome) -> None:
        """Store ``events``; what cannot be stored goes to the dead-letter file. Never raises."""
        with self._unsaved_lock:
            retry, self._unsaved = self._unsaved, []
        if retry:  # kept in memory by an earlier pull: try the spool, then the file, again
            self._keep_aside(self._put_each([e for e, _ in retry], outcome, count=False), outcome, count=False)
        try:
            put = self.spool.put(events, source="pull")
        except Exception:  # the batch was refused as a whole: find the items that can be stored
            failed = self._put_each(events, outcome)
            self._keep_aside(failed, outcome)
            return
        outcome.stored += put.stored
        outcome.duplicates += put.duplicates

    def _put_each(self, events: list[Any], outcome: PullOutcome, count: bool = True) -> list[tuple[Any, str]]:
        failed = []
        for event in events:
            try:
                put = self.spool.put([event], source="pull")
            except Exception as exc:
                failed.append((event, f"{type(exc).__name__}: {exc}"))
                continue
            if count:
                outcome.stored += put.stored
                outcome.duplicates += put.duplicates
        return failed

    def _keep_aside(self, failed: list[tuple[Any, str]], outcome: PullOutcome, count: bool = True) -> None:
        if not failed:
            return
        if count:
            outcome.dead_letter += len(failed)
            outcome.error = f"SpoolError: {len(failed)} pulled item(s) could not be stored; kept in {self.dead_letter}"
        try:
            from ..wire import json_text

            lines = []
            for event, error in failed:
                kind = event_kind(event)
                lines.append(json_text({"provider": event.provider, "kind": kind, "error": error,
                                        "failed_at": time.time(),
                                        "event": plain_event(event, kind)}, default=str) + "\n")
            with open(self.dead_letter, "ab") as fh:
                fh.write("".join(lines).encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
        except Exception as exc:  # not even the file: keep them and try again before the next pull
            with self._unsaved_lock:
                self._unsaved.extend(failed)
            log.error("smsgate.poll.unsaved", items=len(failed), dead_letter=self.dead_letter,
                      error=f"{type(exc).__name__}: {exc}", hint="kept in memory, tried again before every pull")
            return
        log.error("smsgate.poll.dead_letter", items=len(failed), dead_letter=self.dead_letter,
                  error=failed[0][1][:300])

    def poll_once(self) -> list[PullOutcome]:
        """Pull each target once (waiting out rate limits as needed)."""
        return [self.pull(name, op) for name, op in self.targets]

    def _delay_after(self, key: tuple[str, Operation], outcome: PullOutcome, is_rate_limit: bool) -> float:
        floor = self.min_interval(*key)
        if outcome.error:
            n = self._failures[key] = self._failures.get(key, 0) + 1
            return float(min(self.max_backoff,
                             self.idle_interval(*key) * (2 ** (n - 1) if not is_rate_limit else 2 ** n)))
        self._failures.pop(key, None)
        return floor if outcome.events else self.idle_interval(*key)

    def run(self, on_pull: Callable[[PullOutcome], None] | None = None) -> None:
        """Poll until :meth:`stop`. Nothing stops the loop: errors are logged and backed off, and
        pulled items the spool refuses are kept aside (see the module's text)."""
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
        """How long a pull already in flight may still take: the longest wait for a vendor's
        budget (a whole window) plus its connect attempts and read timeout, plus ``margin``."""
        longest = 0.0
        for name, op in self.targets:
            try:
                _, config = self.gateway.provider(name)
                connect = float(getattr(config, "connect_timeout", 5.0)) * (1 + int(getattr(config, "connect_retries", 0)))
                read = float(getattr(config, "read_timeout", 15.0))
            except Exception:
                connect, read = 15.0, 15.0
            longest = max(longest, self.longest_wait(name, op) + connect + read)
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
        except Exception as exc:  # not expected (run survives every pull): logged, not a traceback
            log.error("smsgate.poll.stopped", error=f"{type(exc).__name__}: {exc}")

    def start_thread(self) -> threading.Thread:
        """Run :meth:`run` in a daemon thread. Stop it with :meth:`stop` then :meth:`join` before
        closing the spool, so a pull in flight still stores what the vendor handed out."""
        t = threading.Thread(target=self._run_thread, name="smsgate-poller", daemon=True)
        self._thread = t
        t.start()
        return t
