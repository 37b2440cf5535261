"""smsgate: send SMS through Chinese SMS vendors — a small core and one plugin per vendor.

Importing this package is cheap: names are loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    # errors
    "SmsError": "errors", "ConfigError": "errors", "ValidationError": "errors", "ProviderError": "errors",
    "AuthError": "errors", "RateLimited": "errors", "InsufficientBalance": "errors", "TransportError": "errors",
    "LimitsUnavailable": "errors",
    "PushTooLarge": "errors",
    # models
    "Message": "models", "SendResult": "models", "RecipientResult": "models", "RequestOutcome": "models",
    "Reason": "models",
    "Outcome": "models", "Status": "models", "Operation": "provider", "DeliveryReport": "reporting",
    "InboundMessage": "reporting", "TaskSummary": "reporting", "Balance": "reporting", "PullQuery": "reporting",
    "StatisticsQuery": "reporting", "SendStatistics": "reporting", "DayStatistics": "reporting",
    "HttpRequest": "models", "HttpResponse": "models", "CallbackRequest": "reporting", "CallbackResult": "reporting",
    "SendReply": "models", "CHINA_TZ": "provider", "to_jsonable": "models", "converter": "models",
    # plugin authoring
    "hookimpl": "hookspecs", "hookspec": "hookspecs",
    "Provider": "provider", "Capabilities": "provider", "Budget": "provider", "HookContext": "provider",
    "ProviderConfig": "config", "secret": "config", "Wire": "wire", "WireError": "wire",
    # utilities
    "normalise_phone": "phones", "mask_phone": "phones", "segments": "phones", "text_params": "sending.pipeline",
    "mask_phones_in": "phones",
    # embedding
    "Gateway": "sending.gateway", "PluginManager": "plugins", "Receiver": "receiving.receiver",
    "AsyncGateway": "integrations.aio",
}

# Written out (not computed) so type checkers see what is exported; a test keeps it equal to _EXPORTS.
__all__ = [
    "AsyncGateway", "AuthError", "Balance", "Budget", "CHINA_TZ", "CallbackRequest", "CallbackResult",
    "Capabilities", "ConfigError", "DayStatistics", "DeliveryReport", "Gateway", "HookContext", "HttpRequest", "HttpResponse", "InboundMessage",
    "InsufficientBalance", "LimitsUnavailable", "Message", "Operation", "Outcome", "PluginManager", "Provider",
    "ProviderConfig", "ProviderError", "PullQuery", "PushTooLarge", "RateLimited", "Reason", "Receiver",
    "RecipientResult", "RequestOutcome", "SendReply", "SendResult", "SendStatistics", "SmsError", "StatisticsQuery", "Status",
    "TaskSummary", "TransportError", "ValidationError", "Wire", "WireError", "converter", "hookimpl", "hookspec",
    "mask_phone", "mask_phones_in", "normalise_phone", "secret",
    "segments", "text_params", "to_jsonable", "__version__",
]


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:  # pragma: no cover
    from .config import ProviderConfig, secret
    from .wire import Wire, WireError
    from .errors import (AuthError, ConfigError, InsufficientBalance, LimitsUnavailable, ProviderError,
                         PushTooLarge, RateLimited, SmsError, TransportError, ValidationError)
    from .sending.gateway import Gateway
    from .hookspecs import hookimpl, hookspec
    from .models import (HttpRequest, HttpResponse, Message, Outcome, Reason, RecipientResult, RequestOutcome,
                         SendReply, SendResult, Status, converter, to_jsonable)
    from .reporting import (Balance, CallbackRequest, CallbackResult, DayStatistics, DeliveryReport, InboundMessage,
                            PullQuery, SendStatistics, StatisticsQuery, TaskSummary)
    from .phones import mask_phone, mask_phones_in, normalise_phone, segments
    from .sending.pipeline import text_params
    from .integrations.aio import AsyncGateway
    from .plugins import PluginManager
    from .receiving.receiver import Receiver
    from .provider import CHINA_TZ, Budget, Capabilities, HookContext, Operation, Provider
