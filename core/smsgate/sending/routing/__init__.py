"""Routing (docs/routing.md): routes over several providers, failover that cannot double-send,
weighted balancing, logical templates and circuit breakers.

``settings.py`` reads and checks ``[routes.NAME]``, ``default_route`` and ``[templates.NAME.PROVIDER]``;
``templates.py`` makes a logical template each provider's message; ``balancer.py`` is the smooth
weighted round-robin; ``breaker.py`` the circuit breakers (this process, or Redis); ``route.py``
the routed send, a stage of the send flow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...lazy import lazy_exports

# Names load on first use: a Gateway reads the (empty) routing settings of every config, and a
# send to one provider should not import the routed send, the balancer and the breakers.
_EXPORTS = {"SmoothWeighted": "balancer", "Breakers": "breaker", "CIRCUIT_OPEN": "route", "Route": "route",
            "moves": "route", "send_route": "route", "verdict": "route", "RouteSettings": "settings",
            "RoutingSettings": "settings", "TemplateEntry": "settings", "routing_settings": "settings"}

__all__ = ["Breakers", "CIRCUIT_OPEN", "Route", "RouteSettings", "RoutingSettings", "SmoothWeighted",
           "TemplateEntry", "moves", "routing_settings", "send_route", "verdict"]


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover
    from .balancer import SmoothWeighted
    from .breaker import Breakers
    from .route import CIRCUIT_OPEN, Route, moves, send_route, verdict
    from .settings import RouteSettings, RoutingSettings, TemplateEntry, routing_settings
