"""The send flow: one function that runs a message through every stage, in order.

``Gateway`` resolves the provider and its config into a :class:`Target` and hands the message here;
nothing else calls the stages one by one. A new stage (ledger, limits, routing) is a step in
:func:`send`, not a step added to ``Gateway.send``.
"""

from __future__ import annotations

from typing import Any

import attrs

from ..errors import ValidationError
from ..hookspecs import hookimpl
from ..log import get_logger
from ..models import Message, SendResult
from ..provider import HookContext
from .ledger import stage as ledger_stage
from .transport import deadline_after
from .pipeline import check_content, execute_send, merge, normalise_recipients, only, plan


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
    """
    caps, hooks, ctx0 = target.capabilities, target.hooks, target.context
    # every request of this send ends by the deadline (the transport cuts off what is still open)
    ctx0 = attrs.evolve(ctx0, extras={**ctx0.extras, "deadline": deadline_after(target.send_timeout)})
    operation = message.operation
    if operation not in caps.operations:
        raise ValidationError(f"provider {target.name!r} cannot {operation.value}", field="personal")
    message = normalise_recipients(message)
    check_content(message, caps, target.name)
    if hooks.validate_message.implemented:  # skipped when no plugin has anything to say
        replaced = hooks.validate_message(ctx=ctx0, message=message)
        if replaced is not None:
            message = replaced
    limits = target.limits
    hold = limits.hold_phones(message.to, target.limit_scope or message.template_id) if limits is not None else None
    refused = hold.refused_results() if hold is not None else []
    sending = only(message, [p for p in message.to if p not in hold.refused]) if hold is not None and refused \
        else message
    limit = hooks.request_limit(ctx=ctx0, operation=operation) if hooks.request_limit.implemented else None
    batches = plan(sending, limit or caps.limit(operation)) if sending.to else []
    try:
        journal = ledger_stage.open_send(target.ledger, target.name, ctx0.provider, message, batches, ctx0.clock,
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
        if journal.before(len(batches), [r.phone for r in refused]) is None:
            journal.after(len(batches), refused)
    results = execute_send(
        hooks,
        lambda i: ctx0 if i == 0 else attrs.evolve(ctx0, request_index=i),
        operation,
        batches,
        target.max_concurrency,
        log,
        journal,
        gate=limits.request_gate(target.name, target.rate) if limits is not None else None,
    )
    if hold is not None:
        limits.settle(hold, results)
    return merge(target.name, message, refused + results, key=None if journal is None else journal.key)


_log = get_logger("smsgate.pipeline")


@hookimpl(trylast=True)
def send_message(target: Target, message: Message) -> SendResult:
    """The core's ``send_message`` hook (what ``Gateway.send`` calls): :func:`send`. Wrappers
    (metrics, tracing) run around it and see every send whole."""
    return send(target, message, _log)
