"""Prometheus metrics (extra ``metrics``: ``pip install 'smsgate[metrics]'``).

:class:`Metrics` is a wrapper plugin on the hooks: it counts what it sees around ``send_message``
(every recipient's outcome), ``vendor_request`` (every vendor call's time and result, pulled
reports), ``verify_callback`` / ``parse_callback`` (pushes and the reports they carry). Nothing in
the core calls it. :class:`SpoolCollector` reads the spool's backlog when scraped,
:class:`LedgerCollector` the send ledger's send-to-delivery times, and :class:`BreakerCollector`
the routes' circuit breakers.

Turn it on with a ``[metrics]`` table in the config (every Gateway built from it then counts into
prometheus_client's default registry), ``smsgate serve --metrics``, or by hand into any registry::

    metrics = Metrics(registry)            # a prometheus_client CollectorRegistry
    metrics.install(gateway.plugins)
    registry.register(SpoolCollector(receiver.spool))
    registry.register(BreakerCollector(gateway))

Labels are bounded: provider names, operations, outcomes, normalised statuses, and vendor codes
kept only while they look like codes (short, no spaces) and are few; never phone numbers, message
ids or free text. Metric names and alerts: docs/observability.md.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
import weakref
from collections import Counter as _Tally
from collections.abc import Callable, Iterable
from typing import Any

import prometheus_client  # noqa: F401 - the extra: without it, importing this module fails at once

from ..errors import ProviderError, TransportError, ValidationError
from ..hookspecs import hookimpl
from ..log import get_logger
from ..models import DeliveryReport, InboundMessage, Operation, SendResult, part_size

log = get_logger("smsgate.metrics")

#: seconds; vendors answer in tens to hundreds of milliseconds, a read timeout is 15 s by default
REQUEST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: how many distinct codes (or other outside values) one label keeps before the rest become "other"
MAX_VALUES = 200
OTHER = "other"
_CODE = re.compile(r"[A-Za-z0-9_.:\-]{1,40}")


class BoundedLabel:
    """Turns values that come from outside (vendor codes, handler names, field names) into label
    values: kept while they look like codes and while fewer than ``limit`` distinct ones were seen;
    anything else is ``"other"``, so a vendor's free text or a flood of codes cannot blow up the
    number of series."""

    def __init__(self, limit: int = MAX_VALUES):
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: Any) -> str:
        text = "" if value is None else str(value)
        if not text or text in self._seen:
            return text
        if not _CODE.fullmatch(text):
            return OTHER
        with self._lock:
            if len(self._seen) >= self.limit:
                return OTHER
            self._seen.add(text)
        return text


def _operation(value: Any) -> str:
    return value.value if isinstance(value, Operation) else str(value or "")


class Metrics:
    """The metrics plugin. ``registry`` is a prometheus_client ``CollectorRegistry`` (default: the
    process-wide ``REGISTRY``, which prometheus_client's multiprocess mode also uses)."""

    def __init__(self, registry: Any = None):
        from prometheus_client import REGISTRY, Counter, Histogram

        self.registry = REGISTRY if registry is None else registry
        r = self.registry
        self.recipients = Counter(
            "smsgate_recipients", "Recipients of sends by outcome (accepted; rejected: certainly not sent; "
            "unknown: may have been sent) and the vendor's or transport's code", 
            ("provider", "route", "operation", "outcome", "code"), registry=r)
        self.invalid = Counter(
            "smsgate_sends_invalid", "Sends refused before any request (bad numbers or content), by field",
            ("provider", "field"), registry=r)
        self.requests = Counter(
            "smsgate_vendor_requests", "Vendor calls by outcome (ok; rejected: the vendor refused, not sent; "
            "not_sent: could not connect; unknown: may have been taken) and code",
            ("provider", "operation", "outcome", "code"), registry=r)
        self.latency = Histogram(
            "smsgate_vendor_request_seconds", "Time of one vendor call, from building the request to parsing "
            "the answer (nearly all of it the HTTP exchange)", ("provider", "operation"),
            buckets=REQUEST_BUCKETS, registry=r)
        self.transport_errors = Counter(
            "smsgate_transport_errors", "HTTP exchanges with a vendor that failed, by kind", ("provider", "kind"),
            registry=r)
        self.reports = Counter(
            "smsgate_reports", "Delivery reports received, by normalised status and source (push or pull)",
            ("provider", "status", "source"), registry=r)
        self.inbound = Counter(
            "smsgate_inbound_messages", "Inbound SMS received, by source (push or pull)", ("provider", "source"),
            registry=r)
        self.pushes = Counter(
            "smsgate_pushes", "Vendor pushes by result (parsed; refused: verification failed; malformed)",
            ("provider", "result"), registry=r)
        self.code = BoundedLabel()
        self.field = BoundedLabel(50)
        self._children: dict[tuple[Any, ...], Any] = {}
        #: the breakers of the Gateways :meth:`watch` was given (nothing until then)
        self.breakers = BreakerCollector()
        r.register(self.breakers)

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached (the send path calls this for every request)."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def install(self, plugins: Any) -> "Metrics":
        """Register with ``plugins`` (a :class:`smsgate.PluginManager`) unless already there."""
        if not plugins.is_registered(self):
            plugins.register(self)
        return self

    def watch(self, gateway: Any) -> "Metrics":
        """Export ``gateway``'s circuit breakers too (a ``[metrics]`` table does this for every
        Gateway built from the config); the Gateway is held weakly."""
        self.breakers.add(gateway)
        return self

    # -- sending -------------------------------------------------------------------------------
    @hookimpl(wrapper=True)
    def send_message(self, ctx: Any, message: Any) -> Any:
        try:
            result = yield
        except ValidationError as exc:
            self._child(self.invalid, ctx.provider, self.field(exc.field or "message")).inc()
            raise
        if isinstance(result, SendResult):
            route = str(ctx.extras.get("route") or "")
            # a routed recipient counts under the plugin of the provider that took it last
            vendors = ctx.extras.get("vendors") or {}
            tally: _Tally[tuple[str, str, str | None]] = _Tally()
            for r in result.iter_outcomes():  # as stored: a request's phones share one outcome
                tally[(vendors.get(r.provider, ctx.provider) if r.provider else ctx.provider, r.outcome.value,
                       r.reason.code if r.reason is not None else None)] += part_size(r)
            operation = _operation(message.operation)
            for (provider, outcome, code), n in tally.items():
                self._child(self.recipients, provider, route, operation, outcome, self.code(code)).inc(n)
        return result

    @hookimpl(wrapper=True)
    def vendor_request(self, ctx: Any, operation: Any) -> Any:
        provider, op = ctx.provider, _operation(operation)
        started = time.perf_counter()
        outcome, code = "unknown", "ERROR"
        try:
            result = yield
            outcome, code = "ok", ""
        except TransportError as exc:
            outcome, code = ("not_sent" if exc.not_sent else "unknown"), exc.kind
            self._child(self.transport_errors, provider, self.code(exc.kind)).inc()
            raise
        except ProviderError as exc:
            outcome, code = ("rejected" if exc.not_sent else "unknown"), exc.code or type(exc).__name__
            raise
        finally:
            self._child(self.latency, provider, op).observe(time.perf_counter() - started)
            self._child(self.requests, provider, op, outcome, self.code(code)).inc()
        if isinstance(result, list):  # pulls
            self._count_events(provider, result, "pull")
        return result

    # -- receiving -----------------------------------------------------------------------------
    @hookimpl(wrapper=True)
    def verify_callback(self, ctx: Any) -> Any:
        try:
            ok = yield
        except Exception:
            self._child(self.pushes, ctx.provider, "refused").inc()
            raise
        if ok is not True:
            self._child(self.pushes, ctx.provider, "refused").inc()
        return ok

    @hookimpl(wrapper=True)
    def parse_callback(self, ctx: Any) -> Any:
        try:
            result = yield
        except Exception:
            self._child(self.pushes, ctx.provider, "malformed").inc()
            raise
        self._child(self.pushes, ctx.provider, "parsed").inc()
        self._count_events(ctx.provider, getattr(result, "events", ()), "push")
        return result

    def _count_events(self, provider: str, events: Iterable[Any], source: str) -> None:
        for event in events:
            if isinstance(event, DeliveryReport):
                self._child(self.reports, provider, event.status.value, source).inc()
            elif isinstance(event, InboundMessage):
                self._child(self.inbound, provider, source).inc()


_default: Metrics | None = None
_default_lock = threading.Lock()


def default_metrics() -> Metrics:
    """The process-wide :class:`Metrics` on prometheus_client's default registry (a ``[metrics]``
    table and ``smsgate serve --metrics`` use this one; metrics can be registered only once per
    registry)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Metrics()
        return _default


class SpoolCollector:
    """Reads a :class:`smsgate.receiving.Spool` when scraped: events stored, each handler's rows
    by state (pending, leased, dead) and the age of its oldest outstanding event.

    The spool is one SQLite file shared by every process of a host, so any process (or gunicorn
    worker) that serves /metrics gives the same answer."""

    def __init__(self, spool: Any, clock: Callable[[], float] = time.time):
        self.spool = spool
        self.clock = clock
        self.handler = BoundedLabel(100)

    def describe(self) -> list[Any]:
        return []  # nothing to read at registration time

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            counts = self.spool.counts()
            oldest = self.spool.oldest_outstanding()
        except Exception as exc:  # a scrape must not fail because the spool is busy or closed
            log.warning("smsgate.metrics.spool_unreadable", spool=getattr(self.spool, "path", None),
                        error=f"{type(exc).__name__}: {exc}")
            return
        yield GaugeMetricFamily("smsgate_spool_events", "Events stored in the spool", value=counts["events"])
        rows = GaugeMetricFamily("smsgate_spool_rows", "Spool rows per handler by state (pending: waiting or "
                                 "retrying; leased: being handled; dead: gave up)", labels=("handler", "state"))
        age = GaugeMetricFamily("smsgate_spool_oldest_pending_age_seconds", "Age of the oldest event a handler "
                                "has not handled yet (0 when it has none)", labels=("handler",))
        now = self.clock()
        for name, states in sorted(counts["handlers"].items()):
            label = self.handler(name)
            for state in ("pending", "leased", "dead"):
                rows.add_metric((label, state), states.get(state, 0))
            at = oldest.get(name)
            age.add_metric((label,), max(0.0, now - at) if at is not None else 0.0)
        yield rows
        yield age


class LedgerCollector:
    """Reads the send ledger when scraped: how long recipients waited from their request leaving
    to their delivered report, as quantiles over the reports matched in the last ``window``
    seconds, per provider (the ledger is shared by every process and host that sends, so any
    process that serves /metrics gives the same answer). At most ``limit`` reports, newest first."""

    QUANTILES = (0.5, 0.9, 0.99)

    def __init__(self, ledger: Any, window: float = 900.0, limit: int = 10000,
                 clock: Callable[[], float] = time.time):
        self.ledger = ledger
        self.window = window
        self.limit = limit
        self.clock = clock
        self.provider = BoundedLabel(100)

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            rows = self.ledger.delivery_times(self.clock() - self.window, self.limit)
        except Exception as exc:  # a scrape must not fail because the database is away
            log.warning("smsgate.metrics.ledger_unreadable", error=f"{type(exc).__name__}: {exc}")
            return
        waits: dict[str, list[float]] = {}
        for vendor, seconds in rows:
            waits.setdefault(self.provider(vendor), []).append(max(0.0, seconds))
        window = f"{self.window:g}"
        quantiles = GaugeMetricFamily(
            "smsgate_send_to_delivery_seconds", f"Seconds from a request leaving to its recipient's delivered "
            f"report, by quantile, over the reports matched in the last {window} s (send ledger)",
            labels=("provider", "quantile"))
        counts = GaugeMetricFamily(
            "smsgate_send_to_delivery_reports", f"Delivered reports matched to the send ledger in the last "
            f"{window} s (what the quantiles are taken over)", labels=("provider",))
        for provider, values in sorted(waits.items()):
            values.sort()
            for q in self.QUANTILES:  # nearest rank
                quantiles.add_metric((provider, f"{q:g}"), values[max(0, math.ceil(q * len(values)) - 1)])
            counts.add_metric((provider,), len(values))
        yield quantiles
        yield counts


_SEVERITY = {"closed": 0, "half_open": 1, "open": 2}


class BreakerCollector:
    """Reads the circuit breakers of every provider that a route with a breaker lists, when
    scraped, for each watched Gateway (held weakly): ``smsgate_circuit_breaker_state`` (1 for the
    breaker's state, 0 for the others) and ``smsgate_circuit_breaker_failures``.

    With a Redis limits store the breakers are shared, so any process gives the same answer; with
    the memory store they are the reading process's own. When two watched Gateways of one process
    name the same provider, the more open breaker is shown (open, then half-open, then closed)."""

    def __init__(self, *gateways: Any):
        self._gateways: weakref.WeakSet[Any] = weakref.WeakSet(gateways)

    def add(self, gateway: Any) -> None:
        self._gateways.add(gateway)

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import GaugeMetricFamily

        from ..sending.routing.breaker import STATES

        seen: dict[str, Any] = {}
        for gateway in list(self._gateways):
            try:
                providers = sorted({p for route in gateway.routing.routes.values() if route.breaker_failures
                                    for p in route.providers})
                statuses = gateway.breakers.status(providers) if providers else {}
            except Exception as exc:  # a scrape must not fail because the store misbehaves
                log.warning("smsgate.metrics.breakers_unreadable", error=f"{type(exc).__name__}: {exc}")
                continue
            for name, status in statuses.items():
                other = seen.get(name)
                if other is None or (_SEVERITY[status.state], status.failures) > (_SEVERITY[other.state], other.failures):
                    seen[name] = status
        if not seen:
            return
        state = GaugeMetricFamily(
            "smsgate_circuit_breaker_state", "Circuit breaker of each provider that routes list, 1 for its "
            "state (closed; open: routes skip the provider; half_open: the next send is its trial), 0 for "
            "the others", labels=("provider", "state"))
        failures = GaugeMetricFamily(
            "smsgate_circuit_breaker_failures", "Consecutive failed attempts at the provider since its breaker "
            "last closed", labels=("provider",))
        for name, status in sorted(seen.items()):
            for one in STATES:
                state.add_metric((name, one), 1.0 if status.state == one else 0.0)
            failures.add_metric((name,), status.failures)
        yield state
        yield failures


def exposition_registry(registry: Any = None, spool: Any = None, ledger: Any = None) -> Any:
    """The registry that /metrics serves: ``registry`` (default: prometheus_client's ``REGISTRY``)
    — or, when ``PROMETHEUS_MULTIPROC_DIR`` is set, the sum over every process that wrote there
    (gunicorn workers, ``smsgate send`` runs) plus the breakers this process's default
    :class:`Metrics` watches (read live, not from the files) — plus the spool's gauges when
    ``spool`` is given and the send-to-delivery gauges when ``ledger`` is."""
    from prometheus_client import REGISTRY, CollectorRegistry

    out = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(out)  # type: ignore[no-untyped-call]
        if _default is not None:
            out.register(_default.breakers)
    else:
        out.register(REGISTRY if registry is None else registry)
    if spool is not None:
        out.register(SpoolCollector(spool))
    if ledger is not None:
        out.register(LedgerCollector(ledger))
    return out


def with_metrics(app: Callable[..., Any], registry: Any, path: str = "/metrics") -> Callable[..., Any]:
    """A WSGI app that answers ``path`` with ``registry``'s metrics and passes the rest to ``app``."""
    from prometheus_client import make_wsgi_app

    metrics_app = make_wsgi_app(registry)

    def routed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") == path:
            return metrics_app(environ, start_response)
        return app(environ, start_response)

    return routed


def mount(receiver: Any, path: str = "/metrics") -> Callable[..., Any]:
    """``receiver``'s WSGI app answering ``path`` with the metrics (``smsgate serve --metrics``):
    counts into the default registry through ``receiver``'s plugins, plus its spool's gauges, its
    Gateway's circuit breakers and, with a send ledger, the send-to-delivery gauges."""
    default_metrics().install(receiver.gateway.plugins).watch(receiver.gateway)
    registry = exposition_registry(spool=receiver.spool, ledger=receiver.gateway.ledger)
    return with_metrics(receiver.wsgi_app, registry, path)


def smsgate_text(registry: Any = None) -> str:
    """The ``smsgate_*`` series of ``registry`` (default: what :func:`exposition_registry` serves)
    in the Prometheus text format, without ``_created`` samples (``smsgate demo --metrics``)."""
    from prometheus_client import generate_latest

    text = generate_latest(exposition_registry() if registry is None else registry).decode()
    keep = [line for line in text.splitlines()
            if line.startswith(("smsgate_", "# HELP smsgate_", "# TYPE smsgate_")) and "_created" not in line]
    return "\n".join(keep) + "\n"


__all__ = ["Metrics", "SpoolCollector", "LedgerCollector", "BreakerCollector", "BoundedLabel", "default_metrics", "exposition_registry",
           "with_metrics", "mount", "smsgate_text"]
