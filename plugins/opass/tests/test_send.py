"""Sending, answers and every return code, over HTTP against the simulator."""

from __future__ import annotations

import json
import urllib.request

import pytest

from smsgate import (AuthError, HttpResponse, InsufficientBalance, Message, Operation, ProviderError, RateLimited,
                     ValidationError)
from smsgate_opass import plugin
from smsgate_opass.simulator import Template


METHODS = ["HmacMD5", "HmacSHA1", "HmacSHA224", "HmacSHA256", "HmacSHA384", "HmacSHA512"]
TEMPLATE = "574277763210051584"


def done_when_message() -> Message:
    # smsgate send --provider opass --to 13800138000,13900139000 --template 574277763210051584
    #   --params '["张三","02"]' --json
    return Message(to="13800138000,13900139000".split(","), template_id=TEMPLATE,
                   params=json.loads('["张三","02"]'))


def post(request) -> dict:
    req = urllib.request.Request(request.url, data=request.body, method=request.method, headers=dict(request.headers))
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read().decode("utf-8"))


@pytest.mark.parametrize("method", METHODS)
def test_done_when_command_for_each_sign_method(sim, method, make_gateway):
    gw = make_gateway(sim, sign_method=method)
    result = gw.send(done_when_message(), provider="opass")
    out = result.to_json_dict()
    assert out["ok"] is True, out
    vendor_ids = {s.msg_id for s in sim.sent}
    assert len(vendor_ids) == 1 and out["message_ids"] == list(vendor_ids)
    assert out["accepted"] == ["13800138000", "13900139000"]
    assert all(r.message_id == out["message_ids"][0] for r in result.recipients)
    assert sim.verified[-1]["method"] == method
    assert sim.sent[0].params == ["张三", "02"]
    assert out["request_ids"] and out["request_ids"][0]


def test_extension_code_and_bid_are_sent(sim, gateway):
    msg = Message(to=["13800138000"], template_id=TEMPLATE, params=["a", "b"], extend_code="32", biz_id="order-9")
    assert gateway.send(msg).ok
    fields = sim.verified[-1]["fields"]
    assert fields["upExtendCode"] == "32" and fields["bid"] == "order-9"
    assert sim.sent[-1].bid == "order-9"


def test_numbers_are_sent_as_text(sim, gateway):
    assert gateway.send(Message(to=["13800138000"], template_id=TEMPLATE, params=[1234, 5.5])).ok
    assert sim.verified[-1]["fields"]["templateParam"] == '["1234","5.5"]'


def test_personalised_send_uses_send_batch(sim, gateway):
    msg = Message.personalised({"13800138000": ["张三", "02"], "13900139000": ["李四", "03"]}, template_id=TEMPLATE)
    result = gateway.send(msg)
    assert result.ok, result.to_json_dict()
    assert sim.requests[-1].path == "/message/sendBatch"
    assert {s.phone: s.params for s in sim.sent} == {"13800138000": ["张三", "02"], "13900139000": ["李四", "03"]}


def test_fail_phones_are_rejected_the_rest_accepted(sim, gateway):
    sim.blocked_phones = {"13900139000"}
    result = gateway.send(Message(to=["13800138000", "13900139000", "13700137000"], template_id=TEMPLATE,
                                  params=["a", "b"]))
    assert not result.ok
    assert result.accepted == ["13800138000", "13700137000"]
    assert [r.phone for r in result.rejected] == ["13900139000"]
    reason = result.rejected[0].reason
    assert reason.code == "failPhones" and reason.not_sent
    assert result.message_ids == [sim.sent[0].msg_id]


def test_fail_phones_parsing_handles_null_desc_and_lowercase_msgid(sim, make_gateway, signed_request):
    gw = make_gateway(sim)
    req = signed_request(gw, Operation.SEND_BATCH, Message.personalised(
        {"13800138000": ["a", "b"], "13900139000": ["c", "d"]}, template_id=TEMPLATE))
    answer = HttpResponse.of_json({"code": 200, "data": {"msgid": "822515453833289728", "desc": "null",
                                                         "failPhones": "13900139000"}, "requestId": "r-1"})
    reply = plugin.parse_response(ctx=gw.context("opass"), operation=Operation.SEND_BATCH, request=req,
                                  response=answer)
    assert reply.message_id == "822515453833289728" and reply.request_id == "r-1"
    assert list(reply.rejected) == ["13900139000"]
    assert reply.rejected["13900139000"].message == "the vendor refused this number (failPhones)"


def test_200_without_msgid_is_unknown(sim, make_gateway, signed_request):
    gw = make_gateway(sim)
    req = signed_request(gw, Operation.SEND, done_when_message())
    answer = HttpResponse.of_json({"code": 200, "data": {"desc": "null"}, "requestId": "r-2"})
    with pytest.raises(ProviderError) as err:
        plugin.parse_response(ctx=gw.context("opass"), operation=Operation.SEND, request=req, response=answer)
    assert not err.value.not_sent and err.value.request_id == "r-2"


def test_more_than_1000_phones_are_cut_into_requests(sim, gateway):
    phones = [f"138{i:08d}" for i in range(2300)]
    result = gateway.send(Message(to=phones, template_id=TEMPLATE, params=["a", "b"]))
    assert result.ok
    sizes = sorted(len(r["fields"]["phones"].split(",")) for r in sim.verified)
    assert sizes == [300, 1000, 1000]
    assert len(result.message_ids) == 3


# -- every return code of the document ------------------------------------------------------

EXPECTED = {
    -1: (ProviderError, False),
    2000: (AuthError, True),
    2001: (AuthError, True),
    6000: (RateLimited, True),
    40002: (InsufficientBalance, True),
    40004: (ProviderError, True),
    40005: (ProviderError, True),
    40006: (ProviderError, True),
    60001: (ProviderError, True),
    60002: (ProviderError, True),
    60003: (ProviderError, True),
    60004: (ProviderError, True),
    60005: (ProviderError, True),
    60006: (ProviderError, True),
    60007: (ProviderError, True),
    60008: (ProviderError, True),
    60009: (ProviderError, True),
}


def test_code_table_is_complete():
    assert set(plugin.CODES) == {str(c) for c in EXPECTED}


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_every_code_is_classified_on_send(sim, gateway, code):
    cls, not_sent = EXPECTED[code]
    sim.force_code(code, f"vendor text {code}")
    result = gateway.send(done_when_message())
    assert not result.ok and not result.accepted
    if not_sent:
        assert [r.phone for r in result.rejected] == ["13800138000", "13900139000"] and not result.unknown
        reasons = [r.reason for r in result.rejected]
    else:
        assert result.unknown == ["13800138000", "13900139000"] and not result.rejected
        reasons = [r.reason for r in result.recipients]
    assert all(r.code == str(code) and r.message == f"vendor text {code}" for r in reasons)
    assert all(r.request_id for r in result.recipients)


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_every_code_raises_its_class_on_queries(sim, code, make_gateway):
    cls, not_sent = EXPECTED[code]
    sim.force_code(code, "查询失败")
    with pytest.raises(ProviderError) as err:
        make_gateway(sim).balance("opass")
    assert type(err.value) is cls
    assert err.value.code == str(code) and err.value.vendor_message == "查询失败"
    assert err.value.not_sent is not_sent and err.value.request_id
    assert str(code) in str(err.value)


def test_unknown_code_is_unknown(sim, gateway):
    sim.force_code(99999, "new code")
    result = gateway.send(done_when_message())
    assert result.unknown and not result.rejected


# -- the simulator enforces the document's rules ----------------------------------------------

def test_unknown_template_is_60001(sim, gateway):
    result = gateway.send(Message(to=["13800138000"], template_id="1", params=["a"]))
    assert result.rejected[0].reason.code == "60001"


def test_variable_count_is_60003(sim, gateway):
    result = gateway.send(Message(to=["13800138000"], template_id=TEMPLATE, params=["only one"]))
    assert result.rejected[0].reason.code == "60003"


def test_variable_length_is_60004(sim, gateway):
    result = gateway.send(Message(to=["13800138000"], template_id=TEMPLATE, params=["x" * 31, "y"]))
    assert result.rejected[0].reason.code == "60004"


def test_batch_variable_count_is_60003(sim, gateway):
    msg = Message.personalised({"13800138000": ["a", "b"], "13900139000": ["c"]}, template_id=TEMPLATE)
    assert gateway.send(msg).rejected[0].reason.code == "60003"


def test_template_recipient_limit_is_40005(sim, gateway):
    sim.templates["T5"] = Template("T5", 0, max_recipients=1)
    result = gateway.send(Message(to=["13800138000", "13900139000"], template_id="T5"))
    assert result.rejected[0].reason.code == "40005"


def test_extension_code_out_of_range_is_40006(sim, gateway):
    result = gateway.send(Message(to=["13800138000"], template_id=TEMPLATE, params=["a", "b"], extend_code="100"))
    assert result.rejected[0].reason.code == "40006"


def test_balance_exhausted_is_40002(sim, gateway):
    sim.balances["行业短信"] = 1
    result = gateway.send(done_when_message())
    assert result.rejected[0].reason.code == "40002"
    assert all(r.reason.not_sent for r in result.rejected)


def test_all_numbers_failing_is_60005(sim, gateway):
    sim.blocked_phones = {"13800138000", "13900139000"}
    assert gateway.send(done_when_message()).rejected[0].reason.code == "60005"


def _raw(sim, fields, path="/message/send"):
    """A correctly signed request with arbitrary body fields (bypassing the pipeline's checks)."""
    from smsgate import HttpRequest
    from smsgate_opass import dialect

    from smsgate import Gateway

    ctx = Gateway({"providers": {"opass": sim.demo_config()}}).context("opass", Operation.SEND)
    unsigned = HttpRequest(url=sim.url + path, headers={"Content-Type": "application/json"},
                           body=dialect.body_bytes(fields))
    return post(plugin.sign(ctx=ctx, operation=Operation.SEND, request=unsigned))


def test_more_than_1000_phones_in_one_request_is_60008(sim):
    phones = ",".join(f"138{i:08d}" for i in range(1001))
    assert _raw(sim, {"phones": phones, "templateCode": TEMPLATE, "templateParam": '["a","b"]'})["code"] == 60008
    batch = {"phonesJson": json.dumps([f"138{i:08d}" for i in range(1001)]), "templateCode": TEMPLATE,
             "templateParamJson": json.dumps([["a", "b"]] * 1001)}
    assert _raw(sim, batch, "/message/sendBatch")["code"] == 60008


def test_batch_count_mismatch_is_60002_and_bad_phone_json_60007(sim):
    batch = {"phonesJson": '["13800138000","13900139000"]', "templateCode": TEMPLATE,
             "templateParamJson": '[["a","b"]]'}
    assert _raw(sim, batch, "/message/sendBatch")["code"] == 60002
    batch = {"phonesJson": "13800138000", "templateCode": TEMPLATE, "templateParamJson": '[["a","b"]]'}
    assert _raw(sim, batch, "/message/sendBatch")["code"] == 60007


def test_bad_variable_format_is_60006(sim):
    fields = {"phones": "13800138000", "templateCode": TEMPLATE, "templateParam": '["测\\试"]'}
    answer = _raw(sim, fields)
    assert answer["code"] == 60006, answer


def test_malformed_number_goes_to_fail_phones(sim):
    answer = _raw(sim, {"phones": "13800138000,12345", "templateCode": TEMPLATE, "templateParam": '["a","b"]'})
    assert answer["code"] == 200 and answer["data"]["failPhones"] == "12345"


def test_ip_whitelist_is_2000(sim, gateway):
    sim.ip_allowed = False
    result = gateway.send(done_when_message())
    assert result.rejected[0].reason.code == "2000"


@pytest.mark.parametrize("method", METHODS)
def test_wrong_signature_is_2001_for_each_method(sim, method, make_gateway):
    gw = make_gateway(sim, sign_method=method, access_key=sim.access_key + "x")
    result = gw.send(done_when_message())
    assert [r.reason.code for r in result.rejected] == ["2001", "2001"]


def test_signature_with_another_hash_than_named_is_2001(sim, make_gateway, signed_request):
    gw = make_gateway(sim, sign_method="HmacSHA256")
    req = signed_request(gw, Operation.SEND, done_when_message())
    assert post(req.with_headers({"x-sign-method": "HmacSHA512"}))["code"] == 2001


def test_tampered_body_is_2001(sim, gateway, signed_request):
    req = signed_request(gateway, Operation.SEND, done_when_message())
    body = req.body.replace("张三".encode(), "李四".encode())
    from attrs import evolve

    assert post(evolve(req, body=body))["code"] == 2001


def test_missing_header_and_bad_nonce_are_2001(sim, gateway, signed_request):
    req = signed_request(gateway, Operation.SEND, done_when_message())
    headers = [(k, v) for k, v in req.headers if k.lower() != "x-nonce"]
    from attrs import evolve

    assert post(evolve(req, headers=headers))["code"] == 2001
    assert post(req.with_headers({"x-nonce": "12345"}))["code"] == 2001


def test_replayed_nonce_is_2001(sim, make_gateway):
    gw = make_gateway(sim, nonce=lambda: "5555555555")
    assert gw.send(done_when_message()).ok
    assert gw.send(done_when_message()).rejected[0].reason.code == "2001"


def test_clock_window_is_60_seconds(sim, make_gateway):
    now = 1726631416.0
    gateway = make_gateway(sim, clock=lambda: now)
    sim.clock = lambda: now + 60.5
    result = gateway.send(done_when_message())
    assert result.rejected[0].reason.code == "40004"
    assert "时间戳" in result.rejected[0].reason.message
    sim.clock = lambda: now - 59.5
    assert gateway.send(done_when_message()).ok


# -- validation before sending ------------------------------------------------------------------

def test_validation(sim, gateway):
    with pytest.raises(ValidationError) as err:
        gateway.send(Message(to=["13800138000"], template_id=TEMPLATE, params=["a", "b"], sign_name="x"))
    assert err.value.field == "sign_name"
    with pytest.raises(ValidationError) as err:
        gateway.send(Message(to=["13800138000"], template_id=TEMPLATE, params=["a", "b"], extend_code="1a"))
    assert err.value.field == "extend_code"
    with pytest.raises(ValidationError) as err:
        gateway.send(Message(to=["13800138000"], template_id=TEMPLATE, params=["a", "b"], biz_id="b" * 65))
    assert err.value.field == "biz_id"
    with pytest.raises(ValidationError) as err:
        gateway.send(Message(to=["13800138000"], template_id=TEMPLATE, params={"name": "a"}))
    assert err.value.field == "params"
    with pytest.raises(ValidationError) as err:
        gateway.send(Message(to=["13800138000"], text="free text"))
    with pytest.raises(ValidationError) as err:
        gateway.send(Message(to=["13800138000"], template_id=TEMPLATE, params=[None, "b"]))
    assert not sim.requests
