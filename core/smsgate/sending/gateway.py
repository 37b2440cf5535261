"""``Gateway``: the embedding API. The CLI uses nothing else."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ..config import Settings, did_you_mean, load_settings, settings_from_mapping, structure_config
from ..errors import ConfigError, ValidationError
from ..models import Message, Operation, SendResult
from ..provider import HookContext, default_nonce

if TYPE_CHECKING:  # the values of queries and pushes: built on first use, a send needs none of them
    from ..reporting import (Balance, CallbackRequest, CallbackResult, DeliveryReport, InboundMessage, PullQuery,
                             SendStatistics, StatisticsQuery)


_NO_TARGET = object()  # no provider name: Gateway._last_target before the first target


class Gateway:
    """Send SMS and talk to vendors through the installed provider plugins.

    ``settings`` is a path to a TOML file, a mapping shaped like one (``{"providers": {...}}``),
    a :class:`Settings`, or None for ``$SMSGATE_CONFIG`` (or nothing). ``clock`` and ``nonce``
    replace the time source and nonce generator every hook sees (tests fix them). ``ledger`` is a
    send ledger (a url such as ``sqlite:///ledger.sqlite3``, or a ledger object); by default the
    config's ``[ledger]`` table, if any (docs/ledger.md).
    """

    def __init__(
        self,
        settings: Settings | Mapping[str, Any] | str | os.PathLike[str] | None = None,
        *,
        plugins: Any = None,
        clock: Callable[[], float] | None = None,
        nonce: Callable[[], str] | None = None,
        transport: Any = None,
        environ: Mapping[str, str] | None = None,
        extras: Mapping[str, Any] | None = None,
        ledger: Any = None,
    ):
        from ..plugins import PluginManager

        self.environ = os.environ if environ is None else environ
        if settings is None or isinstance(settings, (str, os.PathLike)):
            settings = load_settings(None if settings is None else os.fspath(settings), environ=self.environ)
        elif not isinstance(settings, Settings):
            settings = settings_from_mapping(settings)
        self.settings = settings
        self.plugins = plugins if plugins is not None else PluginManager()
        from ..integrations import enable_configured

        self._setup_problems: list[ConfigError] = []  # reported with every other problem by check()
        try:
            enable_configured(self.plugins, settings, self)  # [metrics], [tracing]
        except ConfigError as exc:
            self._setup_problems.append(exc)
        self.clock = clock or time.time
        self.nonce = nonce or default_nonce
        self._transport = transport
        self._extras = dict(extras or {})
        self._ledger = ledger
        self._ledger_resolved = False
        self._ledger_lock = threading.Lock()
        self._configs: dict[str, tuple[Any, Any]] = {}
        self._rates: dict[str, Any] = {}
        # (provider as given, operation) -> (flow.Target, the plugins' generation it was made in)
        self._targets: dict[tuple[str | None, Operation | None], tuple[Any, int]] = {}
        #: (provider, operation, entry of _targets) of the last target asked for (see target)
        self._last_target: tuple[Any, Any, Any] = (_NO_TARGET, None, None)
        # limit waits use these (replaceable, so tests check the rules without real waiting)
        self.monotonic: Callable[[], float] = time.monotonic
        self.sleep: Callable[[float], None] = time.sleep
        from .limits import LimitsSettings, limits_settings

        try:
            self._limits_settings = limits_settings(settings.extra, self.environ)
        except ConfigError as exc:
            self._setup_problems.append(exc)
            self._limits_settings = LimitsSettings()
        self._limits: Any = None  # made on first use (see the limits property)
        self._limits_lock = threading.Lock()
        from ..log import get_logger
        from .routing import RoutingSettings

        self.log = get_logger("smsgate.pipeline")
        #: routes, default_route and logical templates ([routes.NAME], [templates.NAME.PROVIDER]), checked
        self.routing = RoutingSettings()
        self._breakers: Any = None
        self._balancers: dict[str, Any] = {}
        self._balancers_lock = threading.Lock()
        self.check()

    def check(self) -> None:
        """Check the whole configuration against the installed plugins: the file's structure,
        every configured provider's keys and values, the default provider. Raises one
        :class:`ConfigError` listing every problem; done when the Gateway is built."""
        from .routing import routing_settings

        problems = [*self.settings.problems, *self._setup_problems]
        capabilities = {}
        for name in self.provider_names():
            try:
                entry, _ = self._build(name)  # not cached: a plugin's declaration may still be replaced (tests)
                capabilities[name] = entry.spec.capabilities
            except ConfigError as exc:
                problems.append(exc)
        try:
            self.routing = routing_settings(self.settings.extra, capabilities, self.settings.providers)
        except ConfigError as exc:
            problems.append(exc)
        try:
            self.ledger  # noqa: B018 - a [ledger] url that cannot work is a problem now, not at the first send
        except ConfigError as exc:
            problems.append(exc)
        default = self.settings.default_provider
        if default and default not in self.settings.providers and default not in self.plugins.providers:
            known = sorted(set(self.settings.providers) | set(self.plugins.providers))
            problems.append(ConfigError(f"default_provider {default!r} is neither configured nor an installed "
                                        f"plugin{did_you_mean(default, known)}", field="default_provider"))
        if problems:
            raise ConfigError.combine(problems, self.settings.source)

    # -- configuration ---------------------------------------------------------------------
    @property
    def breakers(self) -> Any:
        """The providers' circuit breakers (``smsgate.sending.routing.Breakers``; shared through
        the limits store when it is Redis), made on first use; ``breakers.clock`` is replaceable,
        so tests check cool-downs without waiting."""
        if self._breakers is None:
            with self._balancers_lock:
                if self._breakers is None:
                    from .routing import Breakers

                    self._breakers = Breakers(self.limits)
        return self._breakers

    @property
    def limits(self) -> Any:
        """Per-phone quotas, request rates and vendor call budgets ([limits], docs/limits.md): a
        ``smsgate.sending.limits.Limits``, made on first use (replaceable). A send whose provider has
        no request rate, under a config without per-phone quotas, never makes it (start-up)."""
        if self._limits is None:
            with self._limits_lock:
                if self._limits is None:
                    from .limits import Limits

                    self._limits = Limits(self._limits_settings, clock=lambda: self.monotonic(),
                                          sleep=lambda seconds: self.sleep(seconds))
        return self._limits

    @limits.setter
    def limits(self, value: Any) -> None:
        self._limits = value

    def _send_limits(self, rate: Any) -> Any:
        """The limits a send's target takes: None when nothing would be counted (no request rate,
        no per-phone quota), which the send flow and routed sends take as "no limits stage"."""
        if self._limits is None and rate is None and not self._limits_settings.phone_quotas:
            return None
        return self.limits

    @property
    def transport(self) -> Any:
        if self._transport is None:
            from .transport import default_transport

            self._transport = default_transport()
        return self._transport

    @property
    def ledger(self) -> Any:
        """The send ledger (``smsgate.sending.ledger.Ledger``), or None when none is configured.
        Opened on first use; a bad ``[ledger]`` table is a ConfigError."""
        if not self._ledger_resolved:
            with self._ledger_lock:
                if isinstance(self._ledger, str):
                    from .ledger import open_ledger

                    self._ledger = open_ledger(self._ledger)
                elif self._ledger is None and self.settings.ledger is not None:
                    from .ledger import ledger_from_settings

                    self._ledger = ledger_from_settings(self.settings.ledger)
                self._ledger_resolved = True
        return self._ledger

    def provider_names(self) -> list[str]:
        """Configured provider names (tables in the config file)."""
        return sorted(self.settings.providers)

    def _resolve(self, name: str | None) -> str:
        if name:
            return name
        default = self.settings.default_provider
        if default:
            return default
        if len(self.settings.providers) == 1:
            return next(iter(self.settings.providers))
        if not self.settings.providers:
            if self.settings.source is None:
                raise ConfigError("no provider chosen and no config file given (a path, or SMSGATE_CONFIG)")
            raise ConfigError(f"no provider chosen and {self.settings.source} configures none "
                              "(add a [providers.NAME] table)")
        raise ConfigError(f"no provider chosen: name one of {', '.join(self.provider_names())} "
                          "or set default_provider in the config")

    def provider(self, name: str | None = None) -> tuple[Any, Any]:
        """``(ProviderEntry, config object)`` for a configured name, structured on first use."""
        name = self._resolve(name)
        cached = self._configs.get(name)
        if cached is None:
            cached = self._configs[name] = self._build(name)
        return cached

    def _build(self, name: str) -> tuple[Any, Any]:
        ps = self.settings.providers.get(name)
        entry = self.plugins.provider(ps.plugin if ps else name)
        try:
            config = structure_config(name, entry.spec.config_class, ps.values if ps else {}, environ=self.environ)
        except ConfigError as exc:
            if ps is None:  # nothing configured it: say so rather than which key is missing
                where = f"no [providers.{name}] table in {self.settings.source}" if self.settings.source \
                    else "no config file given (a path, or SMSGATE_CONFIG)"
                raise ConfigError(f"provider {name!r} is not configured: {where}; {exc}", provider=name,
                                  field=exc.field) from None
            raise
        return entry, config

    def context(self, name: str | None = None, operation: Operation | None = None, index: int = 0) -> HookContext:
        """The hook context for ``name``'s work (public so tests and tools can call hooks directly)."""
        name = self._resolve(name)
        entry, config = self.provider(name)
        # the shared transport is the core transmit's default: only a Gateway's own goes in the
        # context, so a send that never leaves the process (memory://) never imports urllib3
        extras = {**self._extras} if self._transport is None else {"transport": self._transport, **self._extras}
        return HookContext(provider=entry.spec.name, config=config, operation=operation, clock=self.clock,
                           nonce_factory=self.nonce, request_index=index, extras=extras)

    def hooks(self, name: str | None = None) -> Any:
        entry, _ = self.provider(name)
        return self.plugins.hooks_for(entry.spec.name)

    # -- sending ---------------------------------------------------------------------------
    def send(self, message: Message, provider: str | None = None, *, route: str | None = None,
             limit_scope: str | None = None) -> SendResult:
        """Send ``message``; every recipient gets an outcome (accepted, rejected or unknown).

        ``provider`` names one provider; ``route`` a ``[routes.NAME]`` (several providers, failover
        of what provably was not sent, docs/routing.md); with neither, ``default_route`` if set,
        else the default provider. A ``template_id`` naming a ``[templates.NAME]`` with provider
        entries is a logical template: each provider gets its own template id, sign name and params.

        ``limit_scope`` names the per-phone quota (a ``[templates.NAME]`` table with ``per_phone``);
        by default the message's template id does, else a route's ``per_phone``, else
        ``[limits] per_phone`` applies.

        Raises ValidationError (bad numbers or content; nothing sent), ConfigError, or
        LimitsUnavailable (the quota store is down; nothing sent). Vendor and transport failures
        do not raise: they become the outcomes of the recipients concerned.
        """
        if provider and route:
            raise ConfigError("name a provider or a route, not both", field="route")
        route = route or (None if provider else self.routing.default_route)
        template = self.routing.templates.get(message.template_id) if message.template_id is not None else None
        if route is None and template is None:
            target = self.target(provider, message.operation)
            if limit_scope is not None:
                target = attrs.evolve(target, limit_scope=limit_scope)
            # through the send_message hook, whose core implementation is the send flow (flow.py)
            result: SendResult = target.hooks.send_message(ctx=target.context, target=target, message=message)
            return result
        routed = self.route(route, message.operation, template=template, provider=provider,
                            limit_scope=limit_scope)
        first = routed.targets[0]
        # wrappers see the route, and each configured provider's plugin (a recipient's final provider)
        vendors = {t.name: t.context.provider for t in routed.targets}
        ctx = attrs.evolve(first.context, extras={**first.context.extras, "route": route, "vendors": vendors})
        routed_result: SendResult = first.hooks.send_message(ctx=ctx, target=routed, message=message)
        return routed_result

    def route(self, name: str | None, operation: Operation | None = None, *, template: Any = None,
              provider: str | None = None, limit_scope: str | None = None) -> Any:
        """A resolved route for one send (``smsgate.sending.routing.Route``): its providers in this
        send's order (a weighted route's pick first). With ``name`` None, the one ``provider``."""
        from .routing import Route, SmoothWeighted

        if name is None:
            return Route(name=None, targets=(self.target(provider, operation),), template=template,
                         limit_scope=limit_scope)
        settings = self.routing.routes.get(name)
        if settings is None:
            from ..config import did_you_mean

            known = sorted(self.routing.routes)
            raise ConfigError(f"no route {name!r}{did_you_mean(name, known)} (configured: "
                              f"{', '.join(known) or 'none; add a [routes.NAME] table'})", field="route")
        order = settings.providers
        if settings.strategy == "weighted":
            with self._balancers_lock:
                balancer = self._balancers.get(name)
                if balancer is None:
                    balancer = self._balancers[name] = SmoothWeighted(settings.providers, settings.weights)
            order = balancer.order()
        return Route(name=name, targets=tuple(self.target(p, operation) for p in order), template=template,
                     breakers=self.breakers if settings.breaker_failures else None,
                     breaker_failures=settings.breaker_failures, breaker_cooldown=settings.breaker_cooldown,
                     limit_scope=limit_scope)

    def target(self, provider: str | None = None, operation: Operation | None = None) -> Any:
        """The resolved provider the send flow works with (``smsgate.sending.flow.Target``).

        Made once per provider and operation: a send reads its config, capabilities, rate and
        hooks from here rather than looking each up again. It is made anew when the provider's
        scoped hooks changed (a plugin registered or unregistered) or the clock or nonce source
        was replaced."""
        # kept under the name as given (None: the default provider), with the plugins' generation,
        # which changes whenever a plugin is registered or unregistered (and with it the scoped hooks)
        last = self._last_target
        if last[0] is provider and last[1] is operation:
            # the one asked for last (the usual caller sends through one provider): compared by
            # identity, because the dict's key hashes the operation, an enum member, whose hash is
            # computed in Python (Enum.__hash__), about a thousand instructions per send
            cached = last[2]
        else:
            cached = self._targets.get((provider, operation))
        if cached is not None:
            target, generation = cached
            ctx = target.context
            if generation == self.plugins._generation and ctx.clock is self.clock and ctx.nonce_factory is self.nonce:
                if last[2] is not cached:
                    self._last_target = (provider, operation, cached)
                return target
        from .flow import Target

        generation = self.plugins._generation  # read first: a plugin loaded below makes the next call look again
        name = self._resolve(provider)
        entry, config = self.provider(name)
        rate = self.rate(name)
        target = Target(name=name, capabilities=entry.spec.capabilities, hooks=self.plugins.hooks_for(entry.spec.name),
                        context=self.context(name, operation),
                        max_concurrency=int(getattr(config, "max_concurrency", 4)), ledger=self.ledger,
                        limits=self._send_limits(rate), rate=rate,
                        send_timeout=float(getattr(config, "send_timeout", 60.0)))
        entry = self._targets[(provider, operation)] = (target, generation)
        self._last_target = (provider, operation, entry)
        return target

    def status(self, key: str) -> Any:
        """What the ledger recorded for ``key`` (``smsgate.sending.ledger.SendRecord``: per recipient
        its outcome, provider, message id and delivery status), or None when it never saw the key."""
        return self._require_ledger().status(key)

    def match_reports(self, reports: Any) -> int:
        """Match delivery reports to the ledger's rows (the Receiver does this for every report it
        stores). Returns how many rows were updated; 0 without a ledger."""
        ledger = self.ledger
        return 0 if ledger is None else ledger.match_reports(list(reports), self.clock())

    def prune_ledger(self, older_than: float) -> int:
        """Forget sends recorded more than ``older_than`` seconds ago; returns how many."""
        return int(self._require_ledger().prune(self.clock() - older_than))

    def _require_ledger(self) -> Any:
        ledger = self.ledger
        if ledger is None:
            raise ConfigError("no send ledger: add a [ledger] table with url = \"sqlite:///PATH\" or "
                              "\"postgresql://...\" to the config")
        return ledger

    def rate(self, provider: str | None = None) -> Any:
        """The send request rate of a provider: its ``rate`` key, else its plugin's documented
        rate (a ``smsgate.sending.limits.Rate``), or None."""
        name = self._resolve(provider)
        if name not in self._rates:
            entry, config = self.provider(name)
            text = getattr(config, "rate", None) or entry.spec.capabilities.rate
            try:
                if text in (None, "none"):
                    self._rates[name] = None
                else:
                    from .limits import parse_rate

                    self._rates[name] = parse_rate(text)
            except ValueError as exc:
                raise ConfigError(f"provider {name!r}: rate: {exc}", provider=name, field="rate") from None
        return self._rates[name]

    # -- other vendor calls ----------------------------------------------------------------
    def _deadlined(self, name: str, operation: Operation) -> HookContext:
        """The context of one pull or query, ending by the provider's ``send_timeout`` as a send does."""
        ctx = self.context(name, operation)
        timeout = float(getattr(ctx.config, "send_timeout", 60.0))
        from .transport import deadline_after

        return attrs.evolve(ctx, extras={**ctx.extras, "deadline": deadline_after(timeout)})

    def _call(self, name: str | None, operation: Operation, payload: Any) -> Any:
        from .pipeline import call_vendor

        name = self._resolve(name)
        entry, _ = self.provider(name)
        if operation not in entry.spec.capabilities.operations:
            raise ConfigError(f"provider {name!r} does not support {operation.value}", provider=name)
        hooks = self.plugins.hooks_for(entry.spec.name)
        # The vendor's documented budgets (Capabilities.budgets, min_interval), kept in the limits
        # store (shared by every process on it): a call waits until every budget it belongs to has
        # room, runs alone in them, and is counted from its answer, so the vendor, which counts
        # from the request's arrival, never sees one call too many. Other budgets are not held up.
        budgets = entry.spec.capabilities.budgets_for(operation)
        with self.limits.spend(name, budgets, hold=self._hold(name), operation=operation.value):
            return call_vendor(hooks, self._deadlined(name, operation), operation, payload)

    def _hold(self, name: str) -> float:
        """The longest a vendor call may take (its connect attempts and read timeout), plus a
        margin: a budget held by a process that died is free again after it."""
        _, config = self.provider(name)
        connect = float(getattr(config, "connect_timeout", 5.0)) * (1 + int(getattr(config, "connect_retries", 0)))
        return connect + float(getattr(config, "read_timeout", 15.0)) + 5.0

    def pull_reports(self, provider: str | None = None, query: PullQuery | None = None) -> list[DeliveryReport]:
        """Fetch delivery reports (vendors with a report pull)."""
        from ..reporting import PullQuery

        return list(self._call(provider, Operation.PULL_REPORTS, query or PullQuery()))

    def pull_inbound(self, provider: str | None = None) -> list[InboundMessage]:
        """Fetch inbound messages (vendors with an inbound pull)."""
        return list(self._call(provider, Operation.PULL_INBOUND, None))

    def balance(self, provider: str | None = None) -> Balance:
        balance: Balance = self._call(provider, Operation.BALANCE, None)
        return balance

    def statistics(self, provider: str | None = None, query: StatisticsQuery | None = None, *,
                   start: Any = None, end: Any = None, page: int = 1, page_size: int = 50) -> SendStatistics:
        """One page of the vendor's send statistics per day (vendors with a statistics query):
        ``statistics("opass", start="2024-09-01", end="2024-09-18")`` or with a
        :class:`StatisticsQuery`. Dates are China dates, both included."""
        if query is None:
            if start is None or end is None:
                raise ValidationError("statistics need a start and an end date", field="start" if start is None else "end")
            from ..reporting import StatisticsQuery

            query = StatisticsQuery(start=start, end=end, page=page, page_size=page_size)
        stats: SendStatistics = self._call(provider, Operation.STATISTICS, query)
        return stats

    # -- pushes ----------------------------------------------------------------------------
    def handle_callback(self, provider: str, request: CallbackRequest, **extras: Any) -> CallbackResult:
        """Verify and parse a vendor push. Raises AuthError when refused, ValidationError when
        malformed; returns the events and the answer for the vendor."""
        from ..errors import AuthError

        name = self._resolve(provider)
        entry, config = self.provider(name)
        hooks = self.plugins.hooks_for(entry.spec.name)
        ctx = self.context(name)
        if extras:
            ctx = attrs.evolve(ctx, extras={**ctx.extras, **extras})
        ok = hooks.verify_callback(ctx=ctx, request=request)
        if ok is not True:
            raise AuthError(f"push to provider {name!r} refused: verification failed", provider=name)
        result: CallbackResult | None = hooks.parse_callback(ctx=ctx, request=request)
        if result is None:
            raise ValidationError(f"provider {name!r} cannot parse pushes", field="body")
        return result

    def close(self) -> None:
        """Close this gateway's own transport (the process-wide shared one stays open) and its
        connection to the limits store."""
        from . import transport

        if self._transport is not None and self._transport is not transport._default:
            self._transport.close()
        if self._ledger is not None and not isinstance(self._ledger, str):
            self._ledger.close()
        if self._limits is not None:
            self._limits.close()

    def __enter__(self) -> "Gateway":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["Gateway"]
