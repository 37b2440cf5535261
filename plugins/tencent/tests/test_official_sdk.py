"""Both directions against Tencent Cloud's official Python SDK (``tencentcloud-sdk-python-sms``, a
test-only dependency), so neither the plugin nor the simulator is checked only against itself:

* the SDK's own requests, pointed at the simulator on 127.0.0.1 (its HttpProfile endpoint and
  protocol), are accepted by the simulator's signature check, and its answers read by the SDK;
* the plugin's requests, as the simulator received them, verify with the SDK's signer
  (``tencentcloud.common.sign.Sign.sign_tc3``), and the plugin's dialect gives the very
  Authorization the SDK sent for the SDK's own requests.
"""

from __future__ import annotations

import json
import os
import warnings

import pytest

from smsgate import Operation, PullQuery
from smsgate_tencent import dialect
from smsgate_tencent.simulator import DEMO_SIGN, DEMO_TEMPLATE

if os.environ.get("CI") != "true":  # locally, without the plugin's test extra: skip; in CI: fail
    pytest.importorskip("tencentcloud.sms.v20210111", reason="pip install -e 'plugins/tencent[test]'")
from tencentcloud.common import credential  # noqa: E402
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException  # noqa: E402
from tencentcloud.common.profile.client_profile import ClientProfile  # noqa: E402
from tencentcloud.common.profile.http_profile import HttpProfile  # noqa: E402
from tencentcloud.common.sign import Sign  # noqa: E402
from tencentcloud.sms.v20210111 import models, sms_client  # noqa: E402


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    # the SDK sends through requests, which honours proxy variables: keep loopback direct
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


def sdk_client(sim, secret_key=None):
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=f"127.0.0.1:{sim.port}", reqTimeout=10))
    cred = credential.Credential(sim.secret_id, secret_key or sim.secret_key)
    return sms_client.SmsClient(cred, "ap-guangzhou", profile)


def sdk_send(client, phones, params=("4370",)):
    req = models.SendSmsRequest()
    req.from_json_string(json.dumps({"PhoneNumberSet": list(phones), "SmsSdkAppId": "1400006666",
                                     "SignName": DEMO_SIGN, "TemplateId": DEMO_TEMPLATE,
                                     "TemplateParamSet": list(params)}))
    return client.SendSms(req)


# -- the SDK's requests, the simulator's check ------------------------------------------------------

def test_sdk_send_is_accepted_by_the_simulator(sim):
    resp = sdk_send(sdk_client(sim), ["+8613800138000", "+8613900139000"])
    assert [s.Code for s in resp.SendStatusSet] == ["Ok", "Ok"]
    assert all(s.SerialNo for s in resp.SendStatusSet) and resp.RequestId
    # what the SDK signed: the two required headers (the plugin also signs x-tc-action)
    assert sim.verified[-1]["signed_headers"] == "content-type;host"
    assert sim.requests[-1].header("Host") == f"127.0.0.1:{sim.port}"


def test_sdk_with_a_wrong_key_is_refused_by_the_simulator(sim):
    with pytest.raises(TencentCloudSDKException) as err:
        sdk_send(sdk_client(sim, secret_key="x" + sim.secret_key[1:]), ["+8613800138000"])
    assert err.value.get_code() == "AuthFailure.SignatureFailure"
    assert not sim.sent


def test_sdk_reads_the_simulators_per_number_failures(sim):
    sim.blocked_phones.add("13900139000")
    resp = sdk_send(sdk_client(sim), ["+8613800138000", "+8613900139000", "+86123"])
    assert [s.Code for s in resp.SendStatusSet] == [
        "Ok", "FailedOperation.PhoneNumberInBlacklist", "InvalidParameterValue.IncorrectPhoneNumber"]


def test_sdk_pulls_reports_and_replies_from_the_simulator(sim):
    client = sdk_client(sim)
    sdk_send(client, ["+8613800138000"])
    sim.deliver_all()
    sim.add_reply("13800138000", "TD", extend="11")
    req = models.PullSmsSendStatusRequest()
    req.from_json_string(json.dumps({"Limit": 100, "SmsSdkAppId": "1400006666"}))
    reports = client.PullSmsSendStatus(req).PullSmsSendStatusSet
    assert [(r.SubscriberNumber, r.ReportStatus, r.Description) for r in reports] == [
        ("13800138000", "SUCCESS", "DELIVRD")]
    req = models.PullSmsReplyStatusRequest()
    req.from_json_string(json.dumps({"Limit": 100, "SmsSdkAppId": "1400006666"}))
    replies = client.PullSmsReplyStatus(req).PullSmsReplyStatusSet
    assert [(r.PhoneNumber, r.ReplyContent, r.ExtendCode) for r in replies] == [("+8613800138000", "TD", "11")]


def test_dialect_reproduces_the_sdks_authorization(sim):
    """For the SDK's own requests (captured at the simulator), the plugin's dialect, given the SDK's
    signed headers, writes the very Authorization header the SDK sent."""
    sdk_send(sdk_client(sim), ["+8613800138000"])
    got = sim.requests[-1]
    stamp = int(got.header("X-TC-Timestamp"))
    signed = dialect.sign(secret_id=sim.secret_id, secret_key=sim.secret_key, service="sms", timestamp=stamp,
                          method="POST", headers=dict(got.headers), payload=got.body, signed=("content-type", "host"))
    assert signed.authorization == got.header("Authorization")


# -- the plugin's requests, the SDK's signer ----------------------------------------------------------

def _sdk_signature(request, secret_key):
    """The signature of a received request, its string to sign built from the reference's rules and
    signed by the SDK's own ``Sign.sign_tc3``."""
    auth = request.header("Authorization")
    scope, signed_headers = auth.split("Credential=")[1].split(", ")[0], auth.split("SignedHeaders=")[1].split(",")[0]
    date, service = scope.split("/")[1], scope.split("/")[2]
    names = signed_headers.split(";")
    canonical_headers = "".join(f"{n}:{request.header(n).strip().lower()}\n" for n in names)
    canonical = "\n".join(["POST", "/", "", canonical_headers, signed_headers, _sha256(request.body)])
    to_sign = "\n".join(["TC3-HMAC-SHA256", request.header("X-TC-Timestamp"), f"{date}/{service}/tc3_request",
                         _sha256(canonical.encode("utf-8"))])
    return Sign.sign_tc3(secret_key, date, service, to_sign), auth.split("Signature=")[1]


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("operation", [Operation.SEND, Operation.SEND_BATCH, Operation.PULL_REPORTS,
                                       Operation.PULL_INBOUND])
def test_plugin_requests_verify_with_the_sdks_signer(sim, gateway, operation):
    if operation is Operation.PULL_REPORTS:
        gateway.pull_reports("tencent", PullQuery())
    elif operation is Operation.PULL_INBOUND:
        gateway.pull_inbound("tencent")
    else:
        assert gateway.send(sim.demo_message(operation)).ok
    assert sim.requests
    for request in sim.requests:
        expected, sent = _sdk_signature(request, sim.secret_key)
        assert sent == expected
        # and a wrong key gives another signature under the same signer (the check can fail)
        assert _sdk_signature(request, "x" + sim.secret_key[1:])[0] != sent


def test_plugin_and_sdk_send_the_same_parameters(sim, gateway):
    """The body the plugin sends holds what the SDK's SendSmsRequest model holds for the same call."""
    assert gateway.send(sim.demo_message(Operation.SEND)).ok
    plugin_body = json.loads(sim.requests[-1].body)
    req = models.SendSmsRequest()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the SDK's model warns of fields it does not know
        req.from_json_string(json.dumps(plugin_body))
    assert {k: v for k, v in json.loads(req.to_json_string()).items() if v is not None} == plugin_body
