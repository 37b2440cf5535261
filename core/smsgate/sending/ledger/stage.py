"""The ledger's stage in the send flow.

:func:`open_send` claims the send's key (or makes one up) before anything leaves. When the key was
already used it answers from the ledger instead: the recorded outcomes (a replay), ``unknown`` for
recipients whose request is in flight or was interrupted, or a ValidationError when the key was
used for another message. Otherwise it returns a :class:`Journal`, which writes each request as
``sending`` just before it leaves and its outcomes just after.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from ...errors import ConfigError, LedgerError, ValidationError
from ...models import (Message, Outcome, OutcomePart, Reason, RecipientResult, RequestOutcome, SendResult, part_phones,
                       part_size)
from ..pipeline import covers_in_order, message_segments
from . import SENDING, Attempt, Ledger, LedgerRow, SendRecord, fingerprint

MAX_KEY_LENGTH = 255


class Journal:
    """One send in progress, as the ledger records it. The pipeline calls :meth:`before` for each
    request just before it leaves and :meth:`after` with its outcomes."""

    def __init__(self, ledger: Ledger, key: str, provider: str, vendor: str, clock: Callable[[], float],
                 log: Any, written: int | None = None):
        self.ledger = ledger
        self.key = key
        self.provider = provider
        self.vendor = vendor
        self.clock = clock
        self.log = log
        self._written = written  # the request already written with the key's claim

    def before(self, index: int, phones: Sequence[str]) -> Reason | None:
        """Write the request as ``sending``. A Reason (the request must not leave) when that fails."""
        if index == self._written:
            return None
        try:
            self.ledger.record_request(self.key, Attempt(index=index, provider=self.provider, vendor=self.vendor,
                                                         phones=phones), self.clock())
        except LedgerError as exc:
            self.log.error("smsgate.ledger.write_failed", key=self.key, request=index, recipients=len(phones),
                           error=str(exc))
            return Reason(code="LEDGER", message=f"not sent: the ledger could not record the request: {exc}",
                          not_sent=True)
        return None

    def at(self, provider: str, vendor: str) -> "Journal":
        """This send's journal for a further attempt through another provider (routing)."""
        return Journal(self.ledger, self.key, provider, vendor, self.clock, self.log)

    def never_left(self, index: int, results: Sequence[OutcomePart]) -> None:
        """Record outcomes decided before any request (a limit's refusal) as request ``index``,
        which never left, so that a replay answers the same."""
        if results and self.before(index, [p for r in results for p in part_phones(r)]) is None:
            self.after(index, results)

    def after(self, index: int, results: Sequence[OutcomePart]) -> None:
        """Write the request's outcomes. A failure is logged: the caller still gets the outcomes, and
        the ledger keeps the request as ``sending`` (a replay reports it unknown, never resends)."""
        try:
            self.ledger.settle(self.key, index, results, self.clock())
        except LedgerError as exc:
            self.log.error("smsgate.ledger.settle_failed", key=self.key, request=index,
                           recipients=sum(map(part_size, results)), error=str(exc))


def open_send(ledger: Ledger | None, provider: str, vendor: str, message: Message, batches: Sequence[Message],
              clock: Callable[[], float], log: Any) -> Journal | SendResult | None:
    """Claim the message's key. None without a ledger; a SendResult when the key was used before."""
    key = message.key
    if ledger is None:
        if key is not None:
            raise ConfigError(f"message key {key!r} needs a send ledger: add a [ledger] table with "
                              "url = \"sqlite:///PATH\" or \"postgresql://...\" to the config", field="key")
        return None
    if key is None:
        key = f"auto-{uuid.uuid4().hex}"  # a send without a key is recorded too
    elif not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise ValidationError(f"message key must be a non-empty string of at most {MAX_KEY_LENGTH} characters",
                              field="key")
    first = None
    if len(batches) == 1:  # one request: written with the claim, in the same transaction
        first = Attempt(index=0, provider=provider, vendor=vendor, phones=batches[0].to)
    fp = fingerprint(message)
    record = ledger.begin(key, fp, provider, len(message.to), message_segments(message), clock(), first)
    if record is None:
        return Journal(ledger, key, provider, vendor, clock, log, written=None if first is None else 0)
    if record.fingerprint != fp:
        raise ValidationError(f"key {key!r} was already used for a different message (recipients, template, "
                              "params or text differ); nothing was sent", field="key")
    log.info("smsgate.ledger.replayed", key=key, provider=record.provider, in_flight=record.in_flight)
    return replay(record, message)


def replay(record: SendRecord, message: Message) -> SendResult:
    """The recorded outcome of each of ``message``'s recipients; those without one are unknown."""
    in_flight = Reason(code="IN_FLIGHT", not_sent=False,
                       message=f"an earlier send with key {record.key!r} has no outcome recorded for this recipient "
                               "(still in flight, or interrupted); not sent again")
    if record.once_each():  # the usual send: per request, as it was sent (no object per recipient)
        parts = _request_parts(record, in_flight)
        if covers_in_order(message.to, parts):
            return SendResult(provider=record.provider, outcomes=parts, segments=record.segments, key=record.key,
                              replayed=True)
    latest = record.latest()
    tries: dict[str, list[RecipientResult]] = {}  # a phone's rows before its latest: failover attempts
    for earlier in record.rows:
        if earlier is not latest.get(earlier.phone):
            tries.setdefault(earlier.phone, []).append(earlier.result(in_flight))
    recipients = []
    for phone in message.to:
        row = latest.get(phone)
        if row is None:
            recipients.append(RecipientResult(phone=phone, outcome=Outcome.UNKNOWN, reason=in_flight))
        else:
            result = row.result(in_flight)
            if result.provider == record.provider:  # as the original result had it
                result = attrs.evolve(result, provider=None)
            if phone in tries:
                result = attrs.evolve(result, earlier=tuple(tries[phone]))
            recipients.append(result)
    return SendResult(provider=record.provider, recipients=tuple(recipients), segments=record.segments,
                      key=record.key, replayed=True)


def _request_parts(record: SendRecord, in_flight: Reason) -> list[OutcomePart]:
    """Each request's recorded outcome as stored parts: one shared outcome for its phones, a
    phone's own row (a refusal of its own, a report) as its own result."""
    own: dict[int, dict[str, LedgerRow]] = {}
    for row in record.own_rows:
        own.setdefault(row.request_index, {})[row.phone] = row
    parts: list[OutcomePart] = []
    for q in record.requests:
        provider = None if q.provider == record.provider else q.provider  # as the original result had it
        if q.outcome == SENDING:
            shared = RequestOutcome(phones=q.phones, outcome=Outcome.UNKNOWN, reason=in_flight, provider=provider)
        else:
            shared = RequestOutcome(phones=q.phones, outcome=Outcome(q.outcome), message_id=q.message_id,
                                    reason=q.reason(), request_id=q.request_id, provider=provider)
        rows = own.get(q.request_index)
        if not rows:
            parts.append(shared)
            continue
        run: list[str] = []
        for phone in q.phones:
            own_row = rows.get(phone)
            if own_row is None:
                run.append(phone)
                continue
            if run:
                parts.append(attrs.evolve(shared, phones=tuple(run)))
                run = []
            result = own_row.result(in_flight)
            parts.append(attrs.evolve(result, provider=None) if result.provider == record.provider else result)
        if run:
            parts.append(attrs.evolve(shared, phones=tuple(run)))
    return parts
