"""The simulator's own signature check refuses what Tencent would: a request altered after signing,
a missing required signed header, a wrong scope, an old timestamp."""

from __future__ import annotations

import json
import urllib.request

import pytest

from smsgate import Message, Operation
from smsgate_tencent import dialect
from smsgate_tencent.simulator import DEMO_TEMPLATE


def signed_send(gateway, sim):
    hooks = gateway.hooks("tencent")
    ctx = gateway.context("tencent", Operation.SEND)
    msg = hooks.validate_message(ctx=ctx, message=Message(to=["13800138000"], template_id=DEMO_TEMPLATE,
                                                          params=["1"]))
    request = hooks.build_request(ctx=ctx, operation=Operation.SEND, payload=msg)
    return hooks.sign(ctx=ctx, operation=Operation.SEND, request=request)


def post(sim, headers, body):
    req = urllib.request.Request(sim.url + "/", data=body, method="POST", headers=headers)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["Response"]


def code(answer):
    return (answer.get("Error") or {}).get("Code", "Ok")


def test_the_plugins_request_as_signed_is_accepted(sim, gateway):
    request = signed_send(gateway, sim)
    assert code(post(sim, dict(request.headers), request.body)) == "Ok"
    assert sim.verified[-1]["signed_headers"] == "content-type;host;x-tc-action"


@pytest.mark.parametrize("change", ["body", "action", "content-type", "timestamp"])
def test_a_request_changed_after_signing_is_refused(sim, gateway, change):
    request = signed_send(gateway, sim)
    headers, body = dict(request.headers), request.body
    if change == "body":
        body = body.replace(b"13800138000", b"13900139000")
    elif change == "action":
        headers["X-TC-Action"] = "PullSmsReplyStatus"
    elif change == "content-type":
        headers["Content-Type"] = "application/json"
    else:
        headers["X-TC-Timestamp"] = str(int(headers["X-TC-Timestamp"]) + 1)
    assert code(post(sim, headers, body)) == "AuthFailure.SignatureFailure"
    assert not sim.sent


def test_host_must_be_signed(sim, gateway):
    request = signed_send(gateway, sim)
    headers = dict(request.headers)
    stamp = int(headers["X-TC-Timestamp"])
    signed = dialect.sign(secret_id=sim.secret_id, secret_key=sim.secret_key, service="sms", timestamp=stamp,
                          method="POST", headers=headers, payload=request.body, signed=("content-type", "x-tc-action"))
    headers["Authorization"] = signed.authorization
    assert code(post(sim, headers, request.body)) == "AuthFailure.SignatureFailure"


def test_wrong_service_in_the_scope_is_refused(sim, gateway):
    request = signed_send(gateway, sim)
    headers = dict(request.headers)
    stamp = int(headers["X-TC-Timestamp"])
    headers["Authorization"] = dialect.sign(secret_id=sim.secret_id, secret_key=sim.secret_key, service="cvm",
                                            timestamp=stamp, method="POST", headers=headers,
                                            payload=request.body).authorization
    assert code(post(sim, headers, request.body)) == "AuthFailure.SignatureFailure"


def test_unknown_secret_id_and_old_timestamp(sim, make_gateway):
    other = signed_send(make_gateway(sim, secret_id="AKIDother"), sim)
    assert code(post(sim, dict(other.headers), other.body)) == "AuthFailure.SecretIdNotFound"
    old = signed_send(make_gateway(sim, clock=lambda: sim.clock() - 301), sim)
    assert code(post(sim, dict(old.headers), old.body)) == "AuthFailure.SignatureExpire"


def test_unsigned_payload_as_the_sdk_can_send_it(sim, gateway):
    request = signed_send(gateway, sim)
    headers = {**dict(request.headers), "X-TC-Content-SHA256": "UNSIGNED-PAYLOAD"}
    stamp = int(headers["X-TC-Timestamp"])
    canonical = dialect.canonical_request("POST", "", headers, dialect.SIGNED_HEADERS, b"UNSIGNED-PAYLOAD")
    to_sign = dialect.string_to_sign(stamp, "sms", canonical)
    signature = dialect.signature(sim.secret_key, stamp, "sms", to_sign)
    headers["Authorization"] = (f"TC3-HMAC-SHA256 Credential={sim.secret_id}/{dialect.utc_date(stamp)}/sms/tc3_request, "
                                f"SignedHeaders=content-type;host;x-tc-action, Signature={signature}")
    assert code(post(sim, headers, request.body)) == "Ok"


def test_limit_over_100_is_refused(sim, gateway):
    request = signed_send(gateway, sim)
    body = json.dumps({"Limit": 101, "SmsSdkAppId": sim.app_id}).encode()
    headers = {**dict(request.headers), "X-TC-Action": "PullSmsSendStatus"}
    stamp = int(headers["X-TC-Timestamp"])
    headers["Authorization"] = dialect.sign(secret_id=sim.secret_id, secret_key=sim.secret_key, service="sms",
                                            timestamp=stamp, method="POST", headers=headers,
                                            payload=body).authorization
    assert code(post(sim, headers, body)) == "InvalidParameterValue.LimitVerifyFail"
