"""Routing (docs/routing.md): routes over several providers, failover that cannot double-send,
weighted balancing, logical templates and circuit breakers.

``settings.py`` reads and checks ``[routes.NAME]``, ``default_route`` and ``[templates.NAME.PROVIDER]``;
``templates.py`` makes a logical template each provider's message; ``balancer.py`` is the smooth
weighted round-robin; ``breaker.py`` the circuit breakers (this process, or Redis); ``route.py``
the routed send, a stage of the send flow.
"""

from __future__ import annotations

from .balancer import SmoothWeighted
from .breaker import Breakers
from .route import CIRCUIT_OPEN, Route, moves, send_route, verdict
from .settings import RouteSettings, RoutingSettings, TemplateEntry, routing_settings

__all__ = ["Breakers", "CIRCUIT_OPEN", "Route", "RouteSettings", "RoutingSettings", "SmoothWeighted",
           "TemplateEntry", "moves", "routing_settings", "send_route", "verdict"]
