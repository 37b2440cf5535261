"""The send flow: one function that runs a message through every stage, in order.

``Gateway`` resolves the provider and its config into a :class:`Target` and hands the message here;
nothing else calls the stages one by one. A new stage (ledger, limits, routing) is a step in
:func:`send`, not a step added to ``Gateway.send``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from ..errors import ValidationError
from ..hookspecs import hookimpl
from ..log import get_logger
from ..models import Message, OutcomePart, SendResult
from ..provider import HookContext
from .transport import deadline_after
from .pipeline import check_content, execute_send, merge, normalise_recipients, only, plan, request_outcomes


@attrs.frozen(kw_only=True)
class Target:
    """One configured provider, resolved: what the flow needs to send through it."""

    name: str  # the configured name (a [providers.NAME] table)
    capabilities: Any  # the plugin's Capabilities
    hooks: Any  # the plugin's hooks, scoped to this provider
    context: HookContext  # the context of request 0; request i gets request_index=i
    max_concurrency: int = 4
    ledger: Any = None  # the send ledger (smsgate.sending.ledger.Ledger), or None
    limits: Any = None  # smsgate.sending.limits.Limits: per-phone quotas and the request rate
    rate: Any = None  # the provider's request rate (a limits Rate), or None
    limit_scope: str | None = None  # the send's per-phone quota (a [templates.NAME]); None: its template id
    send_timeout: float = 60.0  # the send's deadline, from its start (the provider's send_timeout)


def send(target: Target, message: Message, log: Any) -> SendResult:
    """Send ``message`` through ``target``; every recipient gets an outcome.

    Stages: check the operation is offered; normalise recipients (one ValidationError naming every
    bad number); check the content against the provider's rules; let plugins validate or replace
    the message; count each phone in its quota (``target.limit_scope``, else the template id,
    names the quota; a phone over it is refused); cut the rest into requests within the vendor's
    limit; claim the key in the ledger (a key used before answers from the ledger here, gives the
    quota back, and nothing is sent); run the requests, each written to the ledger before it
    leaves and after, and each after a slot of the provider's request rate; give back the quota of
    phones whose request never left; merge.

    A stage that is not configured costs nothing: no per-phone quota, no hold; no ledger and no
    key, no journal; no request rate, no gate.
    """
    ctx = deadline_context(target)
    message = prepare(target, normalise_recipients(message), ctx)
    limits = target.limits
    hold = limits.hold_phones(message.to, target.limit_scope or message.template_id) \
        if limits is not None and limits.phone_quotas else None
    refused = hold.refused_results() if hold is not None else []
    sending = only(message, [p for p in message.to if p not in hold.refused]) if hold is not None and refused \
        else message
    batches = plan_requests(target, sending, ctx)
    journal = None
    if target.ledger is not None or message.key is not None:  # (a key without a ledger is refused there)
        from .ledger import stage as ledger_stage  # here: a send without a ledger never imports it

        try:
            journal = ledger_stage.open_send(target.ledger, target.name, ctx.provider, message, batches, ctx.clock,
                                             log)
        except BaseException:
            if hold is not None:  # nothing was sent
                limits.release(hold)
            raise
        if isinstance(journal, SendResult):  # the key was sent before: its recorded outcomes
            if hold is not None:
                limits.release(hold)
            return journal
        if refused and journal is not None:  # recorded as a request that never left: a replay answers the same
            journal.never_left(len(batches), refused)
    results = run_requests(target, batches, journal, log, ctx=ctx)
    if hold is not None:
        limits.settle(hold, results)
    if refused:
        return merge(target.name, message, [*refused, *results], key=None if journal is None else journal.key)
    return merge(target.name, message, results, key=None if journal is None else journal.key, requests=batches)


def deadline_context(target: Target) -> HookContext:
    """The context of a send through ``target`` whose requests all end by ``send_timeout`` from now
    (``ctx.extras["deadline"]``; the transport cuts off what is still open then, and those
    recipients are unknown)."""
    ctx = target.context
    return ctx.derive(extras={**ctx.extras, "deadline": deadline_after(target.send_timeout)})


def with_deadline(target: Target) -> Target:
    """``target`` with :func:`deadline_context` as its context. A route gives each provider's
    attempt its own."""
    return attrs.evolve(target, context=deadline_context(target))


def prepare(target: Target, message: Message, ctx: HookContext | None = None) -> Message:
    """The checks of one provider, on a message whose recipients are normalised: the operation is
    offered, the content keeps the provider's rules, the plugins' ``validate_message`` (which may
    replace the message). Raises ValidationError; nothing is sent. ``ctx``: the send's context
    (by default ``target.context``)."""
    caps, hooks = target.capabilities, target.hooks
    if message.operation not in caps.operations:
        raise ValidationError(f"provider {target.name!r} cannot {message.operation.value}", field="personal")
    check_content(message, caps, target.name)
    if hooks.validate_message.hook.implemented:  # skipped when no plugin has anything to say
        replaced = hooks.validate_message(ctx=target.context if ctx is None else ctx, message=message)
        if replaced is not None:
            message = replaced
    return message


def plan_requests(target: Target, message: Message, ctx: HookContext | None = None) -> Sequence[Message]:
    """``message`` cut into requests within the vendor's limit (none for no recipients)."""
    if not message.to:
        return []
    hooks = target.hooks
    if not hooks.request_limit.hook.implemented:
        if len(message.to) == 1:  # one phone (most sends): one request, whatever the vendor's limit
            return [message]
        return plan(message, target.capabilities.limit(message.operation))
    operation = message.operation
    limit = hooks.request_limit(ctx=target.context if ctx is None else ctx, operation=operation)
    return plan(message, limit or target.capabilities.limit(operation))


def run_requests(target: Target, batches: Sequence[Message], journal: Any, log: Any,
                 start: int = 0, ctx: HookContext | None = None) -> Sequence[OutcomePart]:
    """Run ``batches`` through ``target`` as requests ``start``, ``start + 1``, ... of the send:
    each written to the ledger before it leaves and after, each after a slot of the provider's
    request rate. Every recipient gets an outcome; never raises for vendor or transport failures.
    ``ctx``: the send's context (by default ``target.context``)."""
    if not batches:
        return []
    ctx0 = target.context if ctx is None else ctx
    limits, rate = target.limits, target.rate
    gate = limits.request_gate(target.name, rate) if limits is not None and rate is not None else None
    first = ctx0.request_index

    def context(i: int) -> HookContext:
        return ctx0 if i == first else ctx0.derive(request_index=i)

    if len(batches) == 1:  # the usual send: one request, in its context (no factory, no pool)
        batch = batches[0]
        return request_outcomes(target.hooks, context(start), batch.operation, batch, start, log, journal, gate)

    return execute_send(target.hooks, context, batches[0].operation, batches, target.max_concurrency, log, journal,
                        gate=gate, start=start)


_log = get_logger("smsgate.pipeline")


@hookimpl(trylast=True)
def send_message(target: Any, message: Message) -> SendResult:
    """The core's ``send_message`` hook (what ``Gateway.send`` calls): :func:`send`, or for a
    route (``smsgate.sending.routing.Route``) the routed send. Wrappers (metrics, tracing) run
    around it and see every send whole."""
    if isinstance(target, Target):
        return send(target, message, _log)
    from .routing import send_route

    return send_route(target, message, _log)
