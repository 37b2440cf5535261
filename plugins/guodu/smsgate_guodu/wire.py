"""Guodu's JSON shapes as attrs classes, read and written through the core's :class:`smsgate.Wire`.

Python names are snake_case; each field's attrs ``alias`` is the vendor's key (``OperID``,
``ResultCode``, ``msgId``...), and :data:`WIRE` reads and writes the aliases. The fields Guodu
spells loosely have their own types (:data:`ResultCode`, :data:`PresentText`, :data:`StatusNumber`)
with a hook each. ``cattrs`` is imported only when the converter is first built, so importing the
plugin stays cheap.

Written (``WIRE.write``): :class:`SubmitRequest`. Read (``WIRE.read``): :class:`SubmitAnswer`,
:class:`StatusReport`.
"""

from __future__ import annotations

from typing import Any, NewType

import attrs

from smsgate.wire import Wire, WireError, kind

from . import dialect

#: A ResultCode: text, or a number written the way the document writes codes (``0`` -> ``"00"``).
ResultCode = NewType("ResultCode", str)
#: Text that must be present and not empty (a number is taken as its text).
PresentText = NewType("PresentText", str)
#: A report status: a number (or its text), kept as text.
StatusNumber = NewType("StatusNumber", str)


@attrs.frozen(kw_only=True)
class SubmitRequest:
    """The ``submitJson`` body, keys in the document's order. ``content`` is already URL-encoded
    the Java way (:func:`smsgate_guodu.dialect.java_urlencode`)."""

    oper_id: str = attrs.field(alias="OperID")
    oper_pass: str = attrs.field(alias="OperPass", repr=False)
    send_time: str = attrs.field(alias="SendTime")
    append_id: str = attrs.field(alias="AppendID")
    des_mobile: str = attrs.field(alias="DesMobile")
    content: str = attrs.field(alias="Content")


@attrs.frozen(kw_only=True)
class SubmitAnswer:
    """The answer to ``submitJson``. ``result_code`` is the code as the document writes it
    (``"00"``, ``"-1"``; a number is taken and written that way); ``msg_id`` may be absent."""

    result_code: ResultCode = attrs.field(alias="ResultCode")
    msg_id: str | None = attrs.field(default=None, alias="MsgId")


@attrs.frozen(kw_only=True)
class StatusReport:
    """One item of a status report push. ``status`` is a number (0 = delivered) kept as text;
    ``msgId`` and ``mobile`` must be present and not empty."""

    msg_id: PresentText = attrs.field(alias="msgId")
    mobile: PresentText
    status: StatusNumber
    msg: str | None = None
    report_time: str | None = attrs.field(default=None, alias="reportTime")


# -- the vendor's field checks ---------------------------------------------------------------


def _result_code(value: Any, _type: Any) -> str:
    code = dialect.normalise_code(value)
    if code is None:
        raise WireError(f"expected a code as text or a number, got {kind(value)}")
    return code


def _present_text(value: Any, _type: Any) -> str:
    if value is None or value == "":
        raise WireError("is empty")
    return str(value)


def _status_number(value: Any, _type: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) \
            or not str(value).strip().lstrip("-").isdigit():
        raise WireError(f"expected a number, got {kind(value)}")
    return str(value).strip()


def report_fields(item: Any) -> tuple[str, str, str, str | None, str | None] | None:
    """``(msgId, mobile, status, msg, reportTime)`` of a status report item of the usual shape (text
    ids, a numeric status, text or no ``msg`` and ``reportTime``), read without the converter and
    exactly as it reads them (a push carries up to 250 items); None for anything else, which the
    converter reads or refuses, naming the field."""
    if type(item) is not dict:
        return None
    get = item.get
    msg_id, mobile, status, msg, report_time = get("msgId"), get("mobile"), get("status"), get("msg"), get("reportTime")
    if type(msg_id) is not str or not msg_id or type(mobile) is not str or not mobile:
        return None
    if (msg is not None and type(msg) is not str) or (report_time is not None and type(report_time) is not str):
        return None
    if type(status) is int:
        text = str(status)
    elif type(status) is str and status.strip().lstrip("-").isdigit():
        text = status.strip()
    else:
        return None
    return msg_id, mobile, text, msg, report_time


def _fast_status_report(item: Any) -> StatusReport | None:
    fields = report_fields(item)
    if fields is None:
        return None
    msg_id, mobile, status, msg, report_time = fields
    return StatusReport(msgId=PresentText(msg_id), mobile=PresentText(mobile), status=StatusNumber(status), msg=msg,
                        reportTime=report_time)


#: Text is read leniently (``MsgId`` 77 is ``"77"``, a report's ``status`` 0 is ``"0"``); the
#: strict fields are the three types above.
WIRE = Wire(use_alias=True, strict_str=False, hooks={
    ResultCode: _result_code, PresentText: _present_text, StatusNumber: _status_number},
    fast={StatusReport: _fast_status_report})
