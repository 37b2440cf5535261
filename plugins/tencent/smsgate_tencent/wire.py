"""Tencent Cloud SMS's JSON shapes (API 2021-01-11) as frozen attrs classes, read and written
through the core's :class:`smsgate.Wire`.

Attribute names are the vendor's keys (``PhoneNumberSet``, ``SendStatusSet``, ``report_status``),
so a class reads like the reference's tables and an error names the key the vendor sent wrong,
e.g. ``Response.SendStatusSet[1].PhoneNumber: missing``. Answers and pushes are read strictly
(objects, arrays, text and numbers as documented); ids and numbers that the reference types as
text but that a vendor might write as numbers are read with :data:`Loose`.

cattrs is imported when the wire is first used: importing the plugin stays cheap.
"""

from __future__ import annotations

from typing import Any, NewType, Optional, Tuple

import attrs

from smsgate.wire import Wire, WireError, kind

#: text, or a number taken as its text (ids, counts, codes the reference types as String)
Loose = NewType("Loose", str)


# -- requests ----------------------------------------------------------------------------------

@attrs.frozen(kw_only=True)
class SendSmsRequest:
    """``SendSms``: one template to up to 200 numbers (E.164)."""

    PhoneNumberSet: Tuple[str, ...]
    SmsSdkAppId: str
    TemplateId: str
    SignName: Optional[str] = None
    TemplateParamSet: Optional[Tuple[str, ...]] = None
    ExtendCode: Optional[str] = None
    SessionContext: Optional[str] = None


@attrs.frozen(kw_only=True)
class PullRequest:
    """``PullSmsSendStatus`` and ``PullSmsReplyStatus``: the next ``Limit`` (at most 100) items of
    the account's queue."""

    Limit: int
    SmsSdkAppId: str


# -- answers -----------------------------------------------------------------------------------

@attrs.frozen(kw_only=True)
class ApiError:
    """``Response.Error``: a failed call."""

    Code: str
    Message: Optional[str] = None


@attrs.frozen(kw_only=True)
class SendStatus:
    """One item of ``SendStatusSet``: the outcome for one number."""

    PhoneNumber: str
    Code: str
    SerialNo: Optional[Loose] = None
    Fee: Optional[int] = None
    SessionContext: Optional[str] = None
    Message: Optional[str] = None
    IsoCode: Optional[str] = None


@attrs.frozen(kw_only=True)
class PullSmsSendStatus:
    """One item of ``PullSmsSendStatusSet``: a delivery report."""

    SerialNo: Optional[Loose] = None
    PhoneNumber: Optional[str] = None
    SubscriberNumber: Optional[Loose] = None
    CountryCode: Optional[Loose] = None
    ReportStatus: Optional[str] = None
    Description: Optional[str] = None
    UserReceiveTime: Optional[int] = None
    SessionContext: Optional[str] = None


@attrs.frozen(kw_only=True)
class PullSmsReplyStatus:
    """One item of ``PullSmsReplyStatusSet``: an inbound SMS (a user's reply)."""

    PhoneNumber: Optional[str] = None
    SubscriberNumber: Optional[Loose] = None
    CountryCode: Optional[Loose] = None
    ReplyContent: Optional[str] = None
    ReplyTime: Optional[int] = None
    ExtendCode: Optional[Loose] = None
    SignName: Optional[str] = None


@attrs.frozen(kw_only=True)
class Response:
    """The body inside ``{"Response": {...}}``: ``RequestId`` always, ``Error`` on failure. The
    action's own set is read with its class below once ``Error`` was ruled out."""

    RequestId: Optional[str] = None
    Error: Optional[ApiError] = None


@attrs.frozen(kw_only=True)
class Envelope:
    """Every answer of API 3.0: ``{"Response": {...}}``."""

    Response: Response


@attrs.frozen(kw_only=True)
class SendSmsResponse:
    SendStatusSet: Tuple[SendStatus, ...]


@attrs.frozen(kw_only=True)
class PullSmsSendStatusResponse:
    #: the reference types it as an array; an empty queue may come back as null
    PullSmsSendStatusSet: Optional[Tuple[PullSmsSendStatus, ...]] = None


@attrs.frozen(kw_only=True)
class PullSmsReplyStatusResponse:
    PullSmsReplyStatusSet: Optional[Tuple[PullSmsReplyStatus, ...]] = None


# -- pushes -------------------------------------------------------------------------------------

@attrs.frozen(kw_only=True)
class StatusCallback:
    """One item of a status push (短信下发状态通知): a JSON array of these."""

    report_status: str
    mobile: Loose
    sid: Optional[Loose] = None
    nationcode: Optional[Loose] = None
    user_receive_time: Optional[Loose] = None
    errmsg: Optional[str] = None
    description: Optional[str] = None


@attrs.frozen(kw_only=True)
class ReplyCallback:
    """A reply push (短信回复): one JSON object."""

    mobile: Loose
    text: str
    nationcode: Optional[Loose] = None
    sign: Optional[str] = None
    time: Optional[Loose] = None
    extend: Optional[Loose] = None


# -- reading ------------------------------------------------------------------------------------

def _loose(value: Any, _: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise WireError(f"expected text, got {kind(value)}")
    return str(value)


def _int(value: Any, _: Any) -> int:
    # the reference types these as Integer; a digit string is taken as its number
    if isinstance(value, bool):
        raise WireError(f"expected a number, got {kind(value)}")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    raise WireError(f"expected a number, got {kind(value)}")


WIRE = Wire(hooks={Loose: _loose, int: _int})


def read_response(data: Any, cl: Any) -> Any:
    """The inner ``Response`` object as ``cl``; a WireError names ``Response.<key>...``."""
    try:
        return WIRE.read(data, cl)
    except WireError as exc:
        raise WireError("; ".join(f"Response.{part}" for part in str(exc).split("; "))) from None
