"""The wire format, checked against values computed outside the plugin.

The md5 vectors below were computed with ``printf '%s' ... | md5sum`` over the document's field
order; each test also recomputes them with hashlib from the decoded body.
"""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from smsgate import Gateway, HttpRequest, Message, Operation, PullQuery
from smsgate.sending.pipeline import normalise_recipients
from smsgate_cmas import dialect

CONFIG = {"base_url": "https://mas.example:28888", "ec_name": "smsgate演示企业", "ap_id": "demo",
          "secret_key": "Demo#Secret1", "sign": "d8Kx3Qa9"}


def build(message: Message, **overrides) -> HttpRequest:
    """validate -> build_request -> sign, as the pipeline runs them, without sending."""
    gw = Gateway({"providers": {"cmas": {**CONFIG, **overrides}}})
    hooks = gw.hooks("cmas")
    message = normalise_recipients(message)
    ctx = gw.context("cmas", message.operation)
    message = hooks.validate_message(ctx=ctx, message=message) or message
    request = hooks.build_request(ctx=ctx, operation=message.operation, payload=message)
    return hooks.sign(ctx=ctx, operation=message.operation, request=request) or request


def body_text(request: HttpRequest) -> str:
    return base64.b64decode(request.body, validate=True).decode("utf-8")


def md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def test_free_text_submit_is_base64_json_with_mac_in_document_order():
    req = build(Message(to=["13800138000"], text="验证码 1234"))
    assert req.method == "POST" and req.url == "https://mas.example:28888/sms/submit"
    expected_mac = "8f93074cd505e9f28f36ba11c493e28e"
    assert expected_mac == md5("smsgate演示企业" + "demo" + "Demo#Secret1" + "13800138000" + "验证码 1234"
                               + "d8Kx3Qa9" + "")
    assert body_text(req) == ('{"ecName":"smsgate演示企业","apId":"demo","mobiles":"13800138000",'
                              '"content":"验证码 1234","sign":"d8Kx3Qa9","addSerial":"",'
                              f'"mac":"{expected_mac}"}}')
    # the password enters the mac only; it never travels in a send
    assert "Demo#Secret1" not in body_text(req)


def test_template_submit_mac_in_document_order():
    req = build(Message(to=["13800138000", "13900139000"], template_id="SMS_001", params=["1234", "5分钟"]),
                add_serial="01")
    assert req.url.endswith("/sms/tmpsubmit")
    data = json.loads(body_text(req))
    assert list(data) == ["ecName", "apId", "templateId", "mobiles", "params", "sign", "addSerial", "mac"]
    assert data["params"] == '["1234","5分钟"]'
    assert data["mobiles"] == "13800138000,13900139000"
    assert data["addSerial"] == "01"
    expected = md5("smsgate演示企业" "demo" "Demo#Secret1" "SMS_001" "13800138000,13900139000"
                   '["1234","5分钟"]' "d8Kx3Qa9" "01")
    assert expected == "923769140a7d637aec00e67122eab568"
    assert data["mac"] == expected


@pytest.mark.parametrize("params", [None, [], ()])
def test_template_without_params_sends_list_of_one_empty_string(params):
    req = build(Message(to=["13800138000"], template_id="T0", params=params))
    data = json.loads(body_text(req))
    assert data["params"] == '[""]'
    assert data["mac"] == "540d57aaca582d534295b62eb8b21c89"
    assert data["mac"] == md5("smsgate演示企业demoDemo#Secret1T013800138000" '[""]' "d8Kx3Qa9")


def test_many_to_many_has_empty_mobiles_and_a_json_object_content():
    req = build(Message.personalised({"13800138000": "你好！中国！", "13900139000": "你好！世界！"}))
    assert req.url.endswith("/sms/submit")
    data = json.loads(body_text(req))
    assert list(data) == ["ecName", "apId", "mobiles", "content", "sign", "addSerial", "mac"]
    assert data["mobiles"] == ""
    assert json.loads(data["content"]) == {"13800138000": "你好！中国！", "13900139000": "你好！世界！"}
    assert data["content"] == '{"13800138000":"你好！中国！","13900139000":"你好！世界！"}'
    # same field order as one-to-many, with mobiles empty
    assert data["mac"] == "aaef314e57c758955dcf8e14651ce49e"
    assert data["mac"] == md5("smsgate演示企业demoDemo#Secret1" + "" + data["content"] + "d8Kx3Qa9" + "")


def test_message_sign_and_extend_code_override_config():
    req = build(Message(to=["13800138000"], text="hi", sign_name="Other77", extend_code="123"))
    data = json.loads(body_text(req))
    assert data["sign"] == "Other77" and data["addSerial"] == "123"
    assert data["mac"] == md5("smsgate演示企业demoDemo#Secret113800138000hiOther77123")


def test_same_inputs_give_the_same_bytes():
    msg = Message(to=["13800138000"], text="验证码 1234")
    assert build(msg) == build(msg)


def test_pull_bodies_carry_the_password_and_no_mac():
    gw = Gateway({"providers": {"cmas": CONFIG}})
    hooks = gw.hooks("cmas")
    for op, path in ((Operation.PULL_REPORTS, "/sms/report"), (Operation.PULL_INBOUND, "/sms/deliver")):
        ctx = gw.context("cmas", op)
        req = hooks.build_request(ctx=ctx, operation=op, payload=PullQuery() if op is Operation.PULL_REPORTS else None)
        req = hooks.sign(ctx=ctx, operation=op, request=req) or req
        assert req.url == "https://mas.example:28888" + path
        assert body_text(req) == '{"ecName":"smsgate演示企业","apId":"demo","secretKey":"Demo#Secret1"}'


def test_dialect_helpers_round_trip():
    body = dialect.encode_body({"b": "二", "a": "1"})
    assert dialect.decode_body(body) == {"b": "二", "a": "1"}
    assert list(dialect.decode_body(body)) == ["b", "a"]
    with pytest.raises(ValueError):
        dialect.decode_body(b"not base64!!")
    assert dialect.decode_answer(b'{"rspcod":"success"}') == {"rspcod": "success"}
    assert dialect.decode_answer(base64.b64encode(b'[{"mobile":"1"}]')) == [{"mobile": "1"}]
    with pytest.raises(ValueError):
        dialect.decode_answer(b"<html>")
