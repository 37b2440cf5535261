"""The values of every call but a send: delivery reports, inbound messages and task summaries
(pulled or pushed), a vendor's push and the parser's result, balance and statistics queries.

They are importable from :mod:`smsgate.models` as always (``from smsgate.models import
DeliveryReport``); they live here so that a send, which needs none of them, does not build their
classes (each attrs class costs its generated methods' compilation at import).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import attrs

from .models import HttpResponse, Status, _find_header, _headers, _tuple


@attrs.frozen(kw_only=True)
class DeliveryReport:
    """A delivery report for one recipient of one message."""

    provider: str
    message_id: str | None
    phone: str | None
    status: Status
    raw_status: str | None = None  #: the vendor's own status word or code
    description: str | None = None  #: the vendor's error code or text, when it gives one
    reported_at: str | None = None  #: the vendor's timestamp, as the vendor wrote it
    biz_id: str | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False)


@attrs.frozen(kw_only=True)
class InboundMessage:
    """An SMS a user sent to us (MO, 上行)."""

    provider: str
    phone: str
    content: str
    received_at: str | None = None
    service_code: str | None = None  #: the number/extension it was sent to, when the vendor says
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False)


@attrs.frozen(kw_only=True)
class TaskSummary:
    """A vendor's summary of a batch task (juse's sms_task_report)."""

    provider: str
    task_id: str
    total: int
    sent: int
    failed: int
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False)


@attrs.frozen(kw_only=True)
class Balance:
    provider: str
    amount: float | int | None
    unit: str = "messages"
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False)


@attrs.frozen(kw_only=True)
class PullQuery:
    """What a report pull asks for; vendors that return 'everything new' ignore it.

    ``phones`` and ``since`` serve vendors whose report query looks up phone numbers sent after a
    time (aliyun's QuerySendDetails: one phone and the day it was sent to).
    """

    message_ids: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    biz_id: str | None = None
    phones: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    since: _dt.datetime | None = None


def _as_date(value: Any, field: str) -> _dt.date:
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    try:
        text = str(value)
        if len(text) != 10 or text[4] != "-" or text[7] != "-":  # 3.11 also takes 20240918
            raise ValueError(text)
        return _dt.date.fromisoformat(text)
    except ValueError:
        from .errors import ValidationError

        raise ValidationError(f"{field} is not a date (YYYY-MM-DD): {value!r}", field=field) from None


def _start_date(value: Any) -> _dt.date:
    return _as_date(value, "start")


def _end_date(value: Any) -> _dt.date:
    return _as_date(value, "end")


@attrs.frozen(kw_only=True)
class StatisticsQuery:
    """What a statistics query asks for: the days from ``start`` to ``end`` (both included, China
    dates), one page of ``page_size`` days. Vendors check their own page limits."""

    start: _dt.date = attrs.field(converter=_start_date)
    end: _dt.date = attrs.field(converter=_end_date)
    page: int = 1
    page_size: int = 50

    def __attrs_post_init__(self) -> None:
        from .errors import ValidationError

        if self.end < self.start:
            raise ValidationError(f"the end date {self.end} is before the start date {self.start}", field="end")
        if isinstance(self.page, bool) or not isinstance(self.page, int) or self.page < 1:
            raise ValidationError(f"page must be a whole number from 1, not {self.page!r}", field="page")
        if isinstance(self.page_size, bool) or not isinstance(self.page_size, int) or self.page_size < 1:
            raise ValidationError(f"page_size must be a whole number from 1, not {self.page_size!r}",
                                  field="page_size")


@attrs.frozen(kw_only=True)
class DayStatistics:
    """One day of a vendor's send statistics (None where the vendor gave no number)."""

    date: str  #: ``YYYY-MM-DD`` as the vendor wrote it
    sent: int | None = None  #: messages sent
    delivered: int | None = None  #: delivery reports saying delivered
    failed: int | None = None  #: delivery reports saying not delivered
    no_report: int | None = None  #: sent messages without a delivery report yet
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False)


def _days(value: Any) -> tuple[DayStatistics, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class SendStatistics:
    """One page of a vendor's send statistics: ``days`` in the vendor's order; ``total`` is how
    many days the whole answer has over every page (None when the vendor did not say)."""

    provider: str
    days: tuple[DayStatistics, ...] = attrs.field(converter=_days)
    page: int = 1
    page_size: int = 50
    total: int | None = None
    raw: dict[str, Any] = attrs.field(factory=dict, eq=False)

    def to_json_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "page": self.page, "page_size": self.page_size, "total": self.total,
                "days": [{"date": d.date, "sent": d.sent, "delivered": d.delivered, "failed": d.failed,
                          "no_report": d.no_report} for d in self.days]}


@attrs.frozen(kw_only=True)
class CallbackRequest:
    """A push a vendor made to us, as the receiver got it."""

    method: str = "POST"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_headers)
    body: bytes = b""
    remote_addr: str | None = None
    query: str = ""

    def header(self, name: str) -> str | None:
        return _find_header(self.headers, name)

    def json(self) -> Any:
        """The body as JSON; ValueError (never RecursionError) when it is not JSON."""
        from .wire import load_json

        return load_json(self.body)


@attrs.frozen(kw_only=True)
class CallbackResult:
    """What ``parse_callback`` returns: the events of a push and the answer the vendor expects.

    ``json_native``: the plugin knows that every field of every event holds only JSON's own values
    (text, ints, finite floats, booleans, None, and dicts and lists of these; for instance the
    events' ``raw`` parts come from a body in which :func:`smsgate.wire.load_json_native` found no
    NaN or infinity, and the other fields are text). The spool then stores them without looking
    at each value first. Leave it False (the default) when unsure: a NaN, an infinity, an enum
    member, a date or a subclass among values marked so may be stored differently from how it
    would have been otherwise (orjson writes NaN as null)."""

    events: tuple[Any, ...] = attrs.field(default=(), converter=_tuple)
    response: HttpResponse = attrs.field(factory=lambda: HttpResponse(status=200, body=b"ok"))
    json_native: bool = False
