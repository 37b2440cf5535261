"""The send ledger: every send and each of its recipients, remembered across calls, processes and hosts.

What it is for: an idempotency key sent again answers from here instead of reaching the vendor;
each request is written *before* it leaves (outcome ``sending``) and updated with its outcome after,
so a process killed mid-send never leads to a resend; delivery reports (pushed or pulled) are
matched to the rows they report on.

Backends (``[ledger] url`` in the config): ``sqlite:///path`` (:mod:`.sqlite`, one host, several
processes) and ``postgresql://...`` (:mod:`.postgres`, several hosts). Both are the same SQL
(:mod:`.sql`); the send flow uses a ledger only through :class:`Ledger` (:mod:`.stage` is the flow's
stage). See docs/ledger.md.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from itertools import chain
from typing import Any, Protocol

import attrs

from ...errors import ConfigError
from ...models import DeliveryReport, Message, Outcome, OutcomePart, Reason, RecipientResult

#: outcome of a row whose request was written but whose answer was not (yet): in flight or interrupted
SENDING = "sending"


@attrs.frozen(kw_only=True)
class LedgerRow:
    """One recipient of one request, as the ledger keeps it."""

    key: str
    request_index: int  #: the request's number within the send (later attempts get later numbers)
    phone: str
    provider: str  #: the configured provider name that sent it
    vendor: str  #: the plugin's name (what its delivery reports carry)
    outcome: str  #: ``sending`` (no answer recorded) or an :class:`Outcome` value
    message_id: str | None = None
    request_id: str | None = None
    reason_code: str | None = None
    reason_text: str | None = None
    not_sent: bool | None = None
    sent_at: float | None = None  #: when the request was written, just before it left (unix time)
    settled_at: float | None = None  #: when its outcome was written
    delivery_status: str | None = None  #: a :class:`Status` value once a report matched
    delivery_code: str | None = None  #: the vendor's raw status
    delivery_text: str | None = None  #: the vendor's error text, when given
    delivered_at: str | None = None  #: the vendor's report time, as the vendor wrote it
    reported_at: float | None = None  #: when the report was matched

    @property
    def settled(self) -> bool:
        return self.outcome != SENDING

    def result(self, in_flight_reason: Reason) -> RecipientResult:
        """This row as the :class:`RecipientResult` a replay answers with."""
        if self.outcome == SENDING:
            return RecipientResult(phone=self.phone, outcome=Outcome.UNKNOWN, reason=in_flight_reason,
                                   provider=self.provider)
        reason = None
        if self.reason_code is not None:
            reason = Reason(code=self.reason_code, message=self.reason_text or "", not_sent=bool(self.not_sent))
        return RecipientResult(phone=self.phone, outcome=Outcome(self.outcome), message_id=self.message_id,
                               reason=reason, request_id=self.request_id, provider=self.provider)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "phone": self.phone,
            "outcome": Outcome.UNKNOWN.value if self.outcome == SENDING else self.outcome,
            "settled": self.settled,
            "provider": self.provider,
            "request_index": self.request_index,
            "message_id": self.message_id,
            "request_id": self.request_id,
            "reason": None if self.reason_code is None else
            {"code": self.reason_code, "message": self.reason_text, "not_sent": bool(self.not_sent)},
            "sent_at": self.sent_at,
            "settled_at": self.settled_at,
            "delivery": None if self.delivery_status is None else
            {"status": self.delivery_status, "code": self.delivery_code, "text": self.delivery_text,
             "at": self.delivered_at, "reported_at": self.reported_at},
        }


@attrs.frozen(kw_only=True)
class LedgerRequest:
    """One request of a send as the ledger keeps it: its phones and the outcome they share. A phone
    with an outcome or a delivery report of its own also has a :class:`LedgerRow`, which wins."""

    key: str
    request_index: int
    provider: str
    vendor: str
    phones: tuple[str, ...]
    outcome: str  #: ``sending`` or an :class:`Outcome` value
    message_id: str | None = None
    request_id: str | None = None
    reason_code: str | None = None
    reason_text: str | None = None
    not_sent: bool | None = None
    sent_at: float | None = None
    settled_at: float | None = None

    def row(self, phone: str) -> LedgerRow:
        """``phone``'s row when it has none of its own: the request's shared outcome."""
        return LedgerRow(key=self.key, request_index=self.request_index, phone=phone, provider=self.provider,
                         vendor=self.vendor, outcome=self.outcome, message_id=self.message_id,
                         request_id=self.request_id, reason_code=self.reason_code, reason_text=self.reason_text,
                         not_sent=self.not_sent, sent_at=self.sent_at, settled_at=self.settled_at)

    def reason(self) -> Reason | None:
        if self.reason_code is None:
            return None
        return Reason(code=self.reason_code, message=self.reason_text or "", not_sent=bool(self.not_sent))


@attrs.frozen(kw_only=True)
class SendRecord:
    """A key's send as the ledger has it: the first request's provider, every request (its phones
    and shared outcome) and the rows of phones with an outcome or a report of their own."""

    key: str
    fingerprint: str
    provider: str
    recipients: int  #: how many recipients the send had
    segments: int | None
    created_at: float
    #: every request, in request order
    requests: tuple[LedgerRequest, ...] = ()
    #: the phones whose outcome or delivery report is their own (it wins over their request's)
    own_rows: tuple[LedgerRow, ...] = ()

    @functools.cached_property
    def rows(self) -> tuple[LedgerRow, ...]:
        """Every recipient of every request, in request order, then phone order (a phone may have
        several attempts)."""
        own = {(r.request_index, r.phone): r for r in self.own_rows}
        out: list[LedgerRow] = []
        indexes = {q.request_index for q in self.requests}
        for q in self.requests:
            index = q.request_index
            out.extend(own.get((index, p)) or q.row(p) for p in sorted(q.phones))
        out.extend(r for r in self.own_rows if r.request_index not in indexes)  # written by an older version
        out.sort(key=lambda r: (r.request_index, r.phone))
        return tuple(out)

    def counts(self) -> dict[tuple[str, str | None], int]:
        """How many of :attr:`rows` there are per (outcome, delivery status): the outcome ``sending``
        while none is recorded, the status None without a report. Told from the requests and the
        own rows, without a row object per recipient (a bulk send's key has a million)."""
        own = {(r.request_index, r.phone): r for r in self.own_rows}
        with_own = {index for index, _ in own}
        out: dict[tuple[str, str | None], int] = {}

        def add(outcome: str, status: str | None, n: int = 1) -> None:
            out[(outcome, status)] = out.get((outcome, status), 0) + n

        for q in self.requests:
            index, shared = q.request_index, len(q.phones)
            if index in with_own:
                for phone in q.phones:
                    row = own.get((index, phone))
                    if row is not None:
                        add(row.outcome, row.delivery_status)
                        shared -= 1
            if shared:
                add(q.outcome, None, shared)
        indexes = {q.request_index for q in self.requests}
        for row in self.own_rows:
            if row.request_index not in indexes:  # written by an older version
                add(row.outcome, row.delivery_status)
        return out

    def latest(self) -> dict[str, LedgerRow]:
        """Each phone's last attempt (the highest request index)."""
        out: dict[str, LedgerRow] = {}
        for row in self.rows:
            prev = out.get(row.phone)
            if prev is None or row.request_index >= prev.request_index:
                out[row.phone] = row
        return out

    @property
    def in_flight(self) -> bool:
        """Some recipient has no outcome yet (its request is in flight, or was interrupted)."""
        if self.once_each():
            own = {(r.request_index, r.phone) for r in self.own_rows}
            return any(not r.settled for r in self.own_rows) or any(
                q.outcome == SENDING and any((q.request_index, p) not in own for p in q.phones)
                for q in self.requests)
        latest = self.latest()
        return len(latest) < self.recipients or any(not r.settled for r in latest.values())

    def once_each(self) -> bool:
        """Every recipient is in exactly one request, and every own row in a request (the usual
        send: no failover, nothing refused before the requests, nothing written by an older version)."""
        indexes = {q.request_index for q in self.requests}
        phones = [q.phones for q in self.requests]
        return sum(map(len, phones)) == self.recipients and \
            len(set(chain.from_iterable(phones))) == self.recipients and \
            all(r.request_index in indexes for r in self.own_rows)


@attrs.frozen(kw_only=True)
class Attempt:
    """One request about to leave: its number in the send, the provider, its phones."""

    index: int
    provider: str  #: the configured name
    vendor: str  #: the plugin's name
    phones: Sequence[str]


class Ledger(Protocol):
    """What the send flow, the receiver and the CLI need from a ledger backend.

    Every write is one transaction. ``begin`` claims a key atomically across processes and hosts:
    exactly one caller gets None (it sends); every other gets the :class:`SendRecord` so far.
    """

    url: str

    def begin(self, key: str, fingerprint: str, provider: str, recipients: int, segments: int | None,
              now: float, first: Attempt | None = None) -> SendRecord | None:
        """Claim ``key``. None: claimed, and ``first`` (if given) written as ``sending`` in the same
        transaction. Otherwise the existing record (the caller must not send)."""

    def record_request(self, key: str, attempt: Attempt, now: float) -> None:
        """Write a request's recipients as ``sending``, before the request leaves (one transaction)."""

    def settle(self, key: str, index: int, results: Sequence[OutcomePart], now: float) -> None:
        """Write the outcomes of request ``index`` (one transaction), then match any early reports.
        ``results``: per recipient, or one outcome shared by several phones (:class:`RequestOutcome`)."""

    def match_reports(self, reports: Iterable[DeliveryReport], now: float) -> int:
        """Match delivery reports to rows; keep the unmatched ones for later. Returns rows updated."""

    def status(self, key: str) -> SendRecord | None:
        """The record of ``key``, or None when the ledger has never seen it."""

    def delivery_times(self, since: float, limit: int = 10000) -> list[tuple[str, float]]:
        """``(vendor, seconds from sending to the delivered report)`` for reports matched after
        ``since``, newest first (the metrics' send-to-delivery gauges)."""

    def prune(self, before: float) -> int:
        """Forget sends created before ``before`` (and unmatched reports received before it)."""

    def close(self) -> None:
        """Close connections (the ledger opens them again on next use)."""


def fingerprint(message: Message) -> str:
    """What makes two sends with one key "the same message": recipients (as a set, normalised),
    template, params, text, personalised content, signature, extension code, business id and send
    time. The provider is not part of it: a key names the message, whichever provider carries it."""
    if message.personal is not None:
        personal: Any = sorted((p, _plain(c)) for p, c in message.personal.items())
    else:
        personal = None
    content = {
        "to": sorted(message.to),
        "template_id": message.template_id,
        "params": _plain(message.params),
        "text": message.text,
        "personal": personal,
        "sign_name": message.sign_name,
        "extend_code": message.extend_code,
        "biz_id": message.biz_id,
        "send_at": None if message.send_at is None else _iso(message.send_at_china()),
    }
    data = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def open_ledger(url: str, **options: Any) -> Ledger:
    """The backend for ``url``: ``sqlite:///path`` or ``postgresql://...`` (``postgres://`` too)."""
    if not isinstance(url, str) or not url:
        raise ConfigError("[ledger] url must be a string such as sqlite:///var/lib/app/ledger.sqlite3", field="url")
    scheme = url.split(":", 1)[0].lower()
    if scheme == "sqlite":
        from .sqlite import SqliteLedger

        return SqliteLedger(url, **options)
    if scheme in ("postgresql", "postgres"):
        from .postgres import PostgresLedger

        return PostgresLedger(url, **options)
    raise ConfigError(f"[ledger] url: unknown scheme {scheme!r} (use sqlite:///PATH or postgresql://...)",
                      field="url")


def ledger_from_settings(settings: Any) -> Ledger:
    """The ledger a checked ``[ledger]`` table (:class:`smsgate.config.LedgerSettings`) describes."""
    options = {name: getattr(settings, name) for name in ("synchronous", "schema")
               if getattr(settings, name) is not None}
    return open_ledger(settings.url, **options)


__all__ = ["Attempt", "Ledger", "LedgerRequest", "LedgerRow", "SENDING", "SendRecord", "fingerprint", "ledger_from_settings",
           "open_ledger"]


def _iso(when: Any) -> str | None:
    return None if when is None else str(when.isoformat())
