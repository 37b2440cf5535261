"""What an optional extra brings: Prometheus metrics (``metrics``), OpenTelemetry traces (``otel``);
and the asyncio API (``aio.AsyncGateway``), which needs no extra.

Metrics and tracing are wrapper plugins on the hooks, never calls inside the core. A config table turns one on
for every :class:`smsgate.Gateway` built from that config::

    [metrics]            # pip install 'smsgate[metrics]'
    [tracing]            # pip install 'smsgate[otel]'

(``enabled = false`` keeps the table but switches the plugin off.) See docs/observability.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError

#: config table -> (its keys and their types, the extra that brings it)
TABLES: dict[str, tuple[dict[str, type], str]] = {
    "metrics": ({"enabled": bool, "path": str}, "metrics"),
    "tracing": ({"enabled": bool}, "otel"),
}


def table(settings: Any, name: str) -> dict[str, Any] | None:
    """The checked ``[name]`` table of ``settings``, or None when it is absent or ``enabled = false``."""
    raw = settings.extra.get(name)
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise ConfigError(f"[{name}] must be a table")
    keys, _ = TABLES[name]
    for key, value in raw.items():
        if key not in keys:
            raise ConfigError(f"[{name}]: unknown key {key!r} (known keys: {', '.join(sorted(keys))})", field=key)
        if not isinstance(value, keys[key]):
            raise ConfigError(f"[{name}] {key} must be {keys[key].__name__}, not {type(value).__name__}", field=key)
    if raw.get("enabled", True) is False:
        return None
    return dict(raw)


def _missing_extra(name: str) -> ConfigError:
    extra = TABLES[name][1]
    return ConfigError(f"[{name}] needs the '{extra}' extra: pip install 'smsgate[{extra}]'")


def enable_configured(plugins: Any, settings: Any, gateway: Any = None) -> None:
    """Register the plugins that ``settings`` turns on (``[metrics]``, ``[tracing]``) with
    ``plugins`` (a :class:`smsgate.PluginManager`), once each; the metrics also export
    ``gateway``'s circuit breakers. ``Gateway`` calls this."""
    if table(settings, "metrics") is not None:
        try:
            from .metrics import default_metrics

            plugin = default_metrics()
        except ImportError:
            raise _missing_extra("metrics") from None
        plugin.install(plugins)
        if gateway is not None:
            plugin.watch(gateway)
    if table(settings, "tracing") is not None:
        try:
            from .tracing import Tracing

            tracing = Tracing.default()
        except ImportError:
            raise _missing_extra("tracing") from None
        tracing.install(plugins)
