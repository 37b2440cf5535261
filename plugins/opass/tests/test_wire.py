"""The vendor's JSON read into attrs classes: malformed answers and pushes are refused with the
same classified errors as before, and the message names the field that was wrong."""

from __future__ import annotations

import json

import pytest

from smsgate import CallbackRequest, HttpResponse, Message, Operation, ProviderError, ValidationError
from smsgate_opass import plugin, wire

TEMPLATE = "574277763210051584"


def _push(gateway, data: str) -> CallbackRequest:
    key = gateway.provider("opass")[1].api_key
    return CallbackRequest(body=('{"apiKey":"%s","data":%s}' % (key, data)).encode())


@pytest.mark.parametrize("data, words", [
    ('"x"', "data: expected a JSON array, got text 'x'"),
    ("null", "data: expected a JSON array, got null"),
    ("[1]", "data[0]: expected a JSON object, got int 1"),
    ('[{"tel":"13800138000"}]', "data[0]: neither a report (arriveResult) nor an inbound SMS (content, srcId)"),
    ('[{"msgId":"1","tel":"13800138000","arriveResult":"DELIVRD"},{"content":"hi"}]', "data[1].tel: missing"),
])
def test_malformed_push_names_the_field(gateway, data, words):
    with pytest.raises(ValidationError) as err:
        gateway.handle_callback("opass", _push(gateway, data))
    assert err.value.field == "body"
    assert words in str(err.value)


def test_push_without_data_names_it(gateway):
    key = gateway.provider("opass")[1].api_key
    with pytest.raises(ValidationError) as err:
        gateway.handle_callback("opass", CallbackRequest(body=json.dumps({"apiKey": key}).encode()))
    assert err.value.field == "body" and "data: missing" in str(err.value)


def test_push_items_keep_the_vendors_item_as_raw(gateway):
    item = {"msgId": "5", "tel": "18551067101", "arriveResult": "DELIVRD", "arriveTime": "2104091735", "x": 1}
    [event] = gateway.handle_callback("opass", _push(gateway, json.dumps([item]))).events
    assert event.raw == item and event.message_id == "5"


@pytest.mark.parametrize("response, words", [
    (HttpResponse.of_json({"message": "no code"}), "code: missing"),
    (HttpResponse.of_json([1, 2]), "body: expected a JSON object, got an array"),
    (HttpResponse(status=502, body=b"<html>bad gateway</html>"), "body: not JSON"),
])
def test_answer_without_a_code_names_it(sim, make_gateway, signed_request, response, words):
    gw = make_gateway(sim)
    req = signed_request(gw, Operation.SEND, Message(to=["13800138000"], template_id=TEMPLATE))
    with pytest.raises(ProviderError) as err:
        plugin.parse_response(ctx=gw.context("opass"), operation=Operation.SEND, request=req, response=response)
    assert not err.value.not_sent and err.value.code == f"HTTP{response.status}"
    assert words in str(err.value)


@pytest.mark.parametrize("data, words", [
    ("msgId", "data: expected a JSON object, got text 'msgId'"),
    ([1], "data: expected a JSON object, got an array"),
    (None, "without data"),
])
def test_send_answer_with_unreadable_data_names_it(sim, make_gateway, signed_request, data, words):
    gw = make_gateway(sim)
    req = signed_request(gw, Operation.SEND, Message(to=["13800138000"], template_id=TEMPLATE))
    answer = HttpResponse.of_json({"code": 200, "data": data, "requestId": "r-3"})
    with pytest.raises(ProviderError) as err:
        plugin.parse_response(ctx=gw.context("opass"), operation=Operation.SEND, request=req, response=answer)
    assert not err.value.not_sent and err.value.code == "200" and err.value.request_id == "r-3"
    assert words in str(err.value)


def test_answers_are_read_into_the_documents_classes():
    answer = wire.WIRE.read({"code": 200, "data": {"msgId": 822515453833289728, "failPhones": "1,2"},
                            "requestId": "r"}, wire.SmsResponse)
    assert answer.code == 200 and answer.requestId == "r"
    vo = wire.read_data(answer.data, wire.MessageSendResVo)
    assert vo == wire.MessageSendResVo(msgId="822515453833289728", failPhones="1,2")
    report = wire.WIRE.read({"msgId": "1", "tel": "13800138000", "arrive": "DELIVRD", "arriveTime": "2104091735"},
                           wire.ArriveInfoResVo)
    assert report.status_word == "DELIVRD"


def test_request_classes_write_the_documents_field_order():
    body = wire.WIRE.write(wire.SendRequest(phones="1", templateCode="T", bid="b", templateParam='["a"]'))
    assert list(body) == ["phones", "templateCode", "upExtendCode", "bid", "templateParam"]
    assert wire.WIRE.write(wire.ResidueValueQuery()) == {}
