"""The 云MAS JSON shapes as attrs classes, read and written through cattrs.

Python names are snake_case; each field's attrs ``alias`` is the vendor's key, and the converter
from :func:`converter` reads and writes the aliases. ``cattrs`` is imported only when the
converter is first built, so importing the plugin stays cheap.

Requests (written, key order = field order = the order on the wire):
:class:`SubmitRequest`, :class:`TmplSubmitRequest`, :class:`PullRequest`.
Answers (read): :class:`AnswerCode`, :class:`SubmitAnswer`, :class:`ReportItem`,
:class:`InboundItem`.
"""

from __future__ import annotations

from typing import Any

import attrs

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


DTO_CLASSES = (SubmitRequest, TmplSubmitRequest, PullRequest, AnswerCode, SubmitAnswer, ReportItem, InboundItem)


# -- the converter ---------------------------------------------------------------------------

_converter: Any = None


def _strict_bool(value: Any, _type: Any) -> bool:
    # cattrs' default is bool(value), which would read "false" as True
    if isinstance(value, bool):
        return value
    raise ValueError(f"expected a JSON boolean, got {_describe_value(value)}")


def converter() -> Any:
    """The plugin's cattrs converter: the core's :func:`smsgate.models.make_converter` plus
    vendor keys (attrs aliases) for the classes above and strict booleans."""
    global _converter
    if _converter is None:
        from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

        from smsgate.models import make_converter

        conv = make_converter()
        conv.register_structure_hook(bool, _strict_bool)
        for cls in DTO_CLASSES:
            conv.register_structure_hook(cls, make_dict_structure_fn(
                cls, conv, _cattrs_use_alias=True, _cattrs_detailed_validation=True))
            conv.register_unstructure_hook(cls, make_dict_unstructure_fn(cls, conv, _cattrs_use_alias=True))
        _converter = conv
    return _converter


def structure(data: Any, cls: type) -> Any:
    """``data`` as a ``cls``. Raises ValueError whose text names the vendor fields that are
    missing or wrong (e.g. ``rspcod: missing``)."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {_describe_value(data)}")
    try:
        return converter().structure(data, cls)
    except Exception as exc:  # cattrs' ClassValidationError (an ExceptionGroup) or a plain error
        raise ValueError("; ".join(describe_error(exc))) from None


def unstructure(obj: Any) -> dict[str, Any]:
    """The JSON object of a request class, vendor keys in field order."""
    return converter().unstructure(obj)


def describe_error(exc: BaseException, path: str = "") -> list[str]:
    """Walk cattrs' validation errors into ``"<vendor key path>: <problem>"`` lines."""
    from cattrs.errors import ClassValidationError, IterableValidationError

    if isinstance(exc, ClassValidationError):
        keys = {a.name: a.alias for a in attrs.fields(exc.cl)} if attrs.has(exc.cl) else {}
        lines: list[str] = []
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            key = keys.get(note.name, note.name)
            lines.extend(describe_error(sub, f"{path}.{key}" if path else key))
        for sub in without:
            lines.extend(describe_error(sub, path))
        return lines
    if isinstance(exc, IterableValidationError):
        lines = []
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            lines.extend(describe_error(sub, f"{path}[{note.index!r}]"))
        for sub in without:
            lines.extend(describe_error(sub, path))
        return lines
    where = path or "answer"
    if isinstance(exc, KeyError):
        return [f"{where}: missing"]
    return [f"{where}: {exc}" if str(exc) else f"{where}: {type(exc).__name__}"]


def _describe_value(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}"
