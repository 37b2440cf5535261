"""Both directions against Alibaba Cloud's official Python SDK (``alibabacloud-dysmsapi20170525``,
a test-only dependency), so that neither the plugin nor the simulator is checked only against
itself:

* the SDK's own requests -- signature V3 (its default) and the RPC signature
  (``signature_algorithm='v2'``) -- are accepted by the simulator, and a wrong secret is refused;
* the plugin's signed requests give the same ``Authorization`` when the SDK's signer
  (``alibabacloud_tea_openapi.utils.Utils.get_authorization``) signs them again.
"""

from __future__ import annotations

import datetime as dt
import types
from urllib.parse import parse_qsl, urlsplit

import pytest

from smsgate import Message, Operation, PullQuery
from smsgate_aliyun.simulator import DEMO_TEMPLATE, NOTICE_TEMPLATE, SIGN_NAME

from smsgate.testing import FIXED_NONCE, FIXED_TIME


def sdk_client(sdk, sim, secret=None, algorithm=None):
    config = sdk.utils_models.Config(access_key_id=sim.access_key_id,
                                 access_key_secret=secret or sim.access_key_secret,
                                 endpoint=f"127.0.0.1:{sim.port}", protocol="http")
    if algorithm:
        config.signature_algorithm = algorithm
    return sdk.Client(config)


@pytest.mark.parametrize("algorithm", [None, "v2"], ids=["v3-default", "rpc-v2"])
def test_the_sdks_requests_are_accepted_by_the_simulator(sdk, sim, algorithm):
    models = sdk.models
    client = sdk_client(sdk, sim, algorithm=algorithm)
    sent = client.send_sms(models.SendSmsRequest(
        phone_numbers="13800138000,13900139000", sign_name=SIGN_NAME, template_code=DEMO_TEMPLATE,
        template_param='{"code":"1234"}', out_id="order 42*~", sms_up_extend_code="12"))
    assert sent.body.code == "OK" and sent.body.biz_id
    batch = client.send_batch_sms(models.SendBatchSmsRequest(
        phone_number_json='["13800138000","13900139000"]', sign_name_json=f'["{SIGN_NAME}","{SIGN_NAME}"]',
        template_code=NOTICE_TEMPLATE,
        template_param_json='[{"name":"张 三","order":"A+1"},{"name":"李四","order":"A&2"}]'))
    assert batch.body.code == "OK" and batch.body.biz_id
    sim.deliver_all()
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).strftime("%Y%m%d")
    details = client.query_send_details(models.QuerySendDetailsRequest(
        phone_number="13800138000", send_date=today, page_size=10, current_page=1, biz_id=sent.body.biz_id))
    assert details.body.code == "OK" and details.body.total_count == 1
    assert [d.send_status for d in details.body.sms_send_detail_dtos.sms_send_detail_dto] == [3]
    style = "v3" if algorithm is None else "v1"
    assert [v["style"] for v in sim.verified] == [style] * 3
    assert [v["action"] for v in sim.verified] == ["SendSms", "SendBatchSms", "QuerySendDetails"]
    assert {r.phone for r in sim.records} == {"13800138000", "13900139000"} and len(sim.records) == 4


@pytest.mark.parametrize("algorithm", [None, "v2"], ids=["v3-default", "rpc-v2"])
def test_the_sdk_with_a_wrong_secret_is_refused_by_the_simulator(sdk, sim, algorithm):
    models = sdk.models
    client = sdk_client(sdk, sim, secret="NotTheSecret" + sim.access_key_secret[12:], algorithm=algorithm)
    with pytest.raises(Exception) as err:
        client.send_sms(models.SendSmsRequest(phone_numbers="13800138000", sign_name=SIGN_NAME,
                                              template_code=DEMO_TEMPLATE, template_param='{"code":"1"}'))
    assert getattr(err.value, "code", None) == "SignatureDoesNotMatch"
    assert not sim.records


def signed(gw, operation, payload):
    """Build and sign one request through the plugin's hooks (fixed clock and nonce)."""
    hooks, ctx = gw.hooks("aliyun"), gw.context("aliyun", operation)
    if isinstance(payload, Message):
        payload = hooks.validate_message(ctx=ctx, message=payload) or payload
    request = hooks.build_request(ctx=ctx, operation=operation, payload=payload)
    return hooks.sign(ctx=ctx, operation=operation, request=request)


CASES = {
    "send": (Operation.SEND, Message(to=["13800138000", "13900139000"], template_id=DEMO_TEMPLATE,
                                     params={"code": "1234"}, biz_id="order 42*~", extend_code="12")),
    "send_batch": (Operation.SEND_BATCH, Message.personalised(
        {"13800138000": {"name": "张 三", "order": "A+1"}, "13900139000": {"name": "李四", "order": "A&2"}},
        template_id=NOTICE_TEMPLATE)),
    "pull_reports": (Operation.PULL_REPORTS, PullQuery(message_ids=["900619746936498^0"], phones=["13800138000"])),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_plugins_requests_verify_with_the_sdks_signer(sdk, make_gateway, case):
    Utils = sdk.Utils
    operation, payload = CASES[case]
    gw = make_gateway(clock=lambda: FIXED_TIME, nonce=lambda: FIXED_NONCE, security_token="sts-token-1")
    request = signed(gw, operation, payload)
    headers = {k.lower(): v for k, v in request.headers}
    auth = headers.pop("authorization")
    signed_names = auth.split("SignedHeaders=")[1].split(",")[0].split(";")
    parts = urlsplit(request.url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    # the SDK's canonical query of our parameters is the very query string we send
    from alibabacloud_tea_openapi.utils import get_canonical_query_string

    assert get_canonical_query_string(query) == parts.query
    # the SDK hashes the body as we do, and signs the same request to the same Authorization
    assert Utils.hash(request.body, "ACS3-HMAC-SHA256").hex() == headers["x-acs-content-sha256"]
    sdk_request = types.SimpleNamespace(method=request.method, pathname=parts.path, query=query,
                                        headers={k: headers[k] for k in signed_names})
    expected = Utils.get_authorization(sdk_request, "ACS3-HMAC-SHA256", headers["x-acs-content-sha256"],
                                       gw.context("aliyun").config.access_key_id,
                                       gw.context("aliyun").config.access_key_secret)
    assert auth == expected
    assert headers["x-acs-date"] == "2024-09-18T03:50:16Z" and headers["x-acs-signature-nonce"] == FIXED_NONCE
    assert headers["x-acs-security-token"] == "sts-token-1" and "x-acs-security-token" in signed_names
