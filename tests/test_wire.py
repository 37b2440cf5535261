import attrs
import pytest

from smsgate.wire import Wire, WireError


@attrs.frozen
class Item:
    tel: str
    status: int
    ok: bool = False


@attrs.frozen
class Push:
    apiKey: str
    data: tuple[Item, ...]


@attrs.frozen(kw_only=True)
class Answer:
    result_code: str = attrs.field(alias="ResultCode")
    msg_id: str | None = attrs.field(default=None, alias="MsgId")


def test_reads_nested_shapes():
    push = Wire().read({"apiKey": "k", "data": [{"tel": "138", "status": 1, "ok": True}]}, Push)
    assert push == Push("k", (Item("138", 1, True),))


def test_every_bad_field_is_named_by_its_path():
    with pytest.raises(WireError) as err:
        Wire().read({"apiKey": 5, "data": [{"tel": "1", "status": 1}, {"status": "x", "ok": "false"}]}, Push)
    text = str(err.value)
    assert "apiKey: expected text, got int 5" in text
    assert "data[1].tel: missing" in text
    assert "data[1].ok: expected a JSON boolean" in text


@pytest.mark.parametrize("data,needle", [
    ("not an object", "body: expected a JSON object, got text"),
    ({"apiKey": "k", "data": {"tel": "1"}}, "data: expected a JSON array, got an object"),
    ({"apiKey": "k", "data": "abc"}, "data: expected a JSON array, got text"),
    ({"apiKey": None, "data": []}, "apiKey: expected text, got null"),
])
def test_lenient_cattrs_defaults_are_refused(data, needle):
    with pytest.raises(WireError) as err:
        Wire().read(data, Push)
    assert needle in str(err.value)


def test_aliases_are_the_vendor_keys_both_ways():
    wire = Wire(use_alias=True)
    assert wire.read({"ResultCode": "00", "MsgId": "9"}, Answer) == Answer(ResultCode="00", MsgId="9")
    assert wire.write(Answer(ResultCode="03")) == {"ResultCode": "03", "MsgId": None}
    with pytest.raises(WireError, match="ResultCode: missing"):
        wire.read({"MsgId": "9"}, Answer)


def test_extra_hooks_for_lenient_vendor_fields():
    from typing import NewType

    VendorId = NewType("VendorId", str)

    @attrs.frozen
    class WithId:
        id: VendorId

    assert Wire(hooks={VendorId: lambda v, _: str(v)}).read({"id": 12}, WithId) == WithId("12")


def test_building_a_wire_imports_nothing_heavy():
    import subprocess
    import sys

    code = "import sys; from smsgate.wire import Wire; Wire(use_alias=True); print('cattrs' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("value", [
    {"a": "é", "b": [1, 2.5, None, True, False], "c": {"d": "\u0000\"\\"}},
    ["\udfff", float("inf"), 10**30, -0.0],
    [float("nan")],
    {"bytes": b"x", "set": {1}},
    "plain", 3, None,
])
@pytest.mark.parametrize("separators", [(",", ":"), (", ", ": ")])
def test_json_encoder_writes_what_json_dumps_writes(value, separators):
    import json

    from smsgate.wire import json_encoder, json_text

    dumps = json_encoder(default=str, separators=separators)
    assert dumps(value) == json.dumps(value, ensure_ascii=False, separators=separators, default=str)
    text = json_text(value, default=str, separators=separators)
    text.encode("utf-8")  # always UTF-8, escaped when the value holds a lone surrogate
    surrogate = isinstance(value, list) and "\udfff" in value
    assert text == json.dumps(value, ensure_ascii=surrogate, separators=separators, default=str)


def test_json_bytes_is_json_text_encoded():
    from smsgate.wire import json_bytes, json_text

    for value in ({"phones": ["13800138000"], "params": ["1234"], "sign": None}, {"text": "验证码 é"},
                  {"text": "half an emoji \udfff"}, [1, 2.5, True, None], {}):
        assert json_bytes(value) == json_text(value).encode("utf-8")
    assert json_bytes({"text": "\udfff"}) == b'{"text":"\\udfff"}'
