"""SendSms and SendBatchSms against the simulator over HTTP: parameters, limits, and every
documented error code classified (not sent only where the code proves it)."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from smsgate import (AuthError, InsufficientBalance, Message, Operation, Outcome, ProviderError, RateLimited,
                     ValidationError)
from smsgate_aliyun import plugin
from smsgate_aliyun.simulator import DEMO_TEMPLATE, NOTICE_TEMPLATE, SIGN_NAME


def params_of(sim_request):
    return dict(parse_qsl(urlsplit(sim_request.path).query, keep_blank_values=True))


def phones(n, start=13800000000):
    return [str(start + i) for i in range(n)]


def test_send_sms_carries_the_documented_parameters(sim, make_gateway):
    gw = make_gateway()
    result = gw.send(Message(to=["+86 138-0013-8000", "13900139000"], template_id=DEMO_TEMPLATE,
                             params={"code": 1234}, extend_code="12", biz_id="order-42"))
    assert result.ok, result.to_json_dict()
    assert result.message_ids == [sim.records[0].biz_id] and result.request_ids
    (req,) = sim.requests
    assert req.method == "POST" and urlsplit(req.path).path == "/" and req.body == b""
    assert params_of(req) == {"PhoneNumbers": "13800138000,13900139000", "SignName": SIGN_NAME,
                              "TemplateCode": DEMO_TEMPLATE, "TemplateParam": '{"code":"1234"}',
                              "SmsUpExtendCode": "12", "OutId": "order-42"}
    assert req.header("x-acs-action") == "SendSms" and req.header("x-acs-version") == "2017-05-25"
    assert req.header("authorization").startswith("ACS3-HMAC-SHA256 Credential=" + sim.access_key_id + ",")


def test_a_message_sign_name_wins_over_the_configured_one(sim, make_gateway):
    sim.signs.add("阿里云")
    make_gateway().send(Message(to=["13800138000"], template_id=DEMO_TEMPLATE, params={"code": "1"},
                                sign_name="阿里云"))
    assert params_of(sim.requests[0])["SignName"] == "阿里云"


def test_1001_numbers_go_in_two_requests_of_at_most_1000(sim, make_gateway):
    result = make_gateway().send(Message(to=phones(1001), template_id=DEMO_TEMPLATE, params={"code": "1"}))
    assert result.ok and len(result.accepted) == 1001
    sizes = sorted(len(params_of(r)["PhoneNumbers"].split(",")) for r in sim.requests)
    assert sizes == [1, 1000]


def test_send_batch_sms_carries_per_number_params_in_a_form_body(sim, make_gateway):
    msg = Message.personalised({"13800138000": {"name": "张三", "order": "A1"},
                                "13900139000": {"name": "李四", "order": 2}}, template_id=NOTICE_TEMPLATE,
                               extend_code="7", biz_id="batch-1")
    result = make_gateway().send(msg)
    assert result.ok, result.to_json_dict()
    (req,) = sim.requests
    assert params_of(req) == {"TemplateCode": NOTICE_TEMPLATE, "OutId": "batch-1"}
    assert req.header("content-type") == "application/x-www-form-urlencoded"
    form = dict(parse_qsl(req.body.decode("ascii")))
    assert json.loads(form["PhoneNumberJson"]) == ["13800138000", "13900139000"]
    assert json.loads(form["SignNameJson"]) == [SIGN_NAME, SIGN_NAME]
    assert json.loads(form["TemplateParamJson"]) == [{"name": "张三", "order": "A1"}, {"name": "李四", "order": "2"}]
    assert json.loads(form["SmsUpExtendCodeJson"]) == ["7", "7"]
    assert {r.phone: r.content for r in sim.records}["13900139000"].endswith('{"name": "李四", "order": "2"}')


def test_101_personalised_numbers_go_in_two_batches_of_at_most_100(sim, make_gateway):
    msg = Message.personalised({p: {"name": "x", "order": p[-3:]} for p in phones(101)}, template_id=NOTICE_TEMPLATE)
    result = make_gateway().send(msg)
    assert result.ok
    sizes = sorted(len(json.loads(dict(parse_qsl(r.body.decode()))["PhoneNumberJson"])) for r in sim.requests)
    assert sizes == [1, 100]


@pytest.mark.parametrize("message, field", [
    (Message(to=["13800138000"], template_id=DEMO_TEMPLATE, params=["1234"]), "params"),
    (Message(to=["13800138000"], template_id=DEMO_TEMPLATE, params={"code": ["1"]}), "params"),
    (Message(to=["13800138000"], template_id=DEMO_TEMPLATE, params={"code": "1"}, extend_code="12a"), "extend_code"),
    (Message(to=["13800138000"], template_id=DEMO_TEMPLATE, params={"code": "1"}, biz_id="x" * 256), "biz_id"),
    (Message(to=["13800138000"], text="hello"), None),
])
def test_what_the_vendor_cannot_take_is_refused_before_sending(sim, make_gateway, message, field):
    with pytest.raises(ValidationError) as err:
        make_gateway().send(message)
    assert field is None or err.value.field == field
    assert not sim.requests


def test_no_sign_name_anywhere_is_refused_naming_the_field(sim, make_gateway):
    with pytest.raises(ValidationError) as err:
        make_gateway(sign_name=None).send(Message(to=["13800138000"], template_id=DEMO_TEMPLATE,
                                                  params={"code": "1"}))
    assert err.value.field == "sign_name" and not sim.requests


# -- errors ------------------------------------------------------------------------------------

def _send(gw, n=1, op=Operation.SEND):
    if op is Operation.SEND_BATCH:
        return gw.send(Message.personalised({p: {"name": "n", "order": "o"} for p in phones(n)},
                                            template_id=NOTICE_TEMPLATE))
    return gw.send(Message(to=phones(n), template_id=DEMO_TEMPLATE, params={"code": "1"}))


@pytest.mark.parametrize("code, status, n, op, outcome", [
    ("isv.AMOUNT_NOT_ENOUGH", 200, 2, Operation.SEND, Outcome.REJECTED),
    ("isv.SMS_TEMPLATE_ILLEGAL", 200, 2, Operation.SEND, Outcome.REJECTED),
    ("Throttling.User", 400, 2, Operation.SEND, Outcome.REJECTED),
    ("SignatureDoesNotMatch", 400, 2, Operation.SEND, Outcome.REJECTED),
    ("isv.BUSINESS_LIMIT_CONTROL", 200, 1, Operation.SEND, Outcome.REJECTED),
    ("isv.BUSINESS_LIMIT_CONTROL", 200, 2, Operation.SEND, Outcome.UNKNOWN),
    ("isv.MOBILE_NUMBER_ILLEGAL", 200, 1, Operation.SEND, Outcome.REJECTED),
    ("isv.MOBILE_NUMBER_ILLEGAL", 200, 3, Operation.SEND, Outcome.UNKNOWN),
    ("isv.TEMPLATE_PARAMS_ILLEGAL", 200, 3, Operation.SEND, Outcome.REJECTED),
    ("isv.TEMPLATE_PARAMS_ILLEGAL", 200, 3, Operation.SEND_BATCH, Outcome.UNKNOWN),
    ("isv.TEMPLATE_PARAMS_ILLEGAL", 200, 1, Operation.SEND_BATCH, Outcome.REJECTED),
    ("isp.SYSTEM_ERROR", 200, 1, Operation.SEND, Outcome.UNKNOWN),
    ("InternalError", 500, 1, Operation.SEND, Outcome.UNKNOWN),
    ("isv.SOMETHING_NEW", 200, 1, Operation.SEND, Outcome.UNKNOWN),
])
def test_error_codes_are_classified(sim, make_gateway, code, status, n, op, outcome):
    sim.force_code(code, "vendor text", status=status)
    result = _send(make_gateway(), n, op)
    assert [r.outcome for r in result.recipients] == [outcome] * n, result.to_json_dict()
    assert all(r.reason.code == code and "vendor text" in r.reason.message for r in result.recipients)
    assert len(sim.requests) == 1, "never sent again"


@pytest.mark.parametrize("code, cls", [
    ("isv.AMOUNT_NOT_ENOUGH", InsufficientBalance), ("isv.OUT_OF_SERVICE", InsufficientBalance),
    ("isv.BUSINESS_LIMIT_CONTROL", RateLimited), ("Throttling.Api", RateLimited), ("Throttling", RateLimited),
    ("isv.DAY_LIMIT_CONTROL", RateLimited), ("InvalidAccessKeyId.NotFound", AuthError),
    ("isp.RAM_PERMISSION_DENY", AuthError), ("isv.SMS_SIGNATURE_ILLEGAL", ProviderError),
])
def test_codes_map_to_classified_errors(code, cls):
    err = plugin.classify(code, "text", "RID", Operation.SEND, 1)
    assert type(err) is cls and err.not_sent and err.request_id == "RID" and err.code == code


def test_every_known_code_has_a_scope_and_a_class():
    for code, (cls, scope, gloss) in plugin.CODES.items():
        assert issubclass(cls, ProviderError) and scope in ("request", "number", "content") and gloss, code


def test_the_simulators_frequency_control_refuses_a_number_not_sent(sim, make_gateway):
    sim.frequency_limit = (1, 60.0)
    gw = make_gateway()
    assert _send(gw).ok
    again = _send(gw)
    assert again.rejected and again.rejected[0].reason.code == "isv.BUSINESS_LIMIT_CONTROL"
    assert again.rejected[0].reason.not_sent and len(sim.records) == 1


def test_an_empty_balance_is_refused_not_sent(sim, make_gateway):
    sim.balance = 1
    result = _send(make_gateway(), 2)
    assert [r.reason.code for r in result.rejected] == ["isv.AMOUNT_NOT_ENOUGH"] * 2 and not sim.records


def test_ok_without_a_bizid_is_unknown(sim, make_gateway, monkeypatch):
    monkeypatch.setattr(sim, "_accept", lambda *a, **k: {"Code": "OK", "Message": "OK"})
    result = _send(make_gateway(), 2)
    assert result.unknown == phones(2) and not result.accepted


def _signed(gw, message):
    hooks, ctx = gw.hooks("aliyun"), gw.context("aliyun", message.operation)
    message = hooks.validate_message(ctx=ctx, message=message) or message
    request = hooks.build_request(ctx=ctx, operation=message.operation, payload=message)
    return hooks.sign(ctx=ctx, operation=message.operation, request=request)


def _post(request, url=None, headers=None, body=None):
    import urllib.error
    import urllib.request

    sent = {k: v for k, v in request.headers if k.lower() != "host"}
    sent.update(headers or {})
    data = request.body if body is None else body
    # no body, no data: urllib would add a Content-Type the signature does not cover
    req = urllib.request.Request(url or request.url, data=data or None, headers=sent, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


MESSAGE = Message(to=["13800138000"], template_id=DEMO_TEMPLATE, params={"code": "1"})
BATCH = Message.personalised({"13800138000": {"name": "n", "order": "o"}}, template_id=NOTICE_TEMPLATE)


def test_the_simulator_accepts_the_plugins_request_once(sim, make_gateway):
    request = _signed(make_gateway(), MESSAGE)
    status, answer = _post(request)
    assert status == 200 and answer["Code"] == "OK" and answer["BizId"] and answer["RequestId"]
    status, answer = _post(request)  # the same nonce again
    assert (status, answer["Code"]) == (400, "SignatureNonceUsed")
    assert len(sim.records) == 1


@pytest.mark.parametrize("change, code", [
    ("query", "SignatureDoesNotMatch"),
    ("body", "SignatureDoesNotMatch"),
    ("unsigned-acs-header", "IncompleteSignature"),
    ("key-id", "InvalidAccessKeyId.NotFound"),
    ("stale", "InvalidTimeStamp.Expired"),
    ("version", "SignatureDoesNotMatch"),
])
def test_the_simulator_refuses_a_changed_request(sim, make_gateway, change, code):
    import time

    gw = make_gateway(clock=(lambda: time.time() - 16 * 60) if change == "stale" else time.time)
    request = _signed(gw, BATCH if change == "body" else MESSAGE)
    kwargs = {}
    if change == "query":
        kwargs["url"] = request.url.replace("13800138000", "13800138001")
    elif change == "body":
        kwargs["body"] = request.body.replace(b"13800138000", b"13800138001")
    elif change == "unsigned-acs-header":
        kwargs["headers"] = {"x-acs-extra": "1"}
    elif change == "key-id":
        auth = request.header("authorization").replace(sim.access_key_id, "LTAIsomeoneelse")
        kwargs["headers"] = {"authorization": auth}
    elif change == "version":
        kwargs["headers"] = {"x-acs-version": "2018-05-01"}
    status, answer = _post(request, **kwargs)
    assert answer["Code"] == code and status in (400, 404), answer
    assert not sim.records
