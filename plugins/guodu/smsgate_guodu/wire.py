"""Guodu's JSON shapes as attrs classes, read and written through cattrs.

Python names are snake_case; each field's attrs ``alias`` is the vendor's key (``OperID``,
``ResultCode``, ``msgId``...), and the converter from :func:`converter` reads and writes the
aliases. ``cattrs`` is imported only when the converter is first built, so importing the plugin
stays cheap.

Written: :class:`SubmitRequest`. Read: :class:`SubmitAnswer`, :class:`StatusReport`.
"""

from __future__ import annotations

from typing import Any

import attrs

from . import dialect


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

    result_code: str = attrs.field(alias="ResultCode")
    msg_id: str | None = attrs.field(default=None, alias="MsgId")


@attrs.frozen(kw_only=True)
class StatusReport:
    """One item of a status report push. ``status`` is a number (0 = delivered) kept as text;
    ``msgId`` and ``mobile`` must be present and not empty."""

    msg_id: str = attrs.field(alias="msgId")
    mobile: str
    status: str
    msg: str | None = None
    report_time: str | None = attrs.field(default=None, alias="reportTime")


DTO_CLASSES = (SubmitRequest, SubmitAnswer, StatusReport)


# -- the converter ---------------------------------------------------------------------------

_converter: Any = None


def _result_code(value: Any, _type: Any) -> str:
    code = dialect.normalise_code(value)
    if code is None:
        raise ValueError(f"expected a code as text or a number, got {_describe_value(value)}")
    return code


def _present_text(value: Any, _type: Any) -> str:
    if value is None or value == "":
        raise ValueError("is empty")
    return str(value)


def _status_number(value: Any, _type: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) \
            or not str(value).strip().lstrip("-").isdigit():
        raise ValueError(f"expected a number, got {_describe_value(value)}")
    return str(value).strip()


def converter() -> Any:
    """The plugin's cattrs converter: the core's :func:`smsgate.models.make_converter` plus the
    vendor keys (attrs aliases) and the field checks above."""
    global _converter
    if _converter is None:
        from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

        from smsgate.models import make_converter

        conv = make_converter()
        checks: dict[type, dict[str, Any]] = {
            SubmitAnswer: {"result_code": override(struct_hook=_result_code)},
            StatusReport: {"msg_id": override(struct_hook=_present_text),
                           "mobile": override(struct_hook=_present_text),
                           "status": override(struct_hook=_status_number)},
        }
        for cls in DTO_CLASSES:
            conv.register_structure_hook(cls, make_dict_structure_fn(
                cls, conv, _cattrs_use_alias=True, _cattrs_detailed_validation=True, **checks.get(cls, {})))
            conv.register_unstructure_hook(cls, make_dict_unstructure_fn(cls, conv, _cattrs_use_alias=True))
        _converter = conv
    return _converter


def structure(data: Any, cls: type) -> Any:
    """``data`` as a ``cls``. Raises ValueError whose text names the vendor fields that are
    missing or wrong (e.g. ``ResultCode: missing``)."""
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
