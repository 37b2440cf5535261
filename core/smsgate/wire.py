"""Vendor JSON in and out of attrs classes through cattrs, strictly, with errors that name fields.

A plugin declares its vendor's shapes as frozen attrs classes (attribute names may be the
vendor's keys, or snake_case with the vendor's key as the attrs ``alias``) and one module-level
:class:`Wire` (``WIRE = Wire(use_alias=True)``; the cattrs converter is built on first use).
Reading is strict where cattrs' defaults are lenient:

- an attrs class reads only a JSON object (cattrs would take any mapping-like or fail obscurely);
- ``tuple[X, ...]`` and ``list[X]`` read only a JSON array (cattrs would iterate a string's letters
  or an object's keys);
- ``bool`` reads only a JSON boolean (cattrs would read the text ``"false"`` as True);
- ``str`` reads only JSON text (cattrs would turn ``123`` or ``null`` into ``"123"``/``"None"``).

:meth:`Wire.read` raises :class:`WireError` whose text names every field that was missing or wrong, by
the vendor's key path: ``data[1].tel: missing; code: expected text, got int 200``. Values are
never echoed beyond a short excerpt of the offending value itself.

cattrs is imported only when a converter is built, so importing a plugin stays cheap.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import attrs


class WireError(ValueError):
    """A vendor JSON value that does not have the documented shape. ``str()`` names the fields."""


def json_text(value: Any, *, default: Callable[[Any], Any] | None = None,
              separators: tuple[str, str] = (",", ":")) -> str:
    """``value`` as JSON text that always encodes to UTF-8.

    Non-ASCII text is kept as it is, except when the value holds a lone surrogate (``"\\udfff"``,
    what a vendor writes when it cuts an emoji in half): then the whole text is ``\\u``-escaped
    ASCII. ``json.loads`` reads both forms back to the same value, so nothing is lost either way.
    """
    text = json_encoder(default=default, separators=separators)(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, ensure_ascii=True, separators=separators, default=default)
    return text


_ENCODERS: dict[tuple[Any, tuple[str, str]], Callable[[Any], str]] = {}


def json_encoder(*, default: Callable[[Any], Any] | None = None,
                 separators: tuple[str, str] = (",", ":")) -> Callable[[Any], str]:
    """A function doing ``json.dumps(value, ensure_ascii=False, separators=separators,
    default=default)`` without its per-call set-up (``json.dumps`` builds an encoder object and
    its C encoder for every call, which costs more than encoding a small object). The text may
    hold lone surrogates (see :func:`json_text`). Falls back to ``json.dumps`` where the C encoder
    is missing or writes something else."""
    key = (default, separators)
    cached = _ENCODERS.get(key)
    if cached is not None:
        return cached

    def dumps(value: Any) -> str:
        return json.dumps(value, ensure_ascii=False, separators=separators, default=default)

    encoder: Callable[[Any], str] = dumps
    try:
        from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]

        if c_make_encoder is not None:
            # markers None: no cycle check (JSON read from a body has no cycles; a value that had
            # one ends in RecursionError instead of ValueError)
            encode = c_make_encoder(None, default, encode_basestring, None, separators[1], separators[0],
                                    False, False, True)
            probe = {"a": ["é\udfff", 1, 2.5, None, True, {"b": "\u0000\"\\"}], "c": float("nan")}
            if "".join(encode(probe, 0)) == dumps(probe):
                def encoder(value: Any) -> str:
                    return "".join(encode(value, 0))
    except Exception:  # another Python's C encoder: the plain way
        encoder = dumps
    if default is None or default is str:
        _ENCODERS[key] = encoder
    return encoder


_plain_json = json_encoder()  # json_text's encoder for the default separators and no ``default``


def json_bytes(value: Any, *, default: Callable[[Any], Any] | None = None) -> bytes:
    """``json_text(value, default=default).encode()`` (a request body) with the text encoded
    once: every send request's body passes here."""
    encode = _plain_json if default is None else json_encoder(default=default)
    try:
        return encode(value).encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: json_text's escaped form
        return json_text(value, default=default).encode("utf-8")


_UNSET: Any = object()
_orjson_module: Any = _UNSET  # orjson (the ``speedups`` extra) once looked for; None when not installed


def _orjson() -> Any:
    """The orjson module when installed (``pip install 'smsgate[speedups]'``), else None."""
    global _orjson_module
    if _orjson_module is _UNSET:
        import importlib

        try:
            _orjson_module = importlib.import_module("orjson")
        except ImportError:
            _orjson_module = None
    return _orjson_module


def _orjson_writes(value: Any, depth: int = 0) -> bool:
    """True when ``value`` holds only values that orjson writes as ``json.dumps`` does, give or
    take spelling (``1e16`` for ``1e+16``): JSON's own types, floats finite. orjson writes NaN and
    the infinities as ``null``, enum members by their value and dates its own way, so anything else
    is left to the standard encoder. What orjson refuses (ints beyond 64 bits, lone surrogates,
    keys that are not text, nesting past 254) makes it raise, so that needs no check here."""
    kind = type(value)
    if kind is dict:
        items: Iterable[Any] = value.values()
    elif kind is list or kind is tuple:
        items = value
    else:
        return kind is str or value is None or kind is int or kind is bool or (kind is float and value - value == 0)
    for item in items:
        kind = type(item)
        if kind is str or item is None or kind is int or kind is bool:
            continue
        if kind is dict or kind is list or kind is tuple:
            if depth > 250 or not _orjson_writes(item, depth + 1):
                return False
        elif kind is not float or item - item != 0:  # inf - inf and NaN - NaN are NaN
            return False
    return True


def json_utf8(values: Iterable[Any], *, default: Callable[[Any], Any] | None = None,
              native: bool = False) -> list[bytes]:
    """Each of ``values`` as UTF-8 JSON, for storing: ``json_text(value, default=default)``
    encoded, or, with orjson installed (the ``speedups`` extra), what orjson writes for a value of
    JSON's own types, which ``json.loads`` reads back to the same value. orjson takes about a
    tenth of the standard encoder's time for a delivery report, and every event of every push is
    encoded; values it would write otherwise, or refuses, go to the standard encoder.

    ``native=True``: the caller knows that the values hold only text, ints, finite floats,
    booleans, None, and dicts (text keys) and lists of these (:func:`load_json_native` tells so of
    a parsed body), so they go to orjson without the walk over every value that looks for anything
    else (the walk takes about as long as orjson's own work on a delivery report). What orjson
    refuses among them (ints beyond 64 bits, lone surrogates, nesting past 254) still goes to the
    standard encoder."""
    return list(json_utf8_each(values, default=default, native=native))


def json_utf8_each(values: Iterable[Any], *, default: Callable[[Any], Any] | None = None,
                   native: bool = False) -> Iterator[bytes]:
    """:func:`json_utf8`'s encodings one at a time. Copying each into one buffer before taking
    the next is much cheaper than keeping them all: every ``orjson.dumps`` result is cut down from
    a larger buffer, and with hundreds of them alive glibc's malloc gives memory back to the system
    (and takes it again) on nearly every call, which costs several times the encoding itself."""
    orjson = _orjson()
    if orjson is None:
        for value in values:
            yield json_bytes(value, default=default)
        return
    for value in values:
        if native or _orjson_writes(value):
            try:
                yield orjson.dumps(value)
                continue
            except orjson.JSONEncodeError:
                pass
        yield json_bytes(value, default=default)


def _holds_float(value: Any) -> bool:
    """True when a dict or list from ``orjson.loads`` holds a float anywhere."""
    for item in value.values() if type(value) is dict else value:
        kind = type(item)
        if kind is float or ((kind is dict or kind is list) and _holds_float(item)):
            return True
    return False


def load_json_each(texts: Iterable[str]) -> list[Any]:
    """Each of ``texts`` parsed as :func:`load_json` parses it, for reading back what
    :func:`json_utf8` stored. With orjson installed, what orjson reads where that is the same value:
    orjson refuses NaN, the infinities and escaped lone surrogates, and reads an int beyond 64 bits
    as a float, so a text it refuses or that gives a float anywhere (rare in what vendors send) is
    parsed by the standard parser instead."""
    orjson = _orjson()
    if orjson is None:
        return [load_json(text) for text in texts]
    loads = orjson.loads
    out = []
    for text in texts:
        try:
            value = loads(text)
        except ValueError:  # orjson.JSONDecodeError, or text that is not UTF-8
            value = load_json(text)
        else:
            kind = type(value)
            if kind is float or ((kind is dict or kind is list) and _holds_float(value)):
                value = load_json(text)
        out.append(value)
    return out


_scan_json: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def load_json(data: bytes | str) -> Any:
    """Parse JSON text (bytes are read as UTF-8). Raises ``ValueError`` for anything that is not
    JSON, including text nested so deep that the parser would raise ``RecursionError``."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        try:  # the usual answer, one JSON value and nothing around it: the scanner alone
            value, end = _scan_json(text, 0)
            if end == len(text):
                return value
        except StopIteration:
            pass
        return json.loads(text)  # anything else, with json.loads' own errors
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


class _NotFinite(Exception):
    """Ends :func:`load_json_native`'s first scan at a NaN or an infinity."""


def _finite_float(text: str) -> float:
    value = float(text)
    if value - value != 0:  # 1e999 is read as an infinity
        raise _NotFinite
    return value


def _not_finite(_: str) -> Any:
    raise _NotFinite


#: the scanner again, calling back for every float, NaN and infinity (which the plain one reads
#: itself); a NaN or infinity ends the scan. A body without floats costs what load_json costs.
_scan_json_native: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder(  # type: ignore[attr-defined]
    parse_float=_finite_float, parse_constant=_not_finite).scan_once


def load_json_native(data: bytes | str) -> tuple[Any, bool]:
    """:func:`load_json`'s value, and True when it holds no NaN or infinity: then it holds only
    text, ints, finite floats, booleans, None, dicts and lists, what :func:`json_utf8` may write
    with ``native=True``. False also for JSON with anything around the value (whitespace), which
    is parsed by :func:`load_json` as before. Errors are :func:`load_json`'s."""
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        try:
            value, end = _scan_json_native(text, 0)
            if end == len(text):
                return value, True
        except (StopIteration, _NotFinite):
            pass
    except RecursionError:
        raise ValueError("JSON nested too deep") from None
    return load_json(text), False


#: every digit made "0" and every other byte a space: a run of 19 "0"s is a number (or text)
#: that orjson may read otherwise than the standard parser
_DIGITS_ONLY = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))
_LONG_NUMBER = b"0" * 19


def load_json_utf8(data: bytes) -> tuple[Any, bool] | None:
    """``(value, True)``: the UTF-8 JSON ``data`` read by orjson, where orjson is installed and
    reads what :func:`load_json_native` reads from its text (in about half the time); None
    otherwise: read it with :func:`load_json_native` then. orjson refuses NaN, infinities,
    escaped lone surrogates, a byte-order mark and bytes that are not UTF-8, and reads an int
    beyond 64 bits as a float, so a body with a run of 19 digits anywhere (even inside text) is
    left to the standard parser. What orjson reads holds only JSON's own values (the True)."""
    orjson = _orjson()
    if orjson is None or _LONG_NUMBER in data.translate(_DIGITS_ONLY):
        return None
    try:
        return orjson.loads(data), True
    except ValueError:  # orjson.JSONDecodeError
        return None


def kind(value: Any) -> str:
    """A short description of a JSON value for error messages: ``int 200``, ``text 'abc'``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if isinstance(value, str):
        return f"text {value[:30]!r}"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return f"{type(value).__name__} {str(value)[:30]}"


def _strict_str(value: Any, _: Any) -> str:
    if isinstance(value, str):
        return value
    raise WireError(f"expected text, got {kind(value)}")


def _strict_bool(value: Any, _: Any) -> bool:
    if isinstance(value, bool):
        return value
    raise WireError(f"expected a JSON boolean, got {kind(value)}")


def _is_homogeneous_sequence(t: Any) -> bool:
    origin = getattr(t, "__origin__", None)
    args: tuple[Any, ...] = tuple(getattr(t, "__args__", None) or ())
    if origin is tuple:
        return len(args) == 2 and args[1] is Ellipsis
    return origin is list and len(args) == 1


def wire_converter(*, use_alias: bool = False, strict_str: bool = True,
                   hooks: Mapping[Any, Callable[[Any, Any], Any]] | None = None) -> Any:
    """A cattrs converter for one vendor's JSON.

    ``use_alias``: read and write attrs classes by their fields' ``alias`` (the vendor's keys)
    instead of their names. ``hooks``: extra structure hooks, by type (for instance a NewType
    for the vendor's lenient id fields: ``{VendorId: lambda v, _: str(v)}``). Unstructuring
    writes attrs classes as dicts in field order (the order a body's keys go on the wire).
    """
    from cattrs.errors import IterableValidationError, IterableValidationNote
    from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn

    from .models import make_converter

    conv = make_converter()
    conv.register_structure_hook(bool, _strict_bool)
    if strict_str:
        conv.register_structure_hook(str, _strict_str)
    for tp, hook in (hooks or {}).items():
        conv.register_structure_hook(tp, hook)

    def object_hook(cl: type) -> Callable[[Any, Any], Any]:
        structure: Callable[[Any, Any], Any] = make_dict_structure_fn(cl, conv, _cattrs_use_alias=use_alias,
                                           _cattrs_detailed_validation=True)

        def hook(value: Any, _: Any) -> Any:
            if not isinstance(value, Mapping):
                raise WireError(f"expected a JSON object, got {kind(value)}")
            return structure(value, cl)

        return hook

    def sequence_hook(t: Any) -> Callable[[Any, Any], Any]:
        item_type = t.__args__[0]
        as_tuple = t.__origin__ is tuple

        def hook(value: Any, _: Any) -> Any:
            if not isinstance(value, list):
                raise WireError(f"expected a JSON array, got {kind(value)}")
            items, errors = [], []
            for index, item in enumerate(value):
                try:
                    items.append(conv.structure(item, item_type))
                except Exception as exc:  # collected, as cattrs does, so every bad item is named
                    note = IterableValidationNote(f"Structuring {t!r} @ index {index}", index, item_type)
                    # setattr: BaseException.__notes__ is 3.11+ (cattrs reads it on 3.10 too)
                    setattr(exc, "__notes__", [*getattr(exc, "__notes__", []), note])  # noqa: B010
                    errors.append(exc)
            if errors:
                raise IterableValidationError(f"While structuring {t!r}", errors, t)
            return tuple(items) if as_tuple else items

        return hook

    conv.register_structure_hook_factory(attrs.has, object_hook)
    conv.register_structure_hook_factory(_is_homogeneous_sequence, sequence_hook)
    conv.register_unstructure_hook_factory(
        attrs.has, lambda cl: make_dict_unstructure_fn(cl, conv, _cattrs_use_alias=use_alias))
    return conv


def describe(exc: BaseException, *, use_alias: bool = False, path: str = "") -> list[str]:
    """``"<key path>: <what is wrong>"`` for every error cattrs collected in ``exc``."""
    from cattrs.errors import ClassValidationError, IterableValidationError

    if isinstance(exc, ClassValidationError):
        keys = {}
        if attrs.has(exc.cl):
            keys = {a.name: (a.alias if use_alias and a.alias else a.name) for a in attrs.fields(exc.cl)}
        lines: list[str] = []
        with_notes, without = exc.group_exceptions()
        for sub, note in with_notes:
            key = keys.get(note.name, note.name)
            lines.extend(describe(sub, use_alias=use_alias, path=f"{path}.{key}" if path else key))
        for sub in without:
            lines.extend(describe(sub, use_alias=use_alias, path=path))
        return lines
    if isinstance(exc, IterableValidationError):
        lines = []
        item_notes, without = exc.group_exceptions()
        for sub, item_note in item_notes:
            lines.extend(describe(sub, use_alias=use_alias, path=f"{path}[{item_note.index!r}]"))
        for sub in without:
            lines.extend(describe(sub, use_alias=use_alias, path=path))
        return lines
    where = path or "body"
    if isinstance(exc, KeyError):
        return [f"{where}: missing"]
    text = str(exc)
    if isinstance(exc, (TypeError, AttributeError)) and not isinstance(exc, WireError):
        text = "has the wrong type"  # cattrs' own messages here are about Python, not the JSON
    return [f"{where}: {text or type(exc).__name__}"]


class Wire:
    """One vendor's JSON dialect: ``read`` parsed JSON into attrs classes, ``write`` them back.

    The converter (:func:`wire_converter`) is built on first use, so a module-level ``Wire`` costs
    nothing at import time.
    """

    def __init__(self, *, use_alias: bool = False, strict_str: bool = True,
                 hooks: Mapping[Any, Callable[[Any, Any], Any]] | None = None,
                 fast: Mapping[Any, Callable[[Any], Any]] | None = None):
        self.use_alias = use_alias
        self._strict_str = strict_str
        self._hooks = dict(hooks or {})
        #: per class, a reader for the common well-formed value that returns exactly what the
        #: converter would, or None to leave the value to the converter (and its errors naming
        #: fields): for shapes read hundreds of times per body (a push of 250 reports)
        self._fast = dict(fast or {})
        self._converter: Any = None

    @property
    def converter(self) -> Any:
        if self._converter is None:
            self._converter = wire_converter(use_alias=self.use_alias, strict_str=self._strict_str, hooks=self._hooks)
        return self._converter

    def read(self, data: Any, cl: Any) -> Any:
        """``data`` (parsed JSON) as ``cl``; raises :class:`WireError` naming every bad field."""
        fast = self._fast.get(cl)
        if fast is not None:
            value = fast(data)
            if value is not None:
                return value
        from cattrs.errors import BaseValidationError

        try:
            return self.converter.structure(data, cl)
        except (BaseValidationError, ValueError, TypeError, KeyError, AttributeError, OverflowError) as exc:
            raise WireError("; ".join(describe(exc, use_alias=self.use_alias)) or "unreadable") from None

    def write(self, value: Any) -> Any:
        """An attrs value as JSON-ready data (dict keys in field order)."""
        return self.converter.unstructure(value)
