"""Alibaba Cloud SMS JSON shapes as attrs classes, read through the core's :class:`smsgate.Wire`.

Python names are snake_case; each field's attrs ``alias`` is the vendor's key (``Code``,
``BizId``, ``phone_number``...), and :data:`WIRE` reads the aliases. Answers use the API's
PascalCase keys; the HTTP pushes (SmsReport, SmsUp) use snake_case keys. Ids the vendor writes
sometimes as numbers, sometimes as text (``sequence_id``, ``sms_size``) are :data:`LooseText`.
``cattrs`` is imported only when the converter is first built, so importing the plugin stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NewType, Optional, Tuple, Union

import attrs

from smsgate.wire import Wire, WireError, kind

#: text, or a number taken as its text (the vendor writes ids and counts either way)
LooseText = NewType("LooseText", str)


# -- answers ------------------------------------------------------------------------------------

@attrs.frozen(kw_only=True)
class Answer:
    """Every Dysmsapi answer (SendSms, SendBatchSms, QuerySendDetails) and every gateway error:
    ``Code`` is ``OK`` on success. ``BizId`` comes with an accepted send."""

    code: str = attrs.field(alias="Code")
    message: Optional[str] = attrs.field(default=None, alias="Message")
    request_id: Optional[str] = attrs.field(default=None, alias="RequestId")
    biz_id: Optional[LooseText] = attrs.field(default=None, alias="BizId")


@attrs.frozen(kw_only=True)
class SmsSendDetailDTO:
    """One record of QuerySendDetails. ``SendStatus``: 1 waiting for the carrier's receipt,
    2 failed, 3 delivered."""

    phone_num: Optional[LooseText] = attrs.field(default=None, alias="PhoneNum")
    send_status: Optional[int] = attrs.field(default=None, alias="SendStatus")
    err_code: Optional[str] = attrs.field(default=None, alias="ErrCode")
    template_code: Optional[str] = attrs.field(default=None, alias="TemplateCode")
    content: Optional[str] = attrs.field(default=None, alias="Content")
    send_date: Optional[str] = attrs.field(default=None, alias="SendDate")
    receive_date: Optional[str] = attrs.field(default=None, alias="ReceiveDate")
    out_id: Optional[LooseText] = attrs.field(default=None, alias="OutId")


@attrs.frozen(kw_only=True)
class SmsSendDetailDTOs:
    records: Tuple[SmsSendDetailDTO, ...] = attrs.field(default=(), alias="SmsSendDetailDTO")


@attrs.frozen(kw_only=True)
class SendDetails:
    """QuerySendDetails' successful answer."""

    total_count: Optional[int] = attrs.field(default=None, alias="TotalCount")
    details: SmsSendDetailDTOs = attrs.field(factory=SmsSendDetailDTOs, alias="SmsSendDetailDTOs")


# -- pushes -------------------------------------------------------------------------------------

@attrs.frozen(kw_only=True)
class SmsReport:
    """One item of an SmsReport push (a delivery report)."""

    phone_number: LooseText
    success: bool
    biz_id: Optional[LooseText] = None
    out_id: Optional[LooseText] = None
    send_time: Optional[str] = None
    report_time: Optional[str] = None
    err_code: Optional[str] = None
    err_msg: Optional[str] = None
    sms_size: Optional[LooseText] = None


@attrs.frozen(kw_only=True)
class SmsUp:
    """One item of an SmsUp push (an SMS a user sent to us)."""

    phone_number: LooseText
    content: str
    send_time: Optional[str] = None
    sign_name: Optional[str] = None
    dest_code: Optional[LooseText] = None
    sequence_id: Optional[LooseText] = None


#: an item of a push: a report (``success``/``err_code``) or an inbound SMS (``content``)
PushItem = Union[SmsReport, SmsUp]


# -- reading ------------------------------------------------------------------------------------

def _loose_text(value: Any, _: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise WireError(f"expected text or a number, got {kind(value)}")


def _strict_int(value: Any, _: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise WireError(f"expected a number, got {kind(value)}")


def _push_item(value: Any, _: Any) -> Any:
    if not isinstance(value, Mapping):
        raise WireError(f"expected a JSON object, got {kind(value)}")
    if "content" in value:
        return WIRE.converter.structure(value, SmsUp)
    if "success" in value or "err_code" in value or "report_time" in value:
        return WIRE.converter.structure(value, SmsReport)
    raise WireError("neither a report (success, err_code) nor an inbound SMS (content)")


WIRE = Wire(use_alias=True, hooks={LooseText: _loose_text, int: _strict_int, PushItem: _push_item})


def read_push(data: Any) -> tuple[Any, ...]:
    """A push body (a JSON array) as :class:`SmsReport` / :class:`SmsUp` items."""
    items: tuple[Any, ...] = WIRE.read(data, Tuple[PushItem, ...])
    return items
