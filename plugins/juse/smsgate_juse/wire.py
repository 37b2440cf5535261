"""juse's JSON shapes as frozen attrs classes, read and written through the core's :class:`smsgate.Wire`.

Attribute names are the vendor's field names, so a class reads like the document's table and an
error names the field the vendor sent wrong. Class names follow the document where it gives one
(``SendSmsRecordDto``, ``SendSmsTaskDto``, ``SmsDeliverDto``).

:data:`WIRE` reads answers and pushes (``WIRE.read(data, cl)``) with the core's strict objects,
arrays and booleans plus juse's hooks below (strict text, whole-number counts, non-empty ids, the
answer's code); plain ``str`` fields take a number as its text, as the vendor sends ids. A body
that does not fit raises :class:`smsgate.WireError` whose message names the fields, e.g.
``sendSmsTaskDto.totalCount: expected a whole number, got text 'many'``. ``WIRE.write(body)``
writes a request class as its fields in attribute order (the key order on the wire).

cattrs is imported when the wire is first used: importing the plugin stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NewType, Optional, Tuple

import attrs

from smsgate.wire import Wire, WireError, kind

#: JSON text and nothing else (a number or null is an error)
Text = NewType("Text", str)
#: a whole number, or its text; null counts as 0 (the document types counts as Integer)
Count = NewType("Count", int)
#: a non-empty number or text, kept as text (the document types ids as Long)
RequiredId = NewType("RequiredId", str)
#: the answer's ``code``: a number or text, kept as text; null is an error
Code = NewType("Code", str)


# -- answers ------------------------------------------------------------------------------------

@attrs.frozen(kw_only=True)
class JuseAnswer:
    """Every answer of the message center: ``{"code":200,"mes":…,"data":…,"requestId":…}``.

    ``data`` is not described by the document: the plugin reads an id out of it (see the vendor
    page). ``detail`` is what the center's error answers carry beside ``mes``.
    """

    code: Code
    mes: Optional[str] = None
    detail: Optional[str] = None
    data: Any = None
    requestId: Optional[str] = None


# -- requests -----------------------------------------------------------------------------------

@attrs.frozen(kw_only=True)
class SendSmsRequest:
    """``POST /spi/sendSms``: one phone (AES-encrypted), named params sorted by key."""

    appId: str
    templateId: str
    signName: str
    phone: str
    params: dict[str, str]


@attrs.frozen(kw_only=True)
class SendSmsTaskRequest:
    """``POST /spi/sendSmsTask``: comma-joined phones encrypted as one string, params in order."""

    appId: str
    name: str
    templateId: str
    signName: str
    planTime: str
    phones: str
    params: dict[str, str]


# -- pushes -------------------------------------------------------------------------------------

@attrs.frozen(kw_only=True)
class SendSmsRecordDto:
    """One record of a ``sms_report`` push."""

    sendRecordId: Optional[str] = None
    #: 0 waiting, 1 sent, 2 sending, -1 failed; anything else is read as "unknown", not refused
    sendStatus: Any = None
    reportDate: Optional[str] = None
    remark: Optional[str] = None


@attrs.frozen(kw_only=True)
class SendSmsTaskDto:
    """The task summary of a ``sms_task_report`` push."""

    sendTaskId: RequiredId
    totalCount: Count = Count(0)
    sendCount: Count = Count(0)
    failCount: Count = Count(0)


@attrs.frozen(kw_only=True)
class SmsDeliverDto:
    """One inbound SMS of a ``sms_deliver`` push (``mobile`` plain digits or AES-encrypted)."""

    mobile: str
    content: Text
    sendTime: Optional[str] = None
    addSerial: Optional[str] = None


@attrs.frozen(kw_only=True)
class JusePush:
    """The fields every push carries; ``appId`` and ``type`` are signed."""

    appId: Text
    type: Text
    extensions: Any = None


@attrs.frozen(kw_only=True)
class JusePushBody(JusePush):
    """A push as it arrives, with whichever of the three lists it carries. They are read by their
    names whatever ``type`` says: the document's table pairs ``smsDeliverDtoList`` with
    ``sms_task_report`` and ``sendSmsTaskDto`` with ``sms_deliver``, and its own example push sends
    ``sms_report`` with a ``sendSmsTaskDto``."""

    sendSmsRecordDtoList: Optional[Tuple[SendSmsRecordDto, ...]] = None
    sendSmsTaskDto: Optional[SendSmsTaskDto] = None
    smsDeliverDtoList: Optional[Tuple[SmsDeliverDto, ...]] = None


#: the lists (and the one object) a push may carry, by name
PUSH_LISTS = ("sendSmsRecordDtoList", "sendSmsTaskDto", "smsDeliverDtoList")
#: every field of a push smsgate reads; any other list or object in a push is data it would drop
PUSH_FIELDS = frozenset({"appId", "type", "extensions", *PUSH_LISTS})
#: the push types the document names
PUSH_TYPES = frozenset({"sms_report", "sms_task_report", "sms_deliver"})


# -- reading and writing ------------------------------------------------------------------------

def _text(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise WireError(f"expected text, got {kind(value)}")
    return value


def _count(value: Any, _: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise WireError(f"expected a whole number, got {kind(value)}")
    try:
        return int(value)
    except ValueError:
        raise WireError(f"expected a whole number, got {kind(value)}") from None


def _required_id(value: Any, _: Any) -> str:
    if value in (None, "") or isinstance(value, (bool, list, Mapping)):
        raise WireError(f"expected a non-empty id, got {kind(value)}")
    return str(value)


def _code(value: Any, _: Any) -> str:
    if value is None:
        raise WireError("expected a code, got null")
    return str(value)


#: juse's JSON: attribute names are the keys; plain ``str`` fields are lenient, :data:`Text` is not
WIRE = Wire(strict_str=False, hooks={Text: _text, Count: _count, RequiredId: _required_id, Code: _code})
