"""``[routes.NAME]``, ``default_route`` and the provider entries of ``[templates.NAME]``, checked.

::

    default_route = "otp"

    [routes.otp]
    providers = ["opass", "juse"]          # configured provider names, tried in this order
    strategy = "failover"                  # default; or "weighted" with weights = {opass = 3, juse = 1}
    breaker_failures = 5                   # consecutive failures that open a provider's breaker (0: off)
    breaker_cooldown = 30                  # seconds it stays open before one trial request

    [templates.login.opass]                # logical template "login", as opass knows it
    template_id = "574277763210051584"
    params = ["code"]                      # positional vendor: the message's named params, in order
    [templates.login.juse]
    template_id = "MSG_2024090901"
    sign_name = "登录验证"
    params = { param1 = "code" }           # named vendor: vendor's name = the message's name

Everything is checked when the Gateway is built, against the configured providers and their
plugins' capabilities; every problem is reported at once (did-you-mean for near misses). The
``per_phone`` key of ``[templates.NAME]`` and ``[routes.NAME]`` tables belongs to the limits
(``limits/settings.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ...config import did_you_mean
from ...errors import ConfigError

STRATEGIES = ("failover", "weighted")
DEFAULT_FAILURES = 5
DEFAULT_COOLDOWN = 30.0
#: keys of a [templates.NAME] table that are not provider entries (the limits read them)
TEMPLATE_OWN_KEYS = ("per_phone",)
ROUTE_KEYS = ("providers", "strategy", "weights", "breaker_failures", "breaker_cooldown", "per_phone")
ENTRY_KEYS = ("template_id", "sign_name", "params")


@attrs.frozen(kw_only=True)
class RouteSettings:
    """One ``[routes.NAME]`` table."""

    name: str
    providers: tuple[str, ...]  #: configured provider names, in failover order
    strategy: str = "failover"
    weights: Mapping[str, int] = attrs.field(factory=dict)  #: weighted: provider -> weight (> 0)
    breaker_failures: int = DEFAULT_FAILURES  #: consecutive failures that open a breaker; 0: no breaker
    breaker_cooldown: float = DEFAULT_COOLDOWN  #: seconds an open breaker skips its provider


@attrs.frozen(kw_only=True)
class TemplateEntry:
    """How one provider knows a logical template."""

    provider: str  #: the configured provider name
    template_id: str  #: the vendor's template id
    sign_name: str | None = None  #: the vendor's signature (签名) for it; None: the message's
    #: a list: positional vendor params, each naming one of the message's params; a mapping:
    #: vendor param name -> the message's param name; None: the message's params as they are
    params: tuple[str, ...] | Mapping[str, str] | None = None

    def names(self) -> set[str]:
        """The message params this entry reads."""
        if self.params is None:
            return set()
        return set(self.params.values()) if isinstance(self.params, Mapping) else set(self.params)


@attrs.frozen(kw_only=True)
class RoutingSettings:
    routes: Mapping[str, RouteSettings] = attrs.field(factory=dict)
    default_route: str | None = None
    #: logical template name -> provider name -> entry (templates with at least one entry)
    templates: Mapping[str, Mapping[str, TemplateEntry]] = attrs.field(factory=dict)


def routing_settings(extra: Mapping[str, Any], capabilities: Mapping[str, Any],
                     configured: Any = None) -> RoutingSettings:
    """Read and check the routing tables of a config file's top level (``extra``).

    ``capabilities`` maps each configured provider name that could be built to its plugin's
    Capabilities; ``configured`` lists every configured name (also those with problems of their
    own, which are reported elsewhere). Raises one ConfigError listing every problem."""
    known = sorted(set(configured or ()) | set(capabilities))
    problems: list[ConfigError] = []
    routes = {}
    table = extra.get("routes", {})
    if not isinstance(table, Mapping):
        problems.append(ConfigError("'routes' must be a table of [routes.NAME] tables", field="routes"))
        table = {}
    for name, raw in table.items():
        route = _route(str(name), raw, known, problems)
        if route is not None:
            routes[route.name] = route
    default = extra.get("default_route")
    if default is not None and not isinstance(default, str):
        problems.append(ConfigError("default_route must be a string naming a [routes.NAME] table",
                                    field="default_route"))
        default = None
    elif default is not None and default not in table:
        problems.append(ConfigError(f"default_route {default!r} names no [routes.NAME] table"
                                    f"{did_you_mean(default, list(table))}", field="default_route"))
    templates = {}
    raw_templates = extra.get("templates", {})
    if isinstance(raw_templates, Mapping):  # the limits report a [templates] that is not a table
        for name, raw in raw_templates.items():
            if isinstance(raw, Mapping):
                entries = _template(str(name), raw, known, capabilities, problems)
                if entries:
                    templates[str(name)] = entries
    if problems:
        raise ConfigError.combine(problems)
    return RoutingSettings(routes=routes, default_route=default, templates=templates)


def _route(name: str, raw: Any, known: list[str], problems: list[ConfigError]) -> RouteSettings | None:
    where = f"[routes.{name}]"
    if not isinstance(raw, Mapping):
        problems.append(ConfigError(f"{where} must be a table", field="routes"))
        return None
    before = len(problems)

    def problem(field: str, text: str) -> None:
        problems.append(ConfigError(f"{where} {text}", field=field))

    for key in sorted(set(raw) - set(ROUTE_KEYS)):
        problem(key, f"unknown key {key!r}{did_you_mean(key, ROUTE_KEYS)} (known keys: {', '.join(ROUTE_KEYS)})")
    providers = raw.get("providers")
    if not isinstance(providers, (list, tuple)) or not providers or not all(isinstance(p, str) for p in providers):
        problem("providers", "providers must be a non-empty list of provider names ([providers.NAME] tables)")
        providers = []
    for p in providers:
        if p not in known:
            problem("providers", f"provider {p!r} is not configured{did_you_mean(p, known)} "
                                 f"(configured: {', '.join(known) or 'none'})")
    duplicates = sorted({p for p in providers if providers.count(p) > 1})
    if duplicates:
        problem("providers", f"lists {', '.join(map(repr, duplicates))} more than once")
    strategy = raw.get("strategy", "failover")
    if strategy not in STRATEGIES:
        problem("strategy", f"strategy must be one of {', '.join(STRATEGIES)}")
        strategy = "failover"
    weights = raw.get("weights")
    if strategy == "weighted":
        if not isinstance(weights, Mapping):
            problem("weights", 'weights is needed with strategy = "weighted": a table such as '
                               "{ opass = 3, juse = 1 }, one positive integer per provider of the route")
            weights = {}
        else:
            for p in sorted(set(providers) - set(weights)):
                problem("weights", f"weights has no weight for provider {p!r}")
            for p in sorted(set(weights) - set(providers)):
                problem("weights", f"weights names {p!r}, which is not among the route's providers"
                                   f"{did_you_mean(p, providers)}")
            for p, w in weights.items():
                if isinstance(w, bool) or not isinstance(w, int) or w < 1:
                    problem("weights", f"weights: the weight of {p!r} must be a positive integer")
    elif weights is not None:
        problem("weights", 'weights goes with strategy = "weighted"')
    failures = raw.get("breaker_failures", DEFAULT_FAILURES)
    if isinstance(failures, bool) or not isinstance(failures, int) or failures < 0:
        problem("breaker_failures", "breaker_failures must be an integer, 0 or more (0: no breaker)")
    cooldown = raw.get("breaker_cooldown", DEFAULT_COOLDOWN)
    if isinstance(cooldown, bool) or not isinstance(cooldown, (int, float)) or not cooldown > 0:
        problem("breaker_cooldown", "breaker_cooldown must be a number of seconds, more than 0")
    if len(problems) > before:
        return None
    return RouteSettings(name=name, providers=tuple(providers), strategy=strategy,
                         weights=dict(weights or {}), breaker_failures=failures,
                         breaker_cooldown=float(cooldown))


def _template(name: str, raw: Mapping[str, Any], known: list[str], capabilities: Mapping[str, Any],
              problems: list[ConfigError]) -> dict[str, TemplateEntry]:
    entries = {}
    for provider, value in raw.items():
        if provider in TEMPLATE_OWN_KEYS:
            continue
        where = f"[templates.{name}.{provider}]"
        if not isinstance(value, Mapping):
            problems.append(ConfigError(
                f"[templates.{name}]: unknown key {provider!r}: its keys are per_phone and one table per "
                f"provider ({where} with template_id, sign_name, params){did_you_mean(provider, known)}",
                field=provider))
            continue
        if provider not in known:
            problems.append(ConfigError(f"{where}: provider {provider!r} is not configured"
                                        f"{did_you_mean(provider, known)} (configured: {', '.join(known) or 'none'})",
                                        field=provider))
            continue
        entry = _entry(name, provider, value, capabilities.get(provider), problems)
        if entry is not None:
            entries[provider] = entry
    return entries


def _entry(name: str, provider: str, raw: Mapping[str, Any], caps: Any,
           problems: list[ConfigError]) -> TemplateEntry | None:
    where = f"[templates.{name}.{provider}]"
    before = len(problems)

    def problem(field: str, text: str) -> None:
        problems.append(ConfigError(f"{where} {text}", provider=provider, field=field))

    for key in sorted(set(raw) - set(ENTRY_KEYS)):
        problem(key, f"unknown key {key!r}{did_you_mean(key, ENTRY_KEYS)} (known keys: {', '.join(ENTRY_KEYS)})")
    template_id = raw.get("template_id")
    if not isinstance(template_id, str) or not template_id.strip():
        problem("template_id", "template_id must be the vendor's template id (a non-empty string)")
    sign_name = raw.get("sign_name")
    if sign_name is not None and (not isinstance(sign_name, str) or not sign_name.strip()):
        problem("sign_name", "sign_name must be a non-empty string")
    params = raw.get("params")
    if params is not None:
        if isinstance(params, (list, tuple)):
            if not all(isinstance(p, str) and p for p in params):
                problem("params", "params as a list names, in the vendor's order, the message params "
                                  "(non-empty strings)")
            elif caps is not None and not caps.positional_params:
                problem("params", f"provider {provider!r} takes named params: give params as a table "
                                  "{ vendor_name = \"message_name\" }")
            params = tuple(params)
        elif isinstance(params, Mapping):
            if not all(isinstance(k, str) and k and isinstance(v, str) and v for k, v in params.items()):
                problem("params", "params as a table maps vendor param names to message param names (strings)")
            elif caps is not None and not caps.named_params:
                problem("params", f"provider {provider!r} takes positional params: give params as a list of "
                                  "message param names, in the vendor's order")
            params = dict(params)
        else:
            problem("params", "params must be a list (positional vendors) or a table (named vendors)")
    if caps is not None and not caps.templates:
        problem("template_id", f"provider {provider!r} does not send templates")
    if len(problems) > before or not isinstance(template_id, str):
        return None
    return TemplateEntry(provider=provider, template_id=template_id.strip(),
                         sign_name=sign_name, params=params)
