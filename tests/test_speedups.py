"""The ``speedups`` extra (orjson): what is stored and read with it is what the standard library
path stores and reads, for every value; and everything works without it.

The ``json_path`` fixture runs a test once with orjson (skipped where it is not installed) and
once with the standard library alone, as an installation without the extra runs.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import os
import uuid

import attrs
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from smsgate import wire  # noqa: E402
from smsgate.models import DeliveryReport, InboundMessage, Status, TaskSummary  # noqa: E402
from smsgate.receiving.store import Spool, plain_event  # noqa: E402

EXAMPLES = int(os.environ.get("SMSGATE_FUZZ_EXAMPLES", "300"))
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize="CI" in os.environ,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture(params=["orjson", "stdlib"])
def json_path(request, monkeypatch):
    """Which encoder and parser smsgate.wire uses: orjson (the extra) or the standard library."""
    module = pytest.importorskip("orjson") if request.param == "orjson" else None
    monkeypatch.setattr(wire, "_orjson_module", module)
    return request.param


def _with_orjson(monkeypatch):
    monkeypatch.setattr(wire, "_orjson_module", pytest.importorskip("orjson"))


def _without_orjson(monkeypatch):
    monkeypatch.setattr(wire, "_orjson_module", None)


class Colour(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    HIGH = 3


class Text(str):
    pass


class Number(int):
    pass


class Real(float):
    pass


@dataclasses.dataclass
class Point:
    x: int = 1


class Opaque:
    def __str__(self) -> str:
        return "opaque"


#: what a plugin may put into an event's fields or ``raw``: mostly JSON's own values, and now and
#: then one that orjson writes otherwise or refuses (NaN, infinities, ints beyond 64 bits, lone
#: surrogates, enum members, dates, subclasses, keys that are not text) or that only
#: ``default=str`` writes, so that most examples hold none or one of those
plain_texts = st.one_of(st.text(max_size=12), st.sampled_from(["发送成功", "😀", "\x00\x1f\x7f\"\\", "\u2028\u2029"]))
plain = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**63, max_value=2**64 - 1),
                  st.floats(allow_nan=False, allow_infinity=False), plain_texts)
special = st.one_of(
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 2**64, -2**63 - 1, 10**30, Colour.RED, Level.HIGH,
                     Status.DELIVERED, Text("t"), Number(7), Real(2.5), Point(), Opaque(), b"bytes", frozenset({1}),
                     datetime.datetime(2024, 9, 18, 11, 50, 16), datetime.date(2024, 9, 18),
                     decimal.Decimal("1.10"), uuid.UUID(int=5)]),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2))
scalars = st.integers(0, 11).flatmap(lambda n: special if n == 0 else plain)
keys = st.integers(0, 11).flatmap(lambda n: st.one_of(
    st.integers(), st.floats(), st.booleans(), st.none(), st.just(Text("k")), st.just(Status.FAILED),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=2))
    if n == 0 else plain_texts)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.lists(inner, max_size=3).map(tuple), st.dictionaries(keys, inner, max_size=4)),
    max_leaves=16)


def _read(data: bytes) -> str:
    """What json.loads reads back, as text that compares NaN equal to NaN and -0.0 unequal to 0.0."""
    return repr(json.loads(data.decode("utf-8")))


def _encoded(value, path, monkeypatch):
    monkeypatch.setattr(wire, "_orjson_module", path)
    try:
        return wire.json_utf8([value], default=str)[0]
    except Exception as exc:  # noqa: BLE001 - the two paths must fail alike too
        return type(exc)


@SETTINGS
@given(value=st.one_of(values, st.dictionaries(keys, values, max_size=6)))
def test_json_utf8_reads_back_as_the_standard_encoder_writes(value, monkeypatch):
    orjson = pytest.importorskip("orjson")
    fast, plain = _encoded(value, orjson, monkeypatch), _encoded(value, None, monkeypatch)
    if isinstance(plain, type):
        assert fast is plain
        return
    assert plain == wire.json_text(value, default=str).encode("utf-8")
    assert _read(fast) == _read(plain)


@pytest.mark.parametrize("value, stored", [
    ({"f": float("nan"), "g": [float("inf"), -float("inf")]}, b'{"f":NaN,"g":[Infinity,-Infinity]}'),
    ({"big": 2**64, "small": -2**63 - 1}, b'{"big":18446744073709551616,"small":-9223372036854775809}'),
    ({"colour": Colour.RED, "level": Level.HIGH}, b'{"colour":"Colour.RED","level":3}'),
    ({"at": datetime.datetime(2024, 9, 18, 11, 50, 16)}, b'{"at":"2024-09-18 11:50:16"}'),
    ({1: "a", None: "b", 2.5: "c", False: "d"}, b'{"1":"a","null":"b","2.5":"c","false":"d"}'),
    ({"text": "半个\udfff"}, b'{"text":"\\u534a\\u4e2a\\udfff"}'),
    ({"point": Point(), "text": Text("t")}, b'{"point":"Point(x=1)","text":"t"}'),
])
def test_values_orjson_would_write_otherwise_are_the_standard_encoders(value, stored, json_path):
    assert wire.json_utf8([value], default=str) == [stored]


def test_plain_values_go_through_orjson_when_it_is_installed(monkeypatch):
    orjson = pytest.importorskip("orjson")
    calls = []
    monkeypatch.setattr(wire, "_orjson_module", type("Spy", (), {
        "JSONEncodeError": orjson.JSONEncodeError,
        "dumps": staticmethod(lambda v: calls.append(v) or orjson.dumps(v))}))
    report = {"phone": "13800138000", "status": 0, "score": 1e16, "raw": {"msg": "发送成功", "list": [1, None, True]}}
    assert wire.json_utf8([report, {"f": float("nan")}], default=str)[0] == orjson.dumps(report)
    assert calls == [report]  # the NaN never reached orjson


def _events():
    return [
        DeliveryReport(provider="guodu", message_id="G1", phone="13800138000", status=Status.DELIVERED,
                       raw_status="0", description="发送成功", reported_at="2024-09-18 11:50:16",
                       raw={"msg": "发送成功", "status": 0, "score": 1e16, "big": 2**70, "nan": float("nan")}),
        DeliveryReport(provider="guodu", message_id="G2", phone="13800138001", status=Status.FAILED,
                       raw={"msg": "半个\udfff", "when": datetime.date(2024, 9, 18)}),
        InboundMessage(provider="guodu", phone="13800138002", content="TD 😀", raw={"k": [1, 2.5, None]}),
        TaskSummary(provider="juse", task_id="T1", total=3, sent=2, failed=1, raw={"colour": Colour.RED}),
    ]


def test_the_spool_stores_text_that_reads_back_to_the_plain_events(tmp_path, json_path):
    events = _events()
    with Spool(tmp_path / "spool.sqlite3") as spool:
        assert spool.put(events).stored == 4
        rows = spool._book.execute("SELECT typeof(payload), payload FROM events ORDER BY id").fetchall()
        stored = spool.events()
    assert {kind for kind, _ in rows} == {"text"}
    kinds = ["report", "report", "inbound", "task"]
    for (_, payload), event, kind in zip(rows, events, kinds):
        assert _read(payload.encode("utf-8")) == _read(wire.json_text(plain_event(event, kind), default=str).encode())
    # read back: the same models, with what only default=str could write as its text
    expected = [events[0], attrs.evolve(events[1], raw={"msg": "半个\udfff", "when": "2024-09-18"}), events[2],
                attrs.evolve(events[3], raw={"colour": "Colour.RED"})]
    assert repr([item.event for item in stored]) == repr(expected)


def _texts(value):
    """The texts a payload of ``value`` may be stored as: what either path of json_utf8 writes, and
    the standard encoder's ASCII-only form (the escaped lone surrogates of older files)."""
    texts = []
    for path in (pytest.importorskip("orjson"), None):
        wire._orjson_module = path
        try:
            texts.append(wire.json_utf8([value], default=str)[0].decode("utf-8"))
        except Exception:  # noqa: BLE001 - a value neither path writes is not stored either
            return []
    texts.append(json.dumps(value, default=str))
    return texts


@SETTINGS
@given(value=st.one_of(values, st.dictionaries(keys, values, max_size=6)))
def test_load_json_each_reads_what_json_loads_reads(value, monkeypatch):
    monkeypatch.setattr(wire, "_orjson_module", None)
    texts = _texts(value)
    for path in (pytest.importorskip("orjson"), None):
        monkeypatch.setattr(wire, "_orjson_module", path)
        assert [repr(v) for v in wire.load_json_each(texts)] == [repr(json.loads(text)) for text in texts]


@pytest.mark.parametrize("text", [
    '{"big":18446744073709551616,"small":-9223372036854775809}',  # orjson reads these as floats
    '{"raw":[1,{"n":100000000000000000000000}]}', '[NaN,Infinity,-Infinity]', '{"t":"\\u534a\\udfff"}',
    '[1e400]', '{"a":1,"a":2}', '{"f":[0.1,1e16,-0.0,5e-324]}', "[" * 2000 + "]" * 2000,
])
def test_load_json_each_where_orjson_reads_otherwise(text, json_path):
    try:
        expected = repr(json.loads(text))
    except RecursionError:
        with pytest.raises(ValueError):
            wire.load_json_each([text])
        return
    assert [repr(v) for v in wire.load_json_each([text, text])] == [expected, expected]


def test_the_events_file_is_the_same_compact_json_with_or_without_orjson(tmp_path, monkeypatch):
    from smsgate.receiving import JsonlSink

    events = [
        DeliveryReport(provider="guodu", message_id="G1", phone="13800138000", status=Status.DELIVERED,
                       raw_status="0", description="发送成功", raw={"msg": "发送成功", "status": 0, "fee": 0.05}),
        DeliveryReport(provider="guodu", message_id="G2", phone="13800138001", status=Status.FAILED,
                       raw={"big": 2**70, "when": datetime.date(2024, 9, 18)}),
        InboundMessage(provider="guodu", phone="13800138002", content="半个\udfff", raw={"k": [1, None]}),
        TaskSummary(provider="juse", task_id="T1", total=3, sent=2, failed=1,
                    raw={"colour": Colour.RED, "nan": float("nan")}),
    ]
    _without_orjson(monkeypatch)
    with Spool(tmp_path / "spool.sqlite3") as spool:
        spool.put(events)
        items = spool.events()
    files = {}
    for name, use in (("orjson", _with_orjson), ("stdlib", _without_orjson)):
        use(monkeypatch)
        sink = JsonlSink(tmp_path / f"{name}.jsonl")
        sink(items)
        sink.close()
        files[name] = (tmp_path / f"{name}.jsonl").read_bytes()
    assert files["orjson"] == files["stdlib"]
    lines = files["stdlib"].splitlines()
    assert lines[0] == json.dumps(json.loads(lines[0]), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    assert b'"raw":{"msg":"\xe5\x8f\x91\xe9\x80\x81\xe6\x88\x90\xe5\x8a\x9f","status":0,"fee":0.05}' in lines[0]
    assert b'"raw":{"big":1180591620717411303424,"when":"2024-09-18"}' in lines[1]
    assert lines[2].isascii() and b'"content":"\\u534a\\u4e2a\\udfff"' in lines[2]  # only that line escaped
    assert json.loads(lines[2])["content"] == "半个\udfff" and b'"raw":{"colour":"Colour.RED","nan":NaN}' in lines[3]


def _finite(value) -> bool:
    """No NaN or infinity anywhere in a parsed value."""
    if isinstance(value, float):
        return value - value == 0
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    return True


@SETTINGS
@given(value=st.one_of(values, st.dictionaries(keys, values, max_size=6)))
def test_load_json_native_reads_what_load_json_reads_and_tells_values_orjson_writes_alike(value, monkeypatch):
    text = json.dumps(value, default=str, separators=(",", ":"))
    parsed, native = wire.load_json_native(text)
    assert repr(parsed) == repr(wire.load_json(text))
    assert native is _finite(parsed)
    if native:  # then orjson without the walk stores what the standard encoder stores
        monkeypatch.setattr(wire, "_orjson_module", pytest.importorskip("orjson"))
        fast = wire.json_utf8([parsed], default=str, native=True)[0]
        monkeypatch.setattr(wire, "_orjson_module", None)
        assert _read(fast) == _read(wire.json_utf8([parsed], default=str)[0])


@pytest.mark.parametrize("text, native", [
    ('[1,"a",null,true,{"b":[2.5,-0.0,1e16,5e-324]}]', True), ('{"big":100000000000000000000000}', True),
    ("NaN", False), ('{"a":[Infinity]}', False), ("[-Infinity]", False), ("[1e999]", False), ("[-1E400]", False),
    (' {"a":1} ', False), ('"\\ud83d"', True),
])
def test_load_json_native_cases(text, native):
    parsed, found = wire.load_json_native(text)
    assert found is native and repr(parsed) == repr(json.loads(text))
    assert repr(wire.load_json_native(text.encode("utf-8"))) == repr((parsed, native))


@pytest.mark.parametrize("text", ["", "[1,", '{"a":1} x', "[" * 5000 + "]" * 5000, "[NaN,"])
def test_load_json_native_refuses_what_load_json_refuses(text):
    with pytest.raises(ValueError):
        wire.load_json(text)
    with pytest.raises(ValueError):
        wire.load_json_native(text)


def test_native_values_go_to_orjson_without_the_walk(monkeypatch):
    orjson = pytest.importorskip("orjson")
    monkeypatch.setattr(wire, "_orjson_module", orjson)
    walked = []
    walk = wire._orjson_writes
    monkeypatch.setattr(wire, "_orjson_writes", lambda value, depth=0: walked.append(value) or walk(value, depth))
    report = {"phone": "13800138000", "raw": {"status": 0, "big": 2**70, "t": "半个\udfff"}}
    fast = wire.json_utf8([report], default=str, native=True)  # orjson refuses it: the standard encoder's
    assert walked == []
    assert fast == wire.json_utf8([report], default=str) and walked


@SETTINGS
@given(value=st.one_of(values, st.dictionaries(keys, values, max_size=6)), ascii_only=st.booleans())
def test_load_json_utf8_reads_what_the_standard_parser_reads_or_leaves_it(value, ascii_only, monkeypatch):
    monkeypatch.setattr(wire, "_orjson_module", pytest.importorskip("orjson"))
    text = json.dumps(value, default=str, ensure_ascii=ascii_only)
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate kept as it is: not UTF-8, never a body
        return
    read = wire.load_json_utf8(data)
    if read is not None:
        assert read[1] is True and repr(read[0]) == repr(json.loads(text))


@pytest.mark.parametrize("data", [
    b'{"big":18446744073709551616}', b'[-9223372036854775809]', b'["1234567890123456789"]', b"[NaN]",
    b"[Infinity]", b"[1e999]", b'["\\ud83d"]', b"\xef\xbb\xbf[1]", b'["\xff"]', b"[1];", b"", b"[" * 2000 + b"]" * 2000,
])
def test_load_json_utf8_leaves_what_orjson_reads_otherwise_to_the_standard_parser(data, json_path):
    assert wire.load_json_utf8(data) is None


def test_load_json_utf8_reads_with_orjson(monkeypatch):
    monkeypatch.setattr(wire, "_orjson_module", pytest.importorskip("orjson"))
    data = '[{"msg":"发送成功","status":0,"n":-922337203685477580,"f":[0.1,-0.0,1e16],"t":"\\u534a"}]'.encode()
    value, native = wire.load_json_utf8(data)
    assert native is True and repr(value) == repr(json.loads(data))
