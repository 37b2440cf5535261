"""Every rspcod: produced by the simulator where a real request can provoke it, and mapped by the
plugin to a classified error that proves the message was not sent."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.request

import pytest

from smsgate import (AuthError, Gateway, HttpRequest, HttpResponse, Message, Operation, ProviderError,
                     RateLimited)
from smsgate_cmas.plugin import RSPCODES

ALL_CODES = ["IllegalMac", "IllegalSignId", "InvalidMessage", "InvalidUsrOrPwd", "NoSignId", "TooManyMobiles"]


def post(sim, path: str, body: bytes) -> dict:
    req = urllib.request.Request(sim.url + path, data=body, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read().decode("utf-8"))


def submit_body(sim, mobiles: str, content: str, **changes) -> bytes:
    fields = {"ecName": sim.ec_name, "apId": sim.ap_id, "mobiles": mobiles, "content": content,
              "sign": sim.signs[0], "addSerial": ""}
    fields.update(changes)
    text = fields["ecName"] + fields["apId"] + sim.secret_key + fields["mobiles"] + fields["content"] \
        + fields["sign"] + fields["addSerial"]
    fields["mac"] = hashlib.md5(text.encode("utf-8")).hexdigest()
    return base64.b64encode(json.dumps(fields, ensure_ascii=False).encode("utf-8"))


def test_the_table_covers_every_documented_rspcod():
    assert sorted(RSPCODES) == sorted(ALL_CODES)


# -- the simulator provokes them -------------------------------------------------------------

def _rejected(result, code):
    assert not result.ok and not result.unknown and not result.accepted, result.to_json_dict()
    assert {r.reason.code for r in result.rejected} == {code}
    assert all(r.reason.not_sent for r in result.rejected)


@pytest.mark.parametrize("text,template", [("验证码 1234", None), (None, "T1")])
def test_wrong_secret_is_illegal_mac(sim, make_gateway, text, template):
    gw = make_gateway(sim, secret_key="Wrong#Secret")
    _rejected(gw.send(Message(to=["13800138000"], text=text, template_id=template)), "IllegalMac")
    assert sim.answers[-1].json() == {"rspcod": "IllegalMac", "mgsGroup": "", "success": False}
    assert not sim.accepted


@pytest.mark.parametrize("key", ["ap_id", "ec_name"])
def test_unknown_account_is_invalid_usr_or_pwd(sim, make_gateway, key):
    _rejected(make_gateway(sim, **{key: "nobody"}).send(Message(to=["13800138000"], text="x")), "InvalidUsrOrPwd")


def test_malformed_sign_code_is_illegal_sign_id(sim, make_gateway):
    _rejected(make_gateway(sim).send(Message(to=["13800138000"], text="x", sign_name="bad sign!")), "IllegalSignId")


def test_unknown_sign_code_is_no_sign_id(sim, make_gateway):
    _rejected(make_gateway(sim, sign="Unknown9").send(Message(to=["13800138000"], text="x")), "NoSignId")


@pytest.mark.parametrize("body", [b"not base64 at all!", base64.b64encode(b"{not json"), base64.b64encode(b"[1]")])
def test_unparseable_request_is_invalid_message(sim, body):
    assert post(sim, "/sms/submit", body)["rspcod"] == "InvalidMessage"


def test_more_than_5000_mobiles_is_too_many_mobiles(sim):
    mobiles = ",".join(f"138{i:08d}" for i in range(5001))
    assert post(sim, "/sms/submit", submit_body(sim, mobiles, "x"))["rspcod"] == "TooManyMobiles"
    assert post(sim, "/sms/submit", submit_body(sim, mobiles.rsplit(",", 1)[0], "x"))["rspcod"] == "success"


def test_1000_personalised_numbers_is_too_many_mobiles(sim):
    # the simulator's own choice: the document names no rspcod for the many-to-many limit
    content = json.dumps({f"139{i:08d}": "hi" for i in range(1000)}, ensure_ascii=False)
    assert post(sim, "/sms/submit", submit_body(sim, "", content))["rspcod"] == "TooManyMobiles"
    content = json.dumps({f"139{i:08d}": "hi" for i in range(999)}, ensure_ascii=False)
    assert post(sim, "/sms/submit", submit_body(sim, "", content))["rspcod"] == "success"


def test_simulator_checks_the_mac_it_computes_itself(sim):
    good = json.loads(base64.b64decode(submit_body(sim, "13800138000", "x")))
    good["content"] = "y"  # the mac no longer matches
    tampered = base64.b64encode(json.dumps(good).encode())
    assert post(sim, "/sms/submit", tampered)["rspcod"] == "IllegalMac"


# -- the plugin maps each answer -------------------------------------------------------------

@pytest.mark.parametrize("code", ALL_CODES)
def test_each_rspcod_rejects_every_recipient_as_not_sent(scripted, code):
    scripted.answers.append(HttpResponse.of_json({"rspcod": code, "mgsGroup": "", "success": False}))
    gw = Gateway({"providers": {"cmas": scripted.demo_config()}})
    result = gw.send(Message(to=["13800138000", "13900139000"], text="x"))
    _rejected(result, code)
    assert {r.reason.message for r in result.rejected} == {RSPCODES[code][2]}


@pytest.mark.parametrize("code,cls", [("IllegalMac", AuthError), ("InvalidUsrOrPwd", AuthError),
                                      ("IllegalSignId", ProviderError), ("NoSignId", ProviderError),
                                      ("InvalidMessage", ProviderError), ("TooManyMobiles", ProviderError)])
def test_each_rspcod_raises_its_class(scripted, code, cls):
    gw = Gateway({"providers": {"cmas": scripted.demo_config()}})
    hooks = gw.hooks("cmas")
    ctx = gw.context("cmas", Operation.SEND)
    req = HttpRequest(url=scripted.url + "/sms/submit")
    answer = HttpResponse.of_json({"rspcod": code, "mgsGroup": "", "success": False})
    with pytest.raises(cls) as err:
        hooks.parse_response(ctx=ctx, operation=Operation.SEND, request=req, response=answer)
    assert type(err.value) is cls
    assert err.value.not_sent and err.value.code == code and err.value.provider == "cmas"


@pytest.mark.parametrize("answer", [
    {"rspcod": "SomethingNew", "mgsGroup": "", "success": False},
    {"rspcod": "success", "mgsGroup": "", "success": True},
    {"rspcod": "success", "mgsGroup": "G1", "success": False},
    {"mgsGroup": "G1", "success": True},
    [],
])
def test_unclear_answers_leave_recipients_unknown(scripted, answer):
    scripted.answers.append(HttpResponse.of_json(answer))
    result = Gateway({"providers": {"cmas": scripted.demo_config()}}).send(Message(to=["13800138000"], text="x"))
    assert result.unknown == ["13800138000"] and not result.accepted and not result.rejected


def test_base64_wrapped_answer_is_understood(scripted):
    body = base64.b64encode(b'{"rspcod":"success","mgsGroup":"G42","success":true}')
    scripted.answers.append(HttpResponse(status=200, body=body))
    result = Gateway({"providers": {"cmas": scripted.demo_config()}}).send(Message(to=["13800138000"], text="x"))
    assert result.ok and result.message_ids == ["G42"]


@pytest.mark.parametrize("body", [b"slow down", b"", b'{"error":"rate limited by proxy"}', b"<html>429</html>"])
def test_http_429_without_cmas_code_on_a_send_is_unknown(scripted, body):
    # a proxy's 429 does not prove the platform refused the send: never resent
    scripted.answers.append(HttpResponse(status=429, body=body))
    result = Gateway({"providers": {"cmas": scripted.demo_config()}}).send(Message(to=["13800138000"], text="x"))
    assert result.unknown == ["13800138000"] and not result.rejected
    gw = Gateway({"providers": {"cmas": scripted.demo_config()}})
    with pytest.raises(RateLimited) as err:
        gw.hooks("cmas").parse_response(ctx=gw.context("cmas", Operation.SEND), operation=Operation.SEND,
                                        request=HttpRequest(url=scripted.url + "/sms/submit"),
                                        response=HttpResponse(status=429, body=body))
    assert not err.value.not_sent and err.value.retry_after == 5.0


def test_http_429_with_cmas_too_frequent_code_is_not_sent(scripted):
    gw = Gateway({"providers": {"cmas": scripted.demo_config()}})
    with pytest.raises(RateLimited) as err:
        gw.hooks("cmas").parse_response(ctx=gw.context("cmas", Operation.SEND), operation=Operation.SEND,
                                        request=HttpRequest(url=scripted.url + "/sms/submit"),
                                        response=HttpResponse.of_json({"rspcod": "TooFrequent"}, status=429))
    assert err.value.not_sent
