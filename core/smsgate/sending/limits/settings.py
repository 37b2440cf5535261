"""The ``[limits]`` table, and the ``per_phone`` key of ``[templates.NAME]`` and ``[routes.NAME]`` tables.

::

    [limits]
    store = "redis://127.0.0.1:6379/0"       # default "memory://": this process only
    per_phone = ["1/minute", "5/hour", "10/day"]

    [templates.login]                       # a send of template "login" counts here instead
    per_phone = ["1/minute", "5/hour", "10/day"]

    [routes.otp]                            # a send over route "otp" counts here, unless its
    providers = ["opass", "juse"]           # template (or limit_scope) has a quota of its own
    per_phone = ["1/minute", "5/hour"]

Every ``[limits]`` key can be overridden by ``SMSGATE_LIMITS_<KEY>`` (the store's URL may hold a
password: keep it in the environment). Other keys of ``[templates.NAME]`` and ``[routes.NAME]``
tables belong to the routing configuration and are not read here.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from ...config import _from_env, did_you_mean
from ...errors import ConfigError

if TYPE_CHECKING:  # the rates module is imported where a rate is read: a config without one never needs it
    from .rates import Rate


@attrs.frozen(kw_only=True)
class LimitsSettings:
    store: str = attrs.field(default="memory://", repr=False)  #: the URL may carry a password
    prefix: str = "smsgate:"  #: every key in the store starts with it
    per_phone: tuple[Rate, ...] = ()  #: quotas of every phone for sends without a scope of their own
    #: per-phone quotas per limit scope (``[templates.NAME] per_phone``), replacing ``per_phone``
    scopes: Mapping[str, tuple[Rate, ...]] = attrs.field(factory=dict)
    #: per-phone quotas of routed sends per route (``[routes.NAME] per_phone``), replacing ``per_phone``
    routes: Mapping[str, tuple[Rate, ...]] = attrs.field(factory=dict)
    fail_open: bool = False  #: store unreachable: send without per-phone quotas instead of refusing
    rate_wait: float = 5.0  #: seconds a send may wait for its provider's request rate
    query_wait: float = 120.0  #: seconds a query (pull, balance) may wait for its vendor's budget

    @property
    def phone_quotas(self) -> bool:
        """Whether any send is counted in a per-phone quota (``[limits] per_phone``, a
        ``[templates.NAME]`` or a ``[routes.NAME]`` ``per_phone``)."""
        return bool(self.per_phone or self.scopes or self.routes)


_TYPES: dict[str, Any] = {"store": str, "prefix": str, "per_phone": list, "fail_open": bool,
                          "rate_wait": float, "query_wait": float}


def _check(key: str, value: Any) -> Any:
    want = _TYPES[key]
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if want is list:
        try:
            from .rates import parse_rates

            return parse_rates(value, f"[limits] {key}")
        except ValueError as exc:
            raise ConfigError(str(exc), field=key) from None
    if not isinstance(value, want) or (want is not bool and isinstance(value, bool)):
        raise ConfigError(f"[limits] {key} must be {want.__name__}, not {type(value).__name__}", field=key)
    if want is float and not value > 0:
        raise ConfigError(f"[limits] {key} must be more than 0 seconds", field=key)
    if key == "store" and value.split("://", 1)[0] not in ("memory", "redis", "rediss", "unix"):
        raise ConfigError("[limits] store must be \"memory://\" or a Redis URL such as "
                          "\"redis://127.0.0.1:6379/0\" (rediss:// and unix:// too)", field=key)
    if key == "store" and not value.startswith("memory://") and importlib.util.find_spec("redis") is None:
        raise ConfigError("[limits] store is a Redis URL, which needs the redis package: "
                          "pip install 'smsgate[limits]'", field=key)
    return value


def limits_settings(extra: Mapping[str, Any], environ: Mapping[str, str]) -> LimitsSettings:
    """Read ``[limits]`` and the templates' ``per_phone`` from a config file's other tables.
    Raises one ConfigError listing every problem."""
    problems: list[ConfigError] = []
    table = extra.get("limits", {})
    if not isinstance(table, Mapping):
        problems.append(ConfigError("[limits] must be a table", field="limits"))
        table = {}
    for key in sorted(set(table) - set(_TYPES)):
        problems.append(ConfigError(f"[limits]: unknown key {key!r}{did_you_mean(key, list(_TYPES))} "
                                    f"(known keys: {', '.join(sorted(_TYPES))})", field=key))
    values = {k: v for k, v in table.items() if k in _TYPES}
    for key, want in _TYPES.items():
        var = f"SMSGATE_LIMITS_{key.upper()}"
        if var in environ:
            try:
                values[key] = _from_env(environ[var], list[str] if want is list else want)
            except ValueError:  # never echo the value: the store's URL may hold a password
                problems.append(ConfigError(f"[limits] {key} from {var} is not a valid {want.__name__}", field=key))
                values.pop(key, None)
    checked = {}
    for key, value in values.items():
        try:
            checked[key] = _check(key, value)
        except ConfigError as exc:
            problems.append(exc)
    scopes = _quotas("templates", extra.get("templates", {}), problems)
    routes = _quotas("routes", extra.get("routes", {}), problems)
    if problems:
        raise ConfigError.combine(problems)
    return LimitsSettings(**checked, scopes=scopes, routes=routes)


def _quotas(kind: str, tables: Any, problems: list[ConfigError]) -> dict[str, tuple[Rate, ...]]:
    """The ``per_phone`` of each ``[templates.NAME]`` or ``[routes.NAME]`` table that has one (the
    routing settings report a ``[routes]`` that is not a table of tables)."""
    if not isinstance(tables, Mapping):
        if kind == "templates":
            problems.append(ConfigError("[templates] must be a table of [templates.NAME] tables", field="templates"))
        return {}
    quotas = {}
    for name, table in tables.items():
        if not isinstance(table, Mapping):
            if kind == "templates":
                problems.append(ConfigError(f"[templates.{name}] must be a table", field="templates"))
        elif "per_phone" in table:
            try:
                from .rates import parse_rates

                quotas[str(name)] = parse_rates(table["per_phone"], f"[{kind}.{name}] per_phone")
            except ValueError as exc:
                problems.append(ConfigError(str(exc), field="per_phone"))
    return quotas
