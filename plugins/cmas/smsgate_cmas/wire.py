"""The 云MAS JSON shapes as attrs classes, read and written through the core's :class:`smsgate.Wire`.

Python names are snake_case; each field's attrs ``alias`` is the vendor's key, and :data:`WIRE`
reads and writes the aliases. ``cattrs`` is imported only when the converter is first built, so
importing the plugin stays cheap.

Requests (written with ``WIRE.write``, key order = field order = the order on the wire):
:class:`SubmitRequest`, :class:`TmplSubmitRequest`, :class:`PullRequest`.
Answers (read with ``WIRE.read``): :class:`AnswerCode`, :class:`SubmitAnswer`, :class:`ReportItem`,
:class:`InboundItem`.
"""

from __future__ import annotations

import attrs

from smsgate.wire import Wire

# -- requests --------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class SubmitRequest:
    """``/sms/submit`` without its ``mac`` (the sign hook appends it). Many-to-many sends carry
    ``mobiles=""`` and a ``content`` that is the JSON text of phone -> text."""

    ec_name: str = attrs.field(alias="ecName")
    ap_id: str = attrs.field(alias="apId")
    mobiles: str
    content: str
    sign: str
    add_serial: str = attrs.field(alias="addSerial")


@attrs.frozen(kw_only=True)
class TmplSubmitRequest:
    """``/sms/tmpsubmit`` without its ``mac``; ``params`` is a JSON array as text."""

    ec_name: str = attrs.field(alias="ecName")
    ap_id: str = attrs.field(alias="apId")
    template_id: str = attrs.field(alias="templateId")
    mobiles: str
    params: str
    sign: str
    add_serial: str = attrs.field(alias="addSerial")


@attrs.frozen(kw_only=True)
class PullRequest:
    """``/sms/report`` and ``/sms/deliver``: the account and its password, no mac."""

    ec_name: str = attrs.field(alias="ecName")
    ap_id: str = attrs.field(alias="apId")
    secret_key: str = attrs.field(alias="secretKey", repr=False)


# -- answers ---------------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class AnswerCode:
    """The ``rspcod`` of any answer object. Read on its own first: it alone says whether the
    platform refused the request, even when the rest of the answer is unreadable."""

    rspcod: str | None = None


@attrs.frozen(kw_only=True)
class SubmitAnswer:
    """The answer to ``/sms/submit`` and ``/sms/tmpsubmit``. ``success`` must be a JSON boolean."""

    rspcod: str
    mgs_group: str | None = attrs.field(default=None, alias="mgsGroup")  # the document's spelling
    success: bool | None = None


@attrs.frozen(kw_only=True)
class ReportItem:
    """One item of the ``/sms/report`` list. Every field is optional text: the platform hands a
    report out once, so one odd item must not make the whole pull fail."""

    report_status: str | None = attrs.field(default=None, alias="reportStatus")
    mobile: str | None = None
    submit_date: str | None = attrs.field(default=None, alias="submitDate")
    receive_date: str | None = attrs.field(default=None, alias="receiveDate")
    error_code: str | None = attrs.field(default=None, alias="errorCode")
    msg_group: str | None = attrs.field(default=None, alias="msgGroup")


@attrs.frozen(kw_only=True)
class InboundItem:
    """One item of the ``/sms/deliver`` list (optional text, as for reports)."""

    sms_content: str | None = attrs.field(default=None, alias="smsContent")
    mobile: str | None = None
    send_time: str | None = attrs.field(default=None, alias="sendTime")
    add_serial: str | None = attrs.field(default=None, alias="addSerial")


#: Booleans must be JSON booleans; text is read leniently (a number becomes its text), because
#: report and inbound items are handed out once and one odd field must not fail a whole pull.
WIRE = Wire(use_alias=True, strict_str=False)
