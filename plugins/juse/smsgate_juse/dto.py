"""juse's JSON shapes as frozen attrs classes, and how they are read and written with cattrs.

Attribute names are the vendor's field names, so a class reads like the document's table and an
error names the field the vendor sent wrong. Class names follow the document where it gives one
(``SendSmsRecordDto``, ``SendSmsTaskDto``, ``SmsDeliverDto``).

Reading goes through :func:`structure`, which uses a converter made with
:func:`smsgate.models.make_converter` plus a few juse hooks (strict text, whole-number counts,
non-empty ids, JSON objects and arrays checked before they are read); a body that does not fit
raises :class:`Malformed` whose message names the fields, e.g.
``sendSmsTaskDto.totalCount: expected a whole number, got text 'many'``. Request bodies are written
by :func:`unstructure` with the core's shared converter (attribute order = key order on the wire).

cattrs is imported inside the functions: importing the plugin stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NewType, Optional, Tuple

import attrs

#: JSON text and nothing else (a number or null is an error)
Text = NewType("Text", str)
#: a whole number, or its text; null counts as 0 (the document types counts as Integer)
Count = NewType("Count", int)
#: a non-empty number or text, kept as text (the document types ids as Long)
RequiredId = NewType("RequiredId", str)
#: the answer's ``code``: a number or text, kept as text; null is an error
Code = NewType("Code", str)


class WireError(ValueError):
    """One value that is not what the document says; the message says what was expected."""


class Malformed(ValueError):
    """A body that does not fit its class; the message names every field that was wrong."""


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
    totalCount: Count = 0
    sendCount: Count = 0
    failCount: Count = 0


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
class SmsReportPush(JusePush):
    sendSmsRecordDtoList: Optional[Tuple[SendSmsRecordDto, ...]] = None


@attrs.frozen(kw_only=True)
class SmsTaskReportPush(JusePush):
    sendSmsTaskDto: SendSmsTaskDto


@attrs.frozen(kw_only=True)
class SmsDeliverPush(JusePush):
    smsDeliverDtoList: Optional[Tuple[SmsDeliverDto, ...]] = None


#: push ``type`` -> its class. The lists are read by their names: the document's table pairs two
#: of them with the wrong type.
PUSH_TYPES: dict[str, type] = {
    "sms_report": SmsReportPush,
    "sms_task_report": SmsTaskReportPush,
    "sms_deliver": SmsDeliverPush,
}


# -- reading and writing ------------------------------------------------------------------------

def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"text {value[:40]!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__


def _text(value: Any, _: Any) -> str:
    if not isinstance(value, str):
        raise WireError(f"expected text, got {_kind(value)}")
    return value


def _count(value: Any, _: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise WireError(f"expected a whole number, got {_kind(value)}")
    try:
        return int(value)
    except ValueError:
        raise WireError(f"expected a whole number, got {_kind(value)}") from None


def _required_id(value: Any, _: Any) -> str:
    if value in (None, "") or isinstance(value, (bool, list, Mapping)):
        raise WireError(f"expected a non-empty id, got {_kind(value)}")
    return str(value)


def _code(value: Any, _: Any) -> str:
    if value is None:
        raise WireError("expected a code, got null")
    return str(value)


def _is_ours(t: Any) -> bool:
    return isinstance(t, type) and attrs.has(t) and getattr(t, "__module__", None) == __name__


def _is_array(t: Any) -> bool:
    args = getattr(t, "__args__", None)
    return getattr(t, "__origin__", None) is tuple and bool(args) and len(args) == 2 and args[1] is Ellipsis


def _make_converter() -> Any:
    from cattrs.errors import IterableValidationError, IterableValidationNote
    from cattrs.gen import make_dict_structure_fn

    from smsgate.models import make_converter

    conv = make_converter()
    conv.register_structure_hook(Text, _text)
    conv.register_structure_hook(Count, _count)
    conv.register_structure_hook(RequiredId, _required_id)
    conv.register_structure_hook(Code, _code)

    def object_hook(cl: type) -> Any:
        read = make_dict_structure_fn(cl, conv)

        def hook(value: Any, _: Any) -> Any:
            if not isinstance(value, Mapping):  # cattrs would read a text or a list as an empty object
                raise WireError(f"expected a JSON object, got {_kind(value)}")
            return read(value, cl)

        return hook

    def array_hook(t: Any) -> Any:
        item_type = t.__args__[0]

        def hook(value: Any, _: Any) -> tuple:
            if not isinstance(value, list):  # cattrs would iterate an object's keys or a text's letters
                raise WireError(f"expected a JSON array, got {_kind(value)}")
            items, errors = [], []
            for index, item in enumerate(value):
                try:
                    items.append(conv.structure(item, item_type))
                except Exception as exc:  # collected and named, as cattrs does for its own lists
                    note = IterableValidationNote(f"Structuring {t!r} @ index {index}", index, item_type)
                    exc.__notes__ = [*getattr(exc, "__notes__", []), note]
                    errors.append(exc)
            if errors:
                raise IterableValidationError(f"While structuring {t!r}", errors, t)
            return tuple(items)

        return hook

    conv.register_structure_hook_factory(_is_ours, object_hook)
    conv.register_structure_hook_factory(_is_array, array_hook)
    return conv


_converter: Any = None


def converter() -> Any:
    """The juse reading converter (built on first use)."""
    global _converter
    if _converter is None:
        _converter = _make_converter()
    return _converter


def _format(exc: BaseException, type_: Any) -> str:
    from cattrs.v import format_exception

    if isinstance(exc, WireError):
        return str(exc)
    if isinstance(exc, KeyError):
        return "missing"
    return format_exception(exc, type_)


def describe(exc: BaseException, path: str = "$") -> str:
    """``field: what is wrong`` for every error cattrs collected, joined by ``; ``."""
    from cattrs import transform_error

    parts = []
    for line in transform_error(exc, path, format_exception=_format):
        what, _, where = line.rpartition(" @ ")
        where = "body" if where == "$" else where[2:] if where.startswith("$.") else where
        parts.append(f"{where}: {what}")
    return "; ".join(parts)


def structure(data: Any, cl: type, path: str = "$") -> Any:
    """``data`` (parsed JSON) as an instance of ``cl``; raises :class:`Malformed` naming the fields."""
    from cattrs.errors import BaseValidationError

    try:
        return converter().structure(data, cl)
    except (BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise Malformed(describe(exc, path)) from None


def unstructure(value: Any) -> dict[str, Any]:
    """A request class as the body's fields, in attribute order (the core's shared converter)."""
    from smsgate import converter as shared

    return shared().unstructure(value)
