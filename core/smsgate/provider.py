"""What a provider plugin declares (name, Config class, capabilities), and the hook context.

Plugin discovery imports this module and the plugins' declarations, nothing heavier: keep it
free of the value classes (``models``), the config machinery and pluggy.
"""

from __future__ import annotations

import datetime as _dt
import enum
import os
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

#: Vendors in this field speak China Standard Time (no daylight saving time).
CHINA_TZ = _dt.timezone(_dt.timedelta(hours=8), "CST")


class Operation(str, enum.Enum):
    """Which vendor call a request is for. One set of hooks serves all of them."""

    SEND = "send"  #: same content (template + params, or text) to every recipient
    SEND_BATCH = "send_batch"  #: personalised: each recipient its own params or text
    PULL_REPORTS = "pull_reports"  #: fetch delivery reports
    PULL_INBOUND = "pull_inbound"  #: fetch inbound (MO) messages
    BALANCE = "balance"  #: account balance
    STATISTICS = "statistics"  #: send statistics per day over a date range

    def __str__(self) -> str:
        return self.value


def _ops(value: Any) -> frozenset[Operation]:
    return frozenset(Operation(v) for v in value)


def _strs(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _limits(value: Any) -> dict[Operation, int]:
    return {Operation(k): int(v) for k, v in dict(value).items()}


def _intervals(value: Any) -> dict[Operation, float]:
    return {Operation(k): float(v) for k, v in dict(value).items()}


@attrs.frozen
class Budget:
    """A vendor's documented call budget: at most ``calls`` calls in any ``per`` seconds, counted
    together for every operation in ``operations`` (one account's calls).

    A vendor may declare several, and one operation may be in several: opass's report pull,
    balance and statistics share ``Budget("query", {...}, calls=3, per=60)`` (the FAQ's three
    query calls a minute) while balance alone also has ``Budget("balance", {balance}, 1, 15)``.
    The core keeps them in the limits store (``smsgate.sending.limits``, shared by processes when
    it is Redis): a call waits until every budget it belongs to has room.
    """

    name: str
    operations: frozenset[Operation] = attrs.field(converter=_ops)
    calls: int = attrs.field(converter=int)
    per: float = attrs.field(converter=float)

    @calls.validator
    def _positive(self, attribute: Any, value: int) -> None:
        if value < 1:
            raise ValueError(f"budget {self.name!r}: calls must be at least 1")

    @property
    def spacing(self) -> float:
        """Seconds between calls that use this budget evenly (``per / calls``)."""
        return self.per / self.calls

    def to_json_dict(self) -> dict[str, Any]:
        return {"name": self.name, "operations": sorted(o.value for o in self.operations),
                "calls": self.calls, "per": self.per}


def _budgets(value: Any) -> tuple[Budget, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class Capabilities:
    """What a provider can do, and the limits the pipeline must respect when cutting work.

    ``max_recipients`` gives, per send operation, the most phones one request may carry.
    ``budgets`` are the vendor's documented call budgets (:class:`Budget`), possibly shared by
    several operations; ``min_interval`` is the shorthand for a budget of one operation and one
    call: per operation, the least number of seconds between two calls. The gateway waits rather
    than breaking either. ``poll_interval`` is the pause between pulls the vendor suggests when
    it had nothing new (None: the poller's own default).
    ``max_text_length`` is the longest free text the vendor takes (None: no documented limit).
    ``rate`` is the vendor's documented request rate for sends ("300/second"; None: none given),
    the default of the provider's ``rate`` key.
    """

    operations: frozenset[Operation] = attrs.field(converter=_ops)
    max_recipients: dict[Operation, int] = attrs.field(factory=dict, converter=_limits)
    templates: bool = True
    text: bool = False
    named_params: bool = True
    positional_params: bool = True
    scheduling: bool = False
    callbacks: frozenset[str] = attrs.field(default=frozenset(), converter=_strs)
    min_interval: dict[Operation, float] = attrs.field(factory=dict, converter=_intervals)
    max_text_length: int | None = None
    rate: str | None = None
    budgets: tuple[Budget, ...] = attrs.field(default=(), converter=_budgets)
    poll_interval: float | None = None

    def limit(self, operation: Operation) -> int:
        return self.max_recipients.get(operation, 1)

    def budgets_for(self, operation: Operation) -> tuple[Budget, ...]:
        """Every budget a call of ``operation`` spends from (``min_interval`` included)."""
        found = tuple(b for b in self.budgets if operation in b.operations)
        interval = self.min_interval.get(operation)
        if interval:
            found += (Budget(name=operation.value, operations={operation}, calls=1, per=interval),)
        return found

    def spacing(self, operation: Operation) -> float:
        """The least even pause between calls of ``operation`` that stays within its budgets."""
        return max((b.spacing for b in self.budgets_for(operation)), default=0.0)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "operations": sorted(o.value for o in self.operations),
            "max_recipients": {o.value: n for o, n in sorted(self.max_recipients.items())},
            "templates": self.templates,
            "text": self.text,
            "named_params": self.named_params,
            "positional_params": self.positional_params,
            "scheduling": self.scheduling,
            "callbacks": sorted(self.callbacks),
            "min_interval": {o.value: s for o, s in sorted(self.min_interval.items())},
            "max_text_length": self.max_text_length,
            "rate": self.rate,
            "budgets": [b.to_json_dict() for b in self.budgets],
            "poll_interval": self.poll_interval,
        }


def _is_import_path(text: str) -> bool:
    module, colon, name = text.partition(":")
    return all(part.isidentifier() for part in module.split(".")) and (
        not colon or all(part.isidentifier() for part in name.split(".")))


def _import_path(instance: Any, attribute: Any, value: Any) -> None:
    """A string must be ``package.module`` or ``package.module:name`` (a class passes as it is)."""
    if isinstance(value, str) and not _is_import_path(value):
        raise ValueError(f"Provider.{attribute.name}: not an import path ('package.module' or "
                         f"'package.module:name'): {value!r}")


@attrs.frozen(kw_only=True)
class Provider:
    """A provider's declaration: its name, Config class, capabilities, and where its hooks are.

    A plugin declares it in its package's ``__init__.py`` and names it in its entry point
    (``acme = "smsgate_acme:PROVIDER"``). Discovery reads it without importing anything else of
    the plugin: ``hooks`` (the module holding the hook implementations, ``"smsgate_acme.plugin"``,
    or ``"module:object"``) and ``config_class`` (``"smsgate_acme.plugin:AcmeConfig"``, or the
    class itself) are imported the first time the provider is used.

    The older form, a ``smsgate_provider`` hook in the hooks module returning this with
    ``config_class`` a class and no ``hooks``, still works, but listing providers then imports
    the whole plugin.

    ``simulator`` is the import path (``module:Class``) of the plugin's simulator, a subclass of
    :class:`smsgate.testing.SimulatorServer`; the demo and the conformance suite use it.
    """

    name: str
    config_class: type | str = attrs.field(validator=_import_path)
    capabilities: Capabilities
    description: str = ""
    simulator: str | None = None
    docs_url: str | None = None
    hooks: str | None = attrs.field(default=None, validator=_import_path)


#: nonces drawn from the OS in bulk, taken one at a time (list.pop and list.extend are atomic)
_nonces: list[str] = []
_NONCES_PER_DRAW = 256


def default_nonce() -> str:
    """32 random hex digits (a UUID4's worth of randomness, from the OS's CSPRNG).

    Drawn 256 at a time: ``os.urandom`` lets go of the GIL for its system call, so with many
    threads sending, a call per request handed the interpreter to another thread and waited to get
    it back (a context switch per request that a single thread never pays). A forked child forgets
    the parent's draw, so the two never sign with the same nonce."""
    try:
        return _nonces.pop()
    except IndexError:
        digits = os.urandom(16 * _NONCES_PER_DRAW).hex()
        _nonces.extend([digits[i:i + 32] for i in range(32, len(digits), 32)])
        return digits[:32]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_nonces.clear)


@attrs.frozen(kw_only=True)
class HookContext:
    """Passed to every provider hook: who is calling, with which config, and where time and
    randomness come from. Tests fix ``clock`` and ``nonce`` to compare signatures byte for byte.
    """

    provider: str
    config: Any
    operation: Operation | None = None
    clock: Callable[[], float] = time.time
    nonce_factory: Callable[[], str] = default_nonce
    request_index: int = 0  #: which request of this call (0-based), for wrappers that record
    extras: Mapping[str, Any] = attrs.field(factory=dict)

    def derive(self, *, request_index: int | None = None, extras: Mapping[str, Any] | None = None) -> "HookContext":
        """This context for another request of the same call, or with other ``extras``: what
        ``attrs.evolve`` does, at a fifth of its cost (every send makes one or more)."""
        global _build_context
        if _build_context is None:  # (made on first use: models is not imported with this module)
            from .models import builder

            _build_context = builder(HookContext)
        return _build_context(self.provider, self.config, self.operation, self.clock, self.nonce_factory,
                              self.request_index if request_index is None else request_index,
                              self.extras if extras is None else extras)

    def now(self) -> float:
        """Unix time in seconds, from the context's clock."""
        return self.clock()

    def now_china(self) -> _dt.datetime:
        """The context's clock as an aware datetime in China Standard Time."""
        return _dt.datetime.fromtimestamp(self.clock(), CHINA_TZ)

    def timestamp(self) -> int:
        """Unix seconds."""
        return int(self.clock())

    def timestamp_ms(self) -> int:
        """Unix milliseconds (13 digits)."""
        return int(round(self.clock() * 1000))

    def nonce(self) -> str:
        """A fresh nonce (32 random hex digits by default)."""
        return self.nonce_factory()

    def url(self, path: str) -> str:
        """``config.base_url`` joined with ``path``."""
        base = str(self.config.base_url).rstrip("/")
        return base + "/" + path.lstrip("/")


#: HookContext(provider, config, operation, clock, nonce_factory, request_index, extras) without the
#: keyword call through the class (every send makes one); see HookContext.derive
_build_context: Callable[..., HookContext] | None = None
