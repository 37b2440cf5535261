"""Runs handlers over the spool in background threads: leases due rows, calls the handler, renews
the lease while it runs, and marks rows done or failed with exponential backoff."""

from __future__ import annotations

import functools

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from ..log import get_logger
from .store import KINDS, Spool, SpooledEvent, _owner_token

log = get_logger("smsgate.spool")

def backoff(base: float = 1.0, cap: float = 600.0) -> Callable[[int], float]:
    """Delay before the next attempt after ``attempts`` failures: base, 2*base, 4*base ... cap."""
    return lambda attempts: min(cap, base * (2 ** max(0, attempts - 1)))


@attrs.define(kw_only=True)
class Handler:
    """A registered handler. ``fn`` takes one model object (``batch=False``; ``envelope=True``
    passes the :class:`SpooledEvent` instead) or a list of :class:`SpooledEvent` (``batch=True``)."""

    name: str
    fn: Callable[..., Any]
    kinds: frozenset[str] = frozenset(KINDS)
    batch: bool = False
    envelope: bool = False
    batch_size: int = 100
    workers: int = 1
    max_attempts: int | None = None
    retry_base: float = 1.0
    retry_cap: float = 600.0


def _call_with_event(fn: Callable[..., Any], item: SpooledEvent) -> Any:
    return fn(item.event)


class _ClaimGate:
    """One handler's workers claim one at a time; ``drained_at`` is the spool generation (puts of
    this process) after which a claim found fewer rows than it asked for."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.drained_at = -1


class Dispatcher:
    """Runs handlers over the spool in background threads.

    Each handler gets ``workers`` threads that lease due rows, call it, and mark the rows done or
    failed. A handler's slowness or exceptions only ever affect its own rows.

    A put of this process wakes the workers at once; events stored by other processes sharing the
    spool are found within ``poll_interval``, or within ``watch_interval`` when that is set (a
    thread then looks at the newest event id that often: what a process that only runs handlers,
    ``smsgate work``, uses).
    """

    def __init__(self, spool: Spool, handlers: Iterable[Handler] = (), *, poll_interval: float = 1.0,
                 lease_seconds: float = 300.0, watch_interval: float | None = None):
        self.spool = spool
        self.handlers: dict[str, Handler] = {}
        self.poll_interval = poll_interval
        self.lease_seconds = lease_seconds
        self.watch_interval = watch_interval
        self.owner = _owner_token()
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._started = False
        self._lock = threading.Lock()
        self._gates: dict[str, _ClaimGate] = {}
        self.handled = 0
        self.failures = 0
        for h in handlers:
            self.add(h)

    def add(self, handler: Handler, since_id: int | None = None) -> None:
        if handler.name in self.handlers:
            raise ValueError(f"a handler named {handler.name!r} is already registered")
        self.spool.register_handler(handler.name, handler.kinds, since_id=since_id)
        self.handlers[handler.name] = handler
        if self._started:
            self._spawn(handler)

    def start(self) -> "Dispatcher":
        with self._lock:
            if self._started:
                return self
            self._started = True
            self._stop.clear()
        self.spool.release_dead_owners()
        for handler in self.handlers.values():
            self._spawn(handler)
        t = threading.Thread(target=self._janitor, name="smsgate-spool-janitor", daemon=True)
        t.start()
        self._threads.append(t)
        if self.watch_interval:
            t = threading.Thread(target=self._watch, args=(self.watch_interval,), name="smsgate-spool-watch",
                                 daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def alive(self) -> bool:
        """Started, and none of its threads has died."""
        with self._lock:
            return self._started and not self._stop.is_set() and all(t.is_alive() for t in self._threads)

    def _spawn(self, handler: Handler) -> None:
        for i in range(max(1, handler.workers)):
            t = threading.Thread(target=self._work, args=(handler,), name=f"smsgate-handler-{handler.name}-{i}",
                                 daemon=True)
            t.start()
            self._threads.append(t)

    def _janitor(self) -> None:
        while not self._stop.wait(max(5.0, self.poll_interval * 5)):
            try:
                self.spool.release_dead_owners()
            except Exception as exc:  # keep going; a locked spool now is fine later
                log.warning("smsgate.spool.janitor_failed", error=str(exc))

    def _watch(self, interval: float) -> None:
        """Wake the workers when another process stored events (its puts cannot notify ours)."""
        newest = -1
        while not self._stop.wait(interval):
            try:
                now = self.spool.last_id()
            except Exception:  # closed, or locked for longer than the busy timeout: look again later
                continue
            if now != newest:
                newest = now
                self.spool.notify()

    #: rows a one-event-per-call handler leases at once (so its other workers get work too)
    ITEM_CLAIM = 10

    def _gate(self, name: str) -> "_ClaimGate":
        with self._lock:
            gate = self._gates.get(name)
            if gate is None:
                gate = self._gates[name] = _ClaimGate()
            return gate

    def _work(self, handler: Handler) -> None:
        delay = backoff(handler.retry_base, handler.retry_cap)
        generation = self.spool.generation
        limit = handler.batch_size if handler.batch else max(1, min(handler.batch_size, self.ITEM_CLAIM))
        gate = self._gate(handler.name)
        look = True  # claim even if a sibling found nothing: rows may have become due since
        while not self._stop.is_set():
            claimed_at = self.spool.clock()
            with gate.lock:
                # A put wakes every worker of every handler; once one worker of this handler has
                # taken all that was due after that put, its siblings go back to sleep without a
                # claim (a transaction each) that would find nothing.
                now_generation = self.spool.generation
                if not look and gate.drained_at == now_generation:
                    batch = []
                else:
                    try:
                        batch = self.spool.claim(handler.name, self.owner, limit, self.lease_seconds)
                    except Exception as exc:
                        if self.spool.closed:
                            return
                        log.warning("smsgate.spool.claim_failed", handler=handler.name, error=str(exc))
                        batch = []
                    if len(batch) < limit:
                        gate.drained_at = now_generation
            if not batch:
                woken = self.spool.wait(generation, self.poll_interval)
                # woken by a put: claim unless a sibling drained it; timed out: claim (retries,
                # expired leases, another process's puts)
                look = woken == generation
                generation = woken
                continue
            look = True
            if handler.batch:
                self._run(handler, batch, lambda: handler.fn(batch), delay)
            else:
                self._run_items(handler, batch, claimed_at + self.lease_seconds, delay)

    def _run_items(self, handler: Handler, batch: list[SpooledEvent], held_until: float,
                   delay: Callable[[int], float]) -> None:
        """Call a one-event handler for each leased row in turn. Before each call, once half the
        lease is used up, renew it for the rows still waiting, so a slow handler's remaining rows
        are never claimed and run a second time by another worker; rows it no longer holds are
        skipped."""
        lost: set[int] = set()
        for n, item in enumerate(batch):
            if self._stop.is_set():
                return
            now = self.spool.clock()
            if held_until - now < self.lease_seconds / 2:
                rest = [i.id for i in batch[n:] if i.id not in lost]
                try:
                    held = self.spool.renew(handler.name, self.owner, rest, self.lease_seconds)
                except Exception as exc:  # not sure we still hold them: leave them to the lease expiry
                    if not self.spool.closed:
                        log.warning("smsgate.spool.renew_failed", handler=handler.name, error=str(exc))
                    return
                held_until = now + self.lease_seconds
                lost.update(set(rest) - held)
            if item.id in lost:
                continue
            # .event is read inside the call: a stored event that cannot be read back fails this
            # handler's call (retried, then dead), it does not end the worker thread
            call = functools.partial(handler.fn, item) if handler.envelope else functools.partial(_call_with_event,
                                                                                                   handler.fn, item)
            self._run(handler, [item], call, delay)

    def _run(self, handler: Handler, items: list[SpooledEvent], call: Callable[[], Any],
             delay: Callable[[int], float]) -> None:
        ids = [i.id for i in items]
        try:
            call()
        except Exception as exc:
            self.failures += 1
            log.warning("smsgate.handler.failed", handler=handler.name, events=len(ids),
                        error=f"{type(exc).__name__}: {exc}", attempt=items[0].attempts + 1)
            try:
                self.spool.fail(handler.name, ids, f"{type(exc).__name__}: {exc}", delay, handler.max_attempts)
            except Exception as exc2:
                log.error("smsgate.spool.mark_failed", handler=handler.name, error=str(exc2))
            return
        try:
            self.spool.complete(handler.name, ids)
            with self._lock:
                self.handled += len(ids)
        except Exception as exc:  # the lease expires and the events run again
            log.error("smsgate.spool.mark_failed", handler=handler.name, error=str(exc))

    def drain(self, timeout: float = 30.0, include_retries: bool = False) -> bool:
        """Wait until this dispatcher's handlers have nothing due (True) or ``timeout`` passes.

        Events waiting for a retry later than now do not count unless ``include_retries``.
        """
        deadline = time.monotonic() + timeout
        names = list(self.handlers)
        while True:
            if self.spool.due(names, include_retries) == 0:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the workers after their current call; rows they leased become due again."""
        self._stop.set()
        self.spool.notify()
        for t in self._threads:
            t.join(timeout)
        self._threads.clear()
        # leave what we leased but did not finish to whoever comes next
        try:
            self.spool.release_owner(self.owner)
        except Exception:
            pass
        with self._lock:
            self._started = False
