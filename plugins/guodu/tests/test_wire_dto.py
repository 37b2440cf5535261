"""The vendor JSON shapes as attrs classes: unreadable answers and pushes name the vendor field,
the submitJson body keeps its keys, order and bytes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from smsgate import CallbackRequest, HttpRequest, HttpResponse, Message, Operation, ProviderError, ValidationError
from smsgate_guodu import wire


def parse(gw, answer):
    body = answer if isinstance(answer, bytes) else json.dumps(answer).encode("utf-8")
    return gw.hooks("guodu").parse_response(ctx=gw.context("guodu", Operation.SEND), operation=Operation.SEND,
                                            request=HttpRequest(url="http://127.0.0.1/HttpQuickProcess/submitJson"),
                                            response=HttpResponse(status=200, body=body))


@pytest.mark.parametrize("answer,field", [
    ({"Result": "00"}, "ResultCode: missing"),
    ({"ResultCode": True, "MsgId": "1"}, "ResultCode: expected a code as text or a number, got boolean true"),
    ({"ResultCode": "  ", "MsgId": "1"}, "ResultCode: expected a code"),
    ({"ResultCode": ["00"]}, "ResultCode: expected a code"),
    ([{"ResultCode": "00"}], "expected a JSON object"),
    (b"null", "expected a JSON object"),
])
def test_unreadable_answer_names_the_vendor_field(gw, answer, field):
    with pytest.raises(ProviderError) as err:
        parse(gw, answer)
    assert type(err.value) is ProviderError and not err.value.not_sent and err.value.code == "HTTP200"
    assert field in str(err.value)


def test_unreadable_answer_leaves_recipients_unknown_with_the_field_in_the_reason(gw, sim):
    sim.handle = lambda request: HttpResponse.of_json({"Resultcode": "00", "MsgId": "1"})
    result = gw.send(Message(to=["13800138000"], text="hi"), provider="guodu")
    assert result.unknown == ["13800138000"] and not result.accepted and not result.rejected
    assert "ResultCode" in result.recipients[0].reason.message


def test_answer_dto_reads_numbers_the_way_the_document_writes_codes():
    assert wire.WIRE.read({"ResultCode": 3, "MsgId": 77}, wire.SubmitAnswer) == \
        wire.SubmitAnswer(ResultCode="03", MsgId="77")
    assert wire.WIRE.read({"ResultCode": -1}, wire.SubmitAnswer).result_code == "-1"


def push(gw, items):
    body = json.dumps(items, ensure_ascii=False).encode("utf-8")
    return gw.handle_callback("guodu", CallbackRequest(path="/callbacks/guodu", body=body,
                                                      headers={"Content-Type": "application/json"}))


GOOD = {"msg": "ok", "mobile": "13800138000", "msgId": "1", "reportTime": "2022-12-12 12:00:00", "status": 0}


@pytest.mark.parametrize("item,words", [
    ({**GOOD, "status": "ok"}, ["[1]", "status: expected a number, got text 'ok'"]),
    ({**GOOD, "status": True}, ["[1]", "status: expected a number, got boolean true"]),
    ({k: v for k, v in GOOD.items() if k != "msgId"}, ["[1]", "msgId: missing"]),
    ({**GOOD, "mobile": ""}, ["[1]", "mobile: is empty"]),
    ({"status": None}, ["[1]", "msgId: missing", "mobile: missing", "status: expected a number"]),
])
def test_malformed_report_names_the_item_and_the_vendor_field(gw, item, words):
    with pytest.raises(ValidationError) as err:
        push(gw, [GOOD, item])
    assert err.value.field == "body"
    for word in words:
        assert word in str(err.value)


def test_submit_body_is_the_dto_in_the_documents_order(gw):
    ctx = gw.context("guodu", Operation.SEND)
    body = gw.hooks("guodu").build_request(ctx=ctx, operation=Operation.SEND,
                                           payload=Message(to=["13800138000", "13900139000"], text="a b~"))
    cfg = ctx.config
    assert body.body == json.dumps({"OperID": cfg.oper_id, "OperPass": cfg.oper_pass, "SendTime": "",
                                    "AppendID": cfg.append_id, "DesMobile": "13800138000,13900139000",
                                    "Content": "a+b%7E"}, ensure_ascii=False, separators=(",", ":")).encode()
    req = wire.SubmitRequest(OperID="u", OperPass="hidden", SendTime="", AppendID="", DesMobile="1", Content="x")
    assert "hidden" not in repr(req)


def test_importing_the_plugin_does_not_import_cattrs():
    code = "import sys, smsgate_guodu.plugin; print('cattrs' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_fast_report_reader_gives_what_the_converter_gives():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from smsgate.wire import Wire, WireError
    from smsgate_guodu import wire

    strict = Wire(use_alias=True, strict_str=False, hooks=wire.WIRE._hooks)  # no fast reader
    value = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=False),
                      st.text(max_size=6), st.sampled_from(["0", " 2 ", "-1", "", "x1"]),
                      st.lists(st.integers(), max_size=1))
    keys = st.sampled_from(["msgId", "mobile", "status", "msg", "reportTime", "other"])
    item = st.dictionaries(keys, value, max_size=6) | st.fixed_dictionaries(
        {"msgId": st.text(min_size=1, max_size=5), "mobile": st.text(min_size=1, max_size=5),
         "status": st.integers(-3, 3) | st.sampled_from(["0", "1", " 7"])},
        optional={"msg": st.none() | st.text(max_size=4), "reportTime": st.none() | st.text(max_size=4)})

    def read(w, data):
        try:
            return w.read(data, wire.StatusReport)
        except WireError as exc:
            return ("error", str(exc))

    @settings(max_examples=300, deadline=None)
    @given(item)
    def check(data):
        assert read(wire.WIRE, data) == read(strict, data)

    check()
