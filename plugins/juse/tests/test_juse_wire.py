"""The vendor's JSON read into attrs classes: malformed answers and pushes are refused with the
same classified errors as before, and the message names the field that was wrong."""

from __future__ import annotations

import json

import pytest

from smsgate import CallbackRequest, HttpResponse, Operation, ProviderError, ValidationError
from smsgate_juse import dialect, wire

NOW = 1726631416.0
SECRET = "r6duQGOuwDw4QeF/TJi6tw=="


def _push(body) -> CallbackRequest:
    ts, nonce = "1726631416", "e" * 32
    app_id = body.get("appId", "") if isinstance(body, dict) else ""
    kind = body.get("type", "") if isinstance(body, dict) else ""
    sign = dialect.callback_signature(SECRET, ts, nonce, app_id, kind)
    return CallbackRequest(headers={"X-message-Time": ts, "X-message-Nonce": nonce, "X-message-Sign": sign},
                           body=json.dumps(body).encode())


@pytest.mark.parametrize("body, words", [
    ({"type": "sms_report", "sendSmsRecordDtoList": {"not": "a list"}},
     "sendSmsRecordDtoList: expected a JSON array, got an object"),
    ({"type": "sms_report", "sendSmsRecordDtoList": [{"sendRecordId": 1}, 1]},
     "sendSmsRecordDtoList[1]: expected a JSON object, got int 1"),
    ({"type": "sms_task_report", "sendSmsTaskDto": "x"}, "sendSmsTaskDto: expected a JSON object"),
    ({"type": "sms_task_report", "sendSmsTaskDto": {"totalCount": 1}}, "sendSmsTaskDto.sendTaskId: missing"),
    ({"type": "sms_task_report", "sendSmsTaskDto": {"sendTaskId": ""}},
     "sendSmsTaskDto.sendTaskId: expected a non-empty id"),
    ({"type": "sms_task_report", "sendSmsTaskDto": {"sendTaskId": 1, "totalCount": "many"}},
     "sendSmsTaskDto.totalCount: expected a whole number, got text 'many'"),
    ({"type": "sms_task_report", "sendSmsTaskDto": {"sendTaskId": 1, "failCount": True}},
     "sendSmsTaskDto.failCount: expected a whole number, got boolean true"),
    ({"type": "sms_deliver", "smsDeliverDtoList": [{"content": "x"}]}, "smsDeliverDtoList[0].mobile: missing"),
    ({"type": "sms_deliver", "smsDeliverDtoList": [{"mobile": "13800138000", "content": 5}]},
     "smsDeliverDtoList[0].content: expected text, got int 5"),
])
def test_malformed_push_names_the_field(make_gateway, body, words):
    with pytest.raises(ValidationError) as err:
        make_gateway(clock=lambda: NOW).handle_callback("juse", _push({"appId": "adrm", **body}))
    assert err.value.field == "body"
    assert words in str(err.value)


def test_every_wrong_field_is_named_at_once(make_gateway):
    body = {"appId": "adrm", "type": "sms_deliver",
            "smsDeliverDtoList": [{"content": "x"}, {"mobile": "13800138000", "content": None}]}
    with pytest.raises(ValidationError) as err:
        make_gateway(clock=lambda: NOW).handle_callback("juse", _push(body))
    assert "smsDeliverDtoList[0].mobile: missing" in str(err.value)
    assert "smsDeliverDtoList[1].content: expected text, got null" in str(err.value)


def test_parse_callback_names_a_non_object_body(make_gateway):
    gw = make_gateway(clock=lambda: NOW)
    hooks, ctx = gw.hooks("juse"), gw.context("juse", None)
    with pytest.raises(ValidationError) as err:
        hooks.parse_callback(ctx=ctx, request=CallbackRequest(body=b"[1]"))
    assert err.value.field == "body" and "body: expected a JSON object, got an array" in str(err.value)


def test_pushes_are_read_into_the_documents_dtos():
    push = wire.WIRE.read({"appId": "adrm", "type": "sms_task_report", "extensions": {},
                          "sendSmsTaskDto": {"sendTaskId": 1, "totalCount": "5", "sendCount": 3, "failCount": None}},
                         wire.JusePushBody)
    assert push.sendSmsTaskDto == wire.SendSmsTaskDto(sendTaskId="1", totalCount=5, sendCount=3, failCount=0)
    push = wire.WIRE.read({"appId": "adrm", "type": "sms_report",
                          "sendSmsRecordDtoList": [{"sendRecordId": 9, "sendStatus": 1, "reportDate": "d"}]},
                         wire.JusePushBody)
    assert push.sendSmsRecordDtoList == (wire.SendSmsRecordDto(sendRecordId="9", sendStatus=1, reportDate="d"),)
    assert push.sendSmsTaskDto is None and push.smsDeliverDtoList is None


@pytest.mark.parametrize("response, words", [
    (HttpResponse.of_json({"mes": "no code"}), "code: missing"),
    (HttpResponse.of_json({"code": None, "mes": "x"}), "code: expected a code, got null"),
    (HttpResponse.of_json([1, 2]), "body: expected a JSON object, got an array"),
    (HttpResponse(status=502, body=b"<html>bad gateway</html>"), "body: not JSON"),
])
def test_unreadable_answer_names_the_field(make_gateway, response, words):
    gw = make_gateway()
    hooks, ctx = gw.hooks("juse"), gw.context("juse", Operation.SEND)
    with pytest.raises(ProviderError) as err:
        hooks.parse_response(ctx=ctx, operation=Operation.SEND, request=None, response=response)
    assert not err.value.not_sent and err.value.code == f"HTTP{response.status}"
    assert words in str(err.value)


def test_request_classes_write_the_documents_field_order():
    body = wire.SendSmsTaskRequest(appId="adrm", name="n", templateId="T", signName="S",
                                  planTime="2024-09-18 10:00:00", phones="p", params={"b": "1", "a": "2"})
    assert list(wire.WIRE.write(body)) == ["appId", "name", "templateId", "signName", "planTime", "phones",
                                          "params"]
    assert list(wire.WIRE.write(body)["params"]) == ["b", "a"]  # kept in the message's order
