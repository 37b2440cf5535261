"""OpenTelemetry traces (extra ``otel``: ``pip install 'smsgate[otel]'``, opentelemetry-api only).

:class:`Tracing` is a wrapper plugin on the hooks: one span per send (around ``send_message``)
and, inside it, one span per vendor call (around ``vendor_request``), with the provider, the
operation, the outcome, the vendor's code and request id. It uses only opentelemetry-api: until
the application configures an SDK (a ``TracerProvider`` with an exporter) every span is a no-op.

Turn it on with a ``[tracing]`` table in the config, or by hand::

    Tracing().install(gateway.plugins)          # or Tracing(tracer_provider=...)

Attributes never hold phone numbers, message content or error texts (a refused message's error
names its bad numbers): only counts, codes and ids.
"""

from __future__ import annotations

import threading
from typing import Any

import opentelemetry.trace  # noqa: F401 - the extra: without it, importing this module fails at once

from ..errors import ProviderError, TransportError, ValidationError
from ..hookspecs import hookimpl
from ..models import Operation, SendResult

PREFIX = "smsgate."


def _operation(value: Any) -> str:
    return value.value if isinstance(value, Operation) else str(value or "")


class Tracing:
    """The tracing plugin. ``tracer_provider``: an OpenTelemetry ``TracerProvider`` (default: the
    global one, which is a no-op until the application sets an SDK provider)."""

    _default: "Tracing | None" = None
    _default_lock = threading.Lock()

    def __init__(self, tracer_provider: Any = None):
        from opentelemetry import trace

        from .. import __version__

        self._trace = trace
        self.tracer = trace.get_tracer("smsgate", __version__, tracer_provider=tracer_provider)
        self._live = tracer_provider is not None
        # the api's stand-ins while no SDK is configured (getattr: not in the api's __all__)
        self._no_sdk = tuple(t for t in (getattr(trace, "ProxyTracerProvider", None),
                                         getattr(trace, "NoOpTracerProvider", None)) if t is not None)

    def live(self) -> bool:
        """False while spans would be no-ops (no SDK configured, no provider given): the wrappers
        then skip making them, which costs a send about as much as the rest of the pipeline's own
        work. Checked on every call, so an SDK configured later is picked up at once."""
        if not self._live:  # the global provider is set once: once real, it stays real
            self._live = not isinstance(self._trace.get_tracer_provider(), self._no_sdk)
        return self._live

    @classmethod
    def default(cls) -> "Tracing":
        """The process-wide instance on the global tracer provider (what ``[tracing]`` installs)."""
        with cls._default_lock:
            if cls._default is None:
                cls._default = cls()
            return cls._default

    def install(self, plugins: Any) -> "Tracing":
        """Register with ``plugins`` (a :class:`smsgate.PluginManager`) unless already there."""
        if not plugins.is_registered(self):
            plugins.register(self)
        return self

    def _failed(self, span: Any, outcome: str | None, description: str) -> None:
        if outcome is not None:
            span.set_attribute(PREFIX + "outcome", outcome)
        span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, description))

    @hookimpl(wrapper=True)
    def send_message(self, ctx: Any, message: Any) -> Any:
        if not self.live():
            return (yield)
        operation = _operation(message.operation)
        attributes = {PREFIX + "provider": ctx.provider, PREFIX + "operation": operation,
                      PREFIX + "recipients": len(message.to)}
        with self.tracer.start_as_current_span(f"smsgate {operation}", attributes=attributes,
                                               record_exception=False, set_status_on_exception=False) as span:
            try:
                result = yield
            except ValidationError as exc:  # its text names the bad numbers: keep only the field
                self._failed(span, "invalid", f"invalid message ({exc.field or 'message'})")
                raise
            except BaseException as exc:
                self._failed(span, "error", type(exc).__name__)
                raise
            if isinstance(result, SendResult):
                accepted, rejected, unknown = len(result.accepted), len(result.rejected), len(result.unknown)
                outcome = ("accepted" if result.ok else "unknown" if unknown else
                           "rejected" if not accepted else "partial")
                codes = sorted({r.reason.code for r in result.iter_outcomes() if r.reason is not None})
                span.set_attributes({PREFIX + "outcome": outcome, PREFIX + "accepted": accepted,
                                     PREFIX + "rejected": rejected, PREFIX + "unknown": unknown})
                if codes:
                    span.set_attribute(PREFIX + "vendor_codes", codes)
                if result.request_ids:
                    span.set_attribute(PREFIX + "request_ids", result.request_ids)
                if not result.ok:
                    self._failed(span, None, f"{rejected} rejected, {unknown} unknown")
            return result

    @hookimpl(wrapper=True)
    def vendor_request(self, ctx: Any, operation: Any, payload: Any) -> Any:
        if not self.live():
            return (yield)
        op = _operation(operation)
        attributes = {PREFIX + "provider": ctx.provider, PREFIX + "operation": op,
                      PREFIX + "request_index": ctx.request_index}
        to = getattr(payload, "to", None)
        if to is not None:
            attributes[PREFIX + "recipients"] = len(to)
        kind = self._trace.SpanKind.CLIENT
        with self.tracer.start_as_current_span(f"smsgate {ctx.provider} {op}", kind=kind, attributes=attributes,
                                               record_exception=False, set_status_on_exception=False) as span:
            try:
                result = yield
            except TransportError as exc:
                span.set_attribute(PREFIX + "transport_error", exc.kind)
                self._failed(span, "not_sent" if exc.not_sent else "unknown", f"transport: {exc.kind}")
                raise
            except ProviderError as exc:
                if exc.code:
                    span.set_attribute(PREFIX + "vendor_code", exc.code)
                if exc.request_id:
                    span.set_attribute(PREFIX + "request_id", str(exc.request_id))
                self._failed(span, "rejected" if exc.not_sent else "unknown",
                             f"vendor code {exc.code or type(exc).__name__}")
                raise
            except BaseException as exc:
                self._failed(span, "unknown", type(exc).__name__)
                raise
            span.set_attribute(PREFIX + "outcome", "ok")
            request_id = getattr(result, "request_id", None)
            if request_id:
                span.set_attribute(PREFIX + "request_id", str(request_id))
            rejected = getattr(result, "rejected", None)
            if rejected:  # a send the vendor took in part: the codes of the phones it refused
                span.set_attributes({PREFIX + "rejected": len(rejected),
                                     PREFIX + "vendor_codes": sorted({r.code for r in rejected.values()})})
            if isinstance(result, list):
                span.set_attribute(PREFIX + "events", len(result))
            return result


__all__ = ["Tracing"]
