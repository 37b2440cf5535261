"""opass's JSON shapes as frozen attrs classes, and how they are read and written with cattrs.

Attribute names are the vendor's field names, so a class reads like the document's table and an
error names the field the vendor sent wrong. Class names follow the document's Java SDK where it
gives one (``SmsResponse``, ``MessageSendResVo``, ``ArriveInfoResVo``).

Reading goes through :func:`structure`, which uses a converter made with
:func:`smsgate.models.make_converter` plus a few opass hooks (strict text, JSON objects and arrays
checked before they are read, push items told apart by their fields); a body that does not fit
raises :class:`Malformed` whose message names the fields, e.g. ``data[0].tel: missing``. Request
bodies are written by :func:`unstructure` with the core's shared converter (attribute order = key
order on the wire; None fields are then left out by :func:`smsgate_opass.dialect.body_bytes`).

cattrs is imported inside the functions: importing the plugin stays cheap.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NewType, Optional, Tuple, Union

import attrs

#: JSON text and nothing else (a number or null is an error)
Text = NewType("Text", str)


class WireError(ValueError):
    """One value that is not what the document says; the message says what was expected."""


class Malformed(ValueError):
    """A body that does not fit its class; the message names every field that was wrong."""


# -- answers ------------------------------------------------------------------------------------

@attrs.frozen(kw_only=True)
class SmsResponse:
    """Every answer: ``{"code":200,"message":…,"data":…,"requestId":…}``. ``data`` depends on the
    call and is read once the code says success (an error answer's ``data`` is not looked at)."""

    code: Any  #: a number or text; required (an answer without it is not the vendor's)
    message: Optional[str] = None
    data: Any = None
    requestId: Optional[str] = None


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


# -- reading and writing ------------------------------------------------------------------------

def _push_item(conv: Any, value: Any) -> Any:
    if not isinstance(value, Mapping):
        raise WireError(f"expected a JSON object, got {_kind(value)}")
    if "content" in value or "srcId" in value:
        return conv.structure(value, UplinkMessageDto)
    if "arriveResult" in value or "arrive" in value:
        return conv.structure(value, ArriveInfoResVo)
    raise WireError("neither a report (arriveResult) nor an inbound SMS (content, srcId)")


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
    conv.register_structure_hook(PushItem, lambda value, _: _push_item(conv, value))

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
    """The opass reading converter (built on first use)."""
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
