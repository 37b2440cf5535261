"""smsgate's pluggy hook specifications. Specs only: the implementations live in plugins.

A *provider* plugin declares itself with a :class:`smsgate.Provider` (read at discovery, without
importing the hooks; the older way is the :func:`smsgate_provider` hook) and implements the request
hooks (:func:`validate_message`, :func:`build_request`, :func:`sign`, :func:`parse_response`) and,
if its vendor pushes, :func:`verify_callback` and :func:`parse_callback`. The core calls a
provider's hooks only for that provider's own work, so a provider never asks "is this mine?".

Any other plugin is a *wrapper*: its ``@hookimpl(wrapper=True)`` implementations of the same hooks
run around every provider's, for logging, metrics, auditing or test capture.

Every hook that takes ``ctx`` gets a :class:`smsgate.HookContext`: provider name, its config
object, the operation, and the clock and nonce to use (fixed in tests).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Union

import pluggy

if TYPE_CHECKING:  # the hooks' real types; importing them here at run time would cost every import
    from .models import (Balance, CallbackRequest, CallbackResult, DeliveryReport, HttpRequest, HttpResponse,
                         InboundMessage, Message, Operation, PullQuery, SendReply, SendResult, SendStatistics,
                         StatisticsQuery, TaskSummary)
    from .provider import HookContext, Provider
    from .sending.flow import Target

    #: what ``build_request`` gets as ``payload``, by operation
    Payload = Union[Message, PullQuery, StatisticsQuery, None]
    #: what ``parse_response`` returns, by operation
    VendorResult = Union[SendReply, list[DeliveryReport], list[InboundMessage], Balance, SendStatistics]

hookspec = pluggy.HookspecMarker("smsgate")
hookimpl = pluggy.HookimplMarker("smsgate")


@hookspec(firstresult=True)
def smsgate_provider() -> Provider | None:
    """Declare a provider: return a :class:`smsgate.Provider` (name, Config class, capabilities,
    simulator path).

    Called once per plugin when the plugin manager loads it, directly on that plugin (wrappers do
    not see this call). A plugin that implements this hook is a provider; one provider per plugin.
    This is the older way to declare a provider: a plugin whose entry point names its
    ``Provider`` declaration is listed without importing its hooks, and does not implement this
    hook (see docs/writing-a-plugin.md).
    """


@hookspec(firstresult=True)
def validate_message(ctx: HookContext, message: Message) -> Message | None:
    """Check a message against the vendor's rules before any request is built.

    Called once per :meth:`Gateway.send`, after recipients were normalised, with the whole message.
    Raise :class:`smsgate.ValidationError` naming the field to refuse it (nothing is sent then).
    May return a replacement :class:`smsgate.Message` (for example params rewritten to the form the
    vendor wants); return None to keep it as it is. First non-None result wins.
    """


@hookspec(firstresult=True)
def request_limit(ctx: HookContext, operation: Operation) -> int | None:
    """The most recipients one request of ``operation`` may carry under ``ctx.config``.

    Optional: without it the pipeline uses ``Capabilities.max_recipients``. A provider whose
    limit is configurable (guodu's ``max_phones``) returns it here. First non-None result wins.
    """


@hookspec(firstresult=True)
def build_request(ctx: HookContext, operation: Operation, payload: Payload) -> HttpRequest | None:
    """Build the unsigned :class:`smsgate.HttpRequest` for one vendor call.

    ``operation`` is a :class:`smsgate.Operation`. ``payload`` is, for ``send`` and
    ``send_batch``, a :class:`smsgate.Message` whose ``to`` holds this request's recipients only
    (already normalised to 11 digits and within the provider's limit); for ``pull_reports`` a
    :class:`smsgate.PullQuery`; for ``pull_inbound`` and ``balance`` None.
    Called once per request. First non-None result wins.
    """


@hookspec(firstresult=True)
def sign(ctx: HookContext, operation: Operation, request: HttpRequest) -> HttpRequest | None:
    """Return ``request`` signed the way the vendor wants (headers, body fields, MAC ...).

    Called once per request, right after :func:`build_request`, with its result. A vendor that
    signs nothing may leave this hook out; the request is then sent as built. Take the time and
    nonce from ``ctx`` (``ctx.timestamp()``, ``ctx.nonce()``), never from the system directly.
    First non-None result wins.
    """


@hookspec(firstresult=True)
def transmit(ctx: HookContext, request: HttpRequest) -> HttpResponse | None:
    """Send a signed :class:`smsgate.HttpRequest` and return the :class:`smsgate.HttpResponse`.

    The core implements this over its shared urllib3 pool (``trylast``); it raises
    :class:`smsgate.TransportError`. Providers normally leave it alone (the loopback provider
    answers in-process for its ``memory://`` URL). Wrappers see every exchange here.
    First non-None result wins.
    """


@hookspec(firstresult=True)
def parse_response(ctx: HookContext, operation: Operation, request: HttpRequest,
                   response: HttpResponse) -> VendorResult | None:
    """Turn the vendor's :class:`smsgate.HttpResponse` into a result, or raise a classified error.

    Returns, by operation: ``send``/``send_batch`` -> :class:`smsgate.SendReply`;
    ``pull_reports`` -> a list of :class:`smsgate.DeliveryReport`; ``pull_inbound`` -> a list of
    :class:`smsgate.InboundMessage`; ``balance`` -> :class:`smsgate.Balance`.
    Raise :class:`smsgate.ProviderError` (or a subclass: ``AuthError``, ``RateLimited``,
    ``InsufficientBalance``) with the vendor's code, text and request id, and ``not_sent=True``
    only when the answer proves the vendor did not take the request.
    Called once per response. First non-None result wins.
    """


@hookspec(firstresult=True)
def send_message(ctx: HookContext, target: Target, message: Message) -> SendResult | None:
    """Send one message as a whole and return its :class:`smsgate.SendResult`.

    :meth:`Gateway.send` calls it once per send; ``ctx`` is the send's context (``ctx.operation``
    is ``send`` or ``send_batch``), ``target`` the resolved provider
    (``smsgate.sending.flow.Target``), ``message`` as the application gave it. The core implements
    it (``trylast``) with the send flow: validation, planning, the vendor requests, the merge. It
    exists to be wrapped: a ``@hookimpl(wrapper=True)`` sees every send whole (its
    ``ValidationError``, or every recipient's outcome). First non-None result wins.
    """


@hookspec(firstresult=True)
def vendor_request(ctx: HookContext, operation: Operation, payload: Payload, hooks: Any) -> VendorResult | None:
    """Make one vendor call: :func:`build_request` -> :func:`sign` -> :func:`transmit` ->
    :func:`parse_response`, returning what ``parse_response`` returned or raising the classified
    :class:`smsgate.ProviderError` / :class:`smsgate.TransportError`.

    Called once per vendor call of every kind (each request of a send, each pull, each balance
    query). ``payload`` is as for :func:`build_request`; ``hooks`` are the provider's scoped hook
    callers that the core's implementation (``trylast``) runs. It exists to be wrapped: a
    ``@hookimpl(wrapper=True)`` sees each call whole (its time, result or error, vendor code and
    request id). First non-None result wins.
    """


@hookspec(firstresult=True)
def verify_callback(ctx: HookContext, request: CallbackRequest) -> bool | None:
    """Decide whether a push (:class:`smsgate.CallbackRequest`) really comes from the vendor.

    Return True to accept; return False or raise :class:`smsgate.AuthError` to refuse (nothing
    is parsed or dispatched then). Compare secrets in constant time. A provider whose vendor
    gives no way to verify returns True and says in its docs how to protect the endpoint.
    ``ctx.extras["replay_store"]`` holds the replay-protection store for nonce checks.
    First non-None result wins; no implementation at all means refused.
    """


@hookspec(firstresult=True)
def parse_callback(ctx: HookContext, request: CallbackRequest) -> CallbackResult | None:
    """Parse a verified push into a :class:`smsgate.CallbackResult`: its events
    (:class:`smsgate.DeliveryReport`, :class:`smsgate.InboundMessage`, :class:`smsgate.TaskSummary`)
    and the HTTP answer the vendor's document asks for.

    Raise :class:`smsgate.ValidationError` for a malformed body. First non-None result wins.
    """


@hookspec(firstresult=True)
def callback_refusal(ctx: HookContext, status: int, reason: str) -> HttpResponse | None:
    """The answer to a push the receiver refuses (``status`` 4xx or 5xx; ``reason`` its one-line
    text), in the vendor's own answer shape, so the vendor's logs show why. Called for configured
    providers only. The answer keeps ``status`` as its HTTP status. None (or no implementation):
    the core's ``{"error": reason}``. First non-None result wins.
    """


@hookspec
def on_report(report: DeliveryReport, event_id: int) -> None:
    """Handle one delivery report (:class:`smsgate.DeliveryReport`), pushed or pulled.

    Called by a :class:`smsgate.receiving.Receiver` (``smsgate serve``, ``smsgate poll``) from its
    handler threads, after the report was committed to the spool and the vendor was answered;
    never on the request's thread. ``event_id`` is the spool's id for the event, stable across
    restarts: key side effects on it, since a call may be repeated after a crash. Raising an
    exception leaves the event for a retry with backoff (all implementations run again).
    Every implementation is called; results are ignored.
    """


@hookspec
def on_inbound(message: InboundMessage, event_id: int) -> None:
    """Handle one inbound SMS (:class:`smsgate.InboundMessage`), pushed or pulled.

    Same calling rules as :func:`on_report`: from the receiver's handler threads, after the event
    was stored; ``event_id`` is stable; an exception means a retry later. Every implementation is
    called; results are ignored.
    """


@hookspec
def on_task_summary(summary: TaskSummary, event_id: int) -> None:
    """Handle a vendor's batch-task summary (:class:`smsgate.TaskSummary`, juse's sms_task_report).

    Same calling rules as :func:`on_report`. Every implementation is called; results are ignored.
    """
