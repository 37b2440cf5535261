"""opass's JSON shapes as frozen attrs classes, read and written through the core's :class:`smsgate.Wire`.

Attribute names are the vendor's field names, so a class reads like the document's table and an
error names the field the vendor sent wrong. Class names follow the document's Java SDK where it
gives one (``SmsResponse``, ``MessageSendResVo``, ``ArriveInfoResVo``).

:data:`WIRE` reads answers and pushes (``WIRE.read(data, cl)``) with the core's strict objects,
arrays and booleans plus opass's hooks below (strict text for :data:`Text`, push items told apart
by their fields); plain ``str`` fields take a number as its text, as the vendor sends ids. A body
that does not fit raises :class:`smsgate.WireError` whose message names the fields, e.g.
``data[0].tel: missing``; :func:`read_data` reads an answer's ``data`` so that errors name it
``data``. ``WIRE.write(body)`` writes a request class as its fields in attribute order (the key
order on the wire; None fields are then left out by :func:`smsgate_opass.dialect.body_bytes`).

cattrs is imported when the wire is first used: importing the plugin stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, NewType, Optional, Tuple, TypeVar, Union

import attrs

from smsgate.wire import Wire, WireError, kind

#: JSON text and nothing else (a number or null is an error)
Text = NewType("Text", str)
#: a whole number, or its digits as text
Count = NewType("Count", int)
T = TypeVar("T")


# -- answers ------------------------------------------------------------------------------------

@attrs.frozen(kw_only=True)
class SmsResponse:
    """Every answer: ``{"code":200,"message":…,"data":…,"requestId":…}``. ``data`` depends on the
    call and is read once the code says success (an error answer's ``data`` is not looked at)."""

    code: Any  #: a number or text; required (an answer without it is not the vendor's)
    message: Optional[str] = None
    data: Any = None
    requestId: Optional[str] = None
    #: the statistics query's count of every row over all pages (its table lists it after the
    #: rows' fields without saying where it sits; read here and, failing that, in the rows)
    totalSize: Any = None


@attrs.frozen
class AnswerData(Generic[T]):
    """An answer's ``data`` alone, read once the code says success (see :func:`read_data`)."""

    data: T


@attrs.frozen(kw_only=True)
class MessageSendResVo:
    """``data`` of ``/message/send`` and ``/message/sendBatch``."""

    msgId: Optional[str] = None
    #: the spelling some answers use for ``msgId``
    msgid: Optional[str] = None
    desc: Optional[str] = None
    #: comma-joined phones the vendor refused
    failPhones: Optional[str] = None


@attrs.frozen(kw_only=True)
class ArriveInfoResVo:
    """One delivery report: an item of ``/sms/arriveRes/qry``'s ``data`` (status in ``arrive``) or of
    a report push (status in ``arriveResult``)."""

    msgId: Optional[str] = None
    tel: Optional[str] = None
    arrive: Optional[str] = None
    arriveResult: Optional[str] = None
    arriveTime: Optional[str] = None
    bid: Optional[str] = None

    @property
    def status_word(self) -> Optional[str]:
        return self.arriveResult if self.arriveResult is not None else self.arrive


@attrs.frozen(kw_only=True)
class ResidueValueResVo:
    """One item of ``/sms/residueValue/qry``'s ``data``."""

    itemName: Optional[str] = None
    residueValue: Any = None  #: a number (int in the document), kept as sent


@attrs.frozen(kw_only=True)
class SendStatisticsVo:
    """One day of ``/sms/send/statistics``'s ``data`` (counts are ``long`` in the document)."""

    sendDate: Optional[str] = None  #: yyyy-MM-dd
    totalCount: Optional[Count] = None  #: 发送成功的短信条数
    successCount: Optional[Count] = None  #: 接收到回执成功的短信条数
    failCount: Optional[Count] = None  #: 接收到回执失败的短信条数
    noReceiptCount: Optional[Count] = None  #: 未回执的短信数
    totalSize: Optional[Count] = None  #: see :attr:`SmsResponse.totalSize`


@attrs.frozen(kw_only=True)
class StatisticsTotal:
    """The statistics answer's ``totalSize`` beside ``data``."""

    totalSize: Optional[Count] = None


# -- pushes -------------------------------------------------------------------------------------

@attrs.frozen(kw_only=True)
class UplinkMessageDto:
    """One inbound SMS of an inbound push."""

    tel: str
    content: Optional[str] = None
    srcId: Optional[str] = None
    arriveTime: Optional[str] = None


#: an item of a push's ``data``: a report (``arriveResult``/``arrive``) or an inbound SMS
#: (``content``/``srcId``), told apart by those fields
PushItem = Union[UplinkMessageDto, ArriveInfoResVo]


@attrs.frozen(kw_only=True)
class PushSender:
    """What a push is verified by: its ``apiKey`` (the document signs no push)."""

    apiKey: Text


@attrs.frozen(kw_only=True)
class OpassPush(PushSender):
    """A report or inbound push: ``{"apiKey":…,"data":[…]}``."""

    data: Tuple[PushItem, ...]


# -- requests -----------------------------------------------------------------------------------

@attrs.frozen(kw_only=True)
class SendRequest:
    """``POST /message/send``: same content to every phone."""

    phones: str
    templateCode: str
    upExtendCode: Optional[str] = None
    bid: Optional[str] = None
    templateParam: Optional[str] = None  #: JSON array text


@attrs.frozen(kw_only=True)
class SendBatchRequest:
    """``POST /message/sendBatch``: one parameter list per phone."""

    phonesJson: str  #: JSON array text
    templateCode: str
    upExtendCode: Optional[str] = None
    bid: Optional[str] = None
    templateParamJson: Optional[str] = None  #: JSON array (of arrays) text


@attrs.frozen(kw_only=True)
class ArriveResQuery:
    """``POST /sms/arriveRes/qry``."""

    msgId: Optional[str] = None  #: comma-joined, at most 600
    bid: Optional[str] = None


@attrs.frozen
class ResidueValueQuery:
    """``POST /sms/residueValue/qry``: an empty object."""


@attrs.frozen(kw_only=True)
class StatisticsQuery:
    """``POST /sms/send/statistics``: every field required; ``pageSize`` 1-50."""

    startDate: str  #: yyyy-MM-dd
    endDate: str  #: yyyy-MM-dd
    page: int
    pageSize: int


# -- reading and writing ------------------------------------------------------------------------

def _text(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise WireError(f"expected text, got {kind(value)}")
    return value


def _count(value: Any, _: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or \
            (isinstance(value, str) and not (value.strip().isascii() and value.strip().isdigit())):
        raise WireError(f"expected a whole number, got {kind(value)}")
    return int(value)


def _push_item(value: Any, _: Any) -> Any:
    if not isinstance(value, Mapping):
        raise WireError(f"expected a JSON object, got {kind(value)}")
    if "content" in value or "srcId" in value:
        return WIRE.converter.structure(value, UplinkMessageDto)
    if "arriveResult" in value or "arrive" in value:
        return WIRE.converter.structure(value, ArriveInfoResVo)
    raise WireError("neither a report (arriveResult) nor an inbound SMS (content, srcId)")


#: opass's JSON: attribute names are the keys; plain ``str`` fields are lenient, :data:`Text` is not
WIRE = Wire(strict_str=False, hooks={Text: _text, Count: _count, PushItem: _push_item})


def read_data(data: Any, cl: Any) -> Any:
    """An answer's ``data`` as ``cl``; the :class:`smsgate.WireError` names the fields under ``data``."""
    return WIRE.read({"data": data}, AnswerData[cl]).data
