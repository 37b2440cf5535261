"""Limits on sending: per-phone quotas, vendor request rates, vendor call budgets (see
docs/limits.md). ``limiter.py`` is the stage the send flow and the Gateway call; ``settings.py``
reads the config; ``rates.py`` the "5/hour" notation; the stores keep the counts, in this process
(``memory_store.py``) or in Redis for every process and host (``redis_store.py``).

Names load on first use (PEP 562): a Gateway whose config sets no limit reads its settings but
never imports the limiter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...lazy import lazy_exports

_EXPORTS = {
    "NEVER_LEFT": "limiter", "RATE_LIMITED": "limiter", "Limits": "limiter", "PhoneHold": "limiter",
    "open_store": "limiter", "MemoryStore": "memory_store", "Rate": "rates", "parse_rate": "rates",
    "parse_rates": "rates", "LimitsSettings": "settings", "limits_settings": "settings",
}

__all__ = ["Limits", "LimitsSettings", "MemoryStore", "NEVER_LEFT", "PhoneHold", "RATE_LIMITED", "Rate",
           "limits_settings", "open_store", "parse_rate", "parse_rates"]

__getattr__ = lazy_exports(__name__, _EXPORTS, globals())

if TYPE_CHECKING:  # pragma: no cover
    from .limiter import NEVER_LEFT, RATE_LIMITED, Limits, PhoneHold, open_store
    from .memory_store import MemoryStore
    from .rates import Rate, parse_rate, parse_rates
    from .settings import LimitsSettings, limits_settings
