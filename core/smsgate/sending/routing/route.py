"""The routed send: one message, several providers, and no recipient ever sent twice.

The rule: a recipient moves to the next provider only when its outcome proves nothing was sent
(rejected with ``not_sent``: the vendor refused it, the connection was never made, a limit refused
the request before it left); ``unknown`` never moves; accepted is final.

The stages, in order: recipients normalised once; the message made for each provider (a logical
template's vendor id, sign name and params; a provider without an entry for the template is
left out) and checked against every provider's rules before anything is sent; per-phone quotas
counted once for the whole send; then, provider by provider in the route's order (its breaker
permitting), the recipients still unsent go out through the ordinary per-provider requests. The
send ledger's key is claimed once, before the first request: a replay of the key answers the
whole routed result and sends nothing anywhere. Each attempt is a further request of the same key
(the next ``request_index``, its own provider), so the ledger holds every attempt of every phone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from ...errors import ValidationError
from ...models import Message, Outcome, OutcomePart, Reason, RecipientResult, SendResult, attempt_for, part_phones
from ...phones import mask_phone
from ..flow import Target, plan_requests, prepare, run_requests, with_deadline
from ..ledger import stage as ledger_stage
from ..pipeline import in_order, message_segments, normalise_recipients, only
from .templates import check_params, for_provider

#: reason codes the core gives to refusals of its own (not the provider's doing): they move the
#: recipient on but say nothing about the provider's health
OWN_CODES = frozenset({"RATE_LIMITED", "LEDGER", "PLUGIN", "INVALID", "ERROR"})
#: the request failed on the way (never connected, timed out, broke): the provider's trouble
TRANSPORT_CODES = frozenset({"CONNECT", "TRANSPORT"})
CIRCUIT_OPEN = "CIRCUIT_OPEN"


@attrs.frozen(kw_only=True)
class Route:
    """A resolved route for one send: what :func:`send_route` needs."""

    name: str | None  #: the [routes.NAME] (None: a logical template sent to one named provider)
    targets: tuple[Target, ...]  #: the providers in this send's order
    #: the logical template's entries by provider name; None when the message's template is not one
    template: Mapping[str, Any] | None = None
    breakers: Any = None  #: smsgate.sending.routing.Breakers, or None (no breaker)
    breaker_failures: int = 0
    breaker_cooldown: float = 30.0
    limit_scope: str | None = None

    @property
    def label(self) -> str:
        return f"route {self.name!r}" if self.name else f"provider {self.targets[0].name!r}"


def moves(result: OutcomePart) -> bool:
    """The failover rule: only an outcome that proves nothing was sent moves to the next provider."""
    return result.outcome is Outcome.REJECTED and result.reason is not None and result.reason.not_sent


def verdict(results: Sequence[OutcomePart]) -> bool | None:
    """What an attempt says of its provider, for its breaker: True it works (something accepted),
    False it failed (transport failures, or the vendor refused everything as not sent), None
    nothing (the core's own refusals: rate, ledger, plugin)."""
    if any(r.outcome is Outcome.ACCEPTED for r in results):
        return True
    codes = {r.reason.code for r in results if r.reason is not None}
    if codes & TRANSPORT_CODES:
        return False
    if results and all(moves(r) for r in results) and not codes & OWN_CODES:
        return False
    return None


def send_route(route: Route, message: Message, log: Any) -> SendResult:
    """Send ``message`` along ``route``; every recipient gets one final outcome (and its earlier
    attempts). Raises ValidationError before anything is sent when any provider's rules refuse it."""
    message = normalise_recipients(message)
    legs = _legs(route, message, log)
    first_target = legs[0][0]
    limits = first_target.limits
    hold = (limits.hold_phones(message.to, route.limit_scope or message.template_id, route.name)
            if limits is not None else None)
    # outcomes kept as the requests gave them (no object per recipient): a moved phone's attempts
    # so far are a tuple of stored outcomes, one tuple shared by the phones that moved together
    tried = _Tries()
    final: list[OutcomePart] = []  # outcomes that did not move: final, in each attempt's order
    first_attempt = True
    refused = hold.refused_results() if hold is not None else []
    pending = [p for p in message.to if hold is None or p not in hold.refused]
    journal: Any = None
    claimed = False
    index = 0  # the next request's number within the send
    passes: list[Any] = []
    try:
        for target, vendor_message in legs:
            if not pending:
                break
            granted = None
            if route.breakers is not None and route.breaker_failures:
                granted = route.breakers.allow(target.name, route.breaker_cooldown)
                if granted is None:
                    log.info("smsgate.route.skipped", route=route.name, provider=target.name,
                             reason="breaker open", recipients=len(pending))
                    continue
                passes.append(granted)
            batches = plan_requests(target, only(vendor_message, pending))
            taken = len(batches)  # request numbers this attempt uses
            if not claimed:
                journal = ledger_stage.open_send(target.ledger, target.name, target.context.provider, message,
                                                 batches, target.context.clock, log)
                claimed = True
                if isinstance(journal, SendResult):  # the key was sent before: nothing goes anywhere
                    _give_back(route, limits, hold, passes)
                    return journal
                first_target = target
                if refused and journal is not None:  # the number after this attempt's requests
                    journal.never_left(len(batches), refused)
                    taken += 1
            elif journal is not None:
                journal = journal.at(target.name, target.context.provider)
            results = run_requests(with_deadline(target), batches, journal, log, start=index)
            index += taken
            if granted is not None:
                passes.remove(granted)
                route.breakers.record(granted, verdict(results), route.breaker_failures, route.breaker_cooldown)
            moved: list[str] = []
            provider = None if target.name == first_target.name else target.name
            for part in results:
                if moves(part):
                    tried.add(part_phones(part), attrs.evolve(part, provider=target.name))
                    moved.extend(part_phones(part))
                elif first_attempt:  # no earlier attempts: the part as it is
                    final.append(part if part.provider == provider else attrs.evolve(part, provider=provider))
                else:  # each run of phones with the same earlier attempts: the part for them
                    final.extend(_with_earlier(part, provider, run, chain)
                                 for run, chain in tried.runs(part_phones(part)))
            first_attempt = False
            if moved and target is not legs[-1][0]:
                log.info("smsgate.route.failover", route=route.name, provider=target.name,
                         recipients=len(moved), phones=[mask_phone(p) for p in moved[:10]])
            pending = moved
    except BaseException:
        if not claimed:
            _give_back(route, limits, hold, passes)
        raise
    never_tried = [p for p in pending if p not in tried.of]
    if never_tried:  # every provider's breaker was open: nothing left for them
        reason = Reason(code=CIRCUIT_OPEN, not_sent=True,
                        message=f"{route.label}: every provider is skipped for now (circuit breaker open "
                                f"after repeated failures; tried again after {route.breaker_cooldown:g} s)")
        closed = [RecipientResult(phone=p, outcome=Outcome.REJECTED, reason=reason) for p in never_tried]
        log.warning("smsgate.route.all_open", route=route.name, recipients=len(closed))
        refused = refused + closed
    if not claimed:  # no request went out: record the refusals, so that a replay answers the same
        journal = ledger_stage.open_send(first_target.ledger, first_target.name, first_target.context.provider,
                                         message, [], first_target.context.clock, log)
        if isinstance(journal, SendResult):
            _give_back(route, limits, hold, [])
            return journal
        if journal is not None:
            journal.never_left(0, refused)
    elif never_tried and journal is not None:
        journal.at(first_target.name, first_target.context.provider).never_left(index, closed)
    # refused by the last provider tried: that refusal is final, the ones before it earlier attempts
    final.extend(_with_earlier(chain[-1], None if chain[-1].provider == first_target.name else chain[-1].provider,
                               run, chain[:-1])
                 for run, chain in tried.runs([p for p in pending if p in tried.of]))
    final.extend(r if r.provider != first_target.name else attrs.evolve(r, provider=None) for r in refused)
    if hold is not None:
        limits.settle(hold, final)
    return SendResult(provider=first_target.name, outcomes=in_order(first_target.name, message.to, final),
                      segments=message_segments(message), key=None if journal is None else journal.key)


class _Tries:
    """The attempts of the phones that moved on so far: phone -> a tuple of stored outcomes (each
    with its provider), the same tuple object for every phone that moved together."""

    def __init__(self) -> None:
        self.of: dict[str, tuple[OutcomePart, ...]] = {}
        # (earlier tuple, new attempt) -> the longer tuple; the key objects are kept alive in the
        # value, so their ids cannot be reused while cached
        self._longer: dict[tuple[int, int], tuple[tuple[OutcomePart, ...], OutcomePart, tuple[OutcomePart, ...]]] = {}

    def add(self, phones: tuple[str, ...], attempt: OutcomePart) -> None:
        alone = (attempt,)
        of, longer = self.of, self._longer
        for phone in phones:
            before = of.get(phone)
            if before is None:
                of[phone] = alone
                continue
            key = (id(before), id(attempt))
            known = longer.get(key)
            if known is None:
                known = longer[key] = (before, attempt, before + alone)
            of[phone] = known[2]

    def runs(self, phones: Sequence[str]) -> list[tuple[list[str], tuple[OutcomePart, ...]]]:
        """``phones`` (each with attempts) cut into runs sharing one tuple of attempts, in order."""
        out: list[tuple[list[str], tuple[OutcomePart, ...]]] = []
        of = self.of
        for phone in phones:
            chain = of.pop(phone)
            if out and out[-1][1] is chain:
                out[-1][0].append(phone)
            else:
                out.append(([phone], chain))
        return out


def _with_earlier(part: OutcomePart, provider: str | None, phones: list[str],
                  earlier: tuple[OutcomePart, ...]) -> OutcomePart:
    """``part``'s outcome for ``phones`` (some or all of its phones), at ``provider``, after ``earlier``."""
    if isinstance(part, RecipientResult):
        return attrs.evolve(part, provider=provider, earlier=tuple(attempt_for(e, part.phone) for e in earlier))
    return attrs.evolve(part, phones=tuple(phones), provider=provider, earlier=earlier)


def _give_back(route: Route, limits: Any, hold: Any, passes: list[Any]) -> None:
    """Nothing was sent: the quota counted and the breakers' trials go back."""
    if hold is not None:
        limits.release(hold)
    for granted in passes:
        route.breakers.record(granted, None, route.breaker_failures, route.breaker_cooldown)


def _legs(route: Route, message: Message, log: Any) -> list[tuple[Target, Message]]:
    """Each provider's message, checked by its rules; providers without a template entry left out."""
    template = route.template
    name = message.template_id
    if template is not None:
        check_params(message, str(name), template)
    legs = []
    for target in route.targets:
        vendor_message = message
        if template is not None:
            entry = template.get(target.name)
            if entry is None:
                log.debug("smsgate.route.no_template", route=route.name, provider=target.name, template=name)
                continue
            vendor_message = for_provider(message, str(name), entry)
        legs.append((target, prepare(target, vendor_message)))
    if not legs:
        raise ValidationError(f"template {name!r} has no entry for any provider of {route.label} (add "
                              f"[templates.{name}.PROVIDER] tables)", field="template_id")
    return legs
