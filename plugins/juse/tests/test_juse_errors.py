"""Every error path: what the simulator refuses (as the vendor would) and how the plugin classifies it."""

from __future__ import annotations

import time
import uuid

import pytest

from smsgate import AuthError, HttpResponse, InsufficientBalance, ProviderError, RateLimited
from smsgate.testing import SimulatorServer
from smsgate_juse import dialect
from smsgate_juse.plugin import JuseConfig, classify

SECRET = "r6duQGOuwDw4QeF/TJi6tw=="


def raw_call(sim, path: str, fields: dict, *, secret: str = SECRET, drop: str | None = None,
             headers: dict | None = None, timestamp: int | None = None, nonce: str | None = None,
             app_type: str = "2", offset: int = 0) -> dict:
    """POST ``fields`` to the simulator, signed like the plugin signs (or not, as asked)."""
    body = dialect.encode_body(fields)
    ts = str((int(sim.clock()) + offset) if timestamp is None else timestamp)
    nonce = nonce or uuid.uuid4().hex
    sign = dialect.request_signature(secret, dialect.strip_ignore_path(path, "/api"), dialect.sign_params(fields),
                                     app_type, ts, nonce)
    h = {"Content-Type": "application/json", "X-message-Algorithm": "md5", "X-message-Time": ts,
         "X-message-AppType": app_type, "X-message-AppID": "adrm", "X-message-Nonce": nonce, "X-message-Sign": sign}
    if drop:
        del h[drop]
    h.update(headers or {})
    answer = SimulatorServer.push(sim.url + path, body, h)
    return answer.json()


def sms_fields(**overrides) -> dict:
    fields = {"appId": "adrm", "templateId": "T", "signName": "S",
              "phone": dialect.encrypt_phone(SECRET, "15837390237"), "params": {"param1": "1"}}
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


def task_fields(phones: str = "15837390237,18566292142", **overrides) -> dict:
    fields = {"appId": "adrm", "name": "n", "templateId": "T", "signName": "S", "planTime": "2024-09-18 10:00:00",
              "phones": dialect.encrypt_phone(SECRET, phones), "params": {"param1": "1"}}
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


# -- the simulator refuses what the vendor refuses ----------------------------------------------

def test_well_signed_raw_calls_are_accepted(sim):
    sim.clock = lambda: 1726631416.0  # the window edges, exactly
    assert raw_call(sim, "/api/spi/sendSms", sms_fields(), offset=-900)["code"] == 200
    assert raw_call(sim, "/api/spi/sendSms", sms_fields(), offset=900)["code"] == 200
    assert raw_call(sim, "/api/spi/sendSms", sms_fields())["code"] == 200
    assert raw_call(sim, "/api/spi/sendSmsTask", task_fields())["code"] == 200


@pytest.mark.parametrize("header", ["X-message-Algorithm", "X-message-Time", "X-message-AppType",
                                    "X-message-AppID", "X-message-Nonce", "X-message-Sign"])
def test_missing_header_gets_the_documents_answer(sim, header):
    answer = raw_call(sim, "/api/spi/sendSms", sms_fields(), drop=header)
    assert answer == {"code": 400, "mes": f"参数错误:{header} 参数为空", "requestId": None,
                      "detail": f"参数错误:{header} 参数为空", "httpStatusHint": 503, "showDetail": False,
                      "ok": False}
    assert not sim.records


@pytest.mark.parametrize("kwargs, words", [
    ({"secret": "s6duQGOuwDw4QeF/TJi6tw=="}, "X-message-Sign"),
    ({"headers": {"X-message-AppType": "1"}}, "X-message-Sign"),  # app type is part of the signature
    ({"headers": {"X-message-Algorithm": "sha1"}}, "X-message-Algorithm"),
    ({"headers": {"X-message-AppID": "other"}}, "X-message-AppID"),
    ({"offset": -901}, "X-message-Time"),
    ({"offset": 901}, "X-message-Time"),
    ({"headers": {"X-message-Time": "soon"}}, "X-message-Time"),
])
def test_bad_headers_are_refused(sim, kwargs, words):
    sim.clock = lambda: 1726631416.0
    answer = raw_call(sim, "/api/spi/sendSms", sms_fields(), **kwargs)
    assert answer["code"] == 400 and words in answer["mes"], answer
    assert not sim.records


def test_signature_is_rebuilt_from_the_received_body(sim):
    fields = sms_fields()
    body = dialect.encode_body({**fields, "templateId": "OTHER"})  # body differs from what was signed
    ts, nonce = str(int(time.time())), uuid.uuid4().hex
    sign = dialect.request_signature(SECRET, "/spi/sendSms", dialect.sign_params(fields), "2", ts, nonce)
    headers = {"X-message-Algorithm": "md5", "X-message-Time": ts, "X-message-AppType": "2",
               "X-message-AppID": "adrm", "X-message-Nonce": nonce, "X-message-Sign": sign}
    answer = SimulatorServer.push(sim.url + "/api/spi/sendSms", body, headers).json()
    assert answer["code"] == 400 and "X-message-Sign" in answer["mes"]


def test_reused_nonce_is_refused(sim):
    assert raw_call(sim, "/api/spi/sendSms", sms_fields(), nonce="n" * 32)["code"] == 200
    answer = raw_call(sim, "/api/spi/sendSms", sms_fields(), nonce="n" * 32)
    assert answer["code"] == 400 and "X-message-Nonce" in answer["mes"]
    assert len(sim.records) == 1


@pytest.mark.parametrize("path, fields, words", [
    ("/api/spi/sendSms", sms_fields(phone="15837390237"), "phone 解密失败"),
    ("/api/spi/sendSms", sms_fields(phone=dialect.encrypt_phone(SECRET, "12345")), "phone 手机号码格式错误"),
    ("/api/spi/sendSms", sms_fields(phone=dialect.encrypt_phone("s6duQGOuwDw4QeF/TJi6tw==", "15837390237")),
     "解密失败"),
    ("/api/spi/sendSms", sms_fields(templateId=None), "templateId 参数为空"),
    ("/api/spi/sendSms", sms_fields(signName=""), "signName 参数为空"),
    ("/api/spi/sendSms", sms_fields(params=None), "params 参数为空"),
    ("/api/spi/sendSms", sms_fields(appId="other"), "appId 与 X-message-AppID 不一致"),
    ("/api/spi/sendSmsTask", task_fields(planTime="2024/09/18 10:00"), "planTime"),
    ("/api/spi/sendSmsTask", task_fields(name=None), "name 参数为空"),
    ("/api/spi/sendSmsTask", task_fields(phones="15837390237,123"), "phones 手机号码格式错误"),
    ("/api/spi/sendSmsTask", task_fields(phones=",".join(f"139{i:08d}" for i in range(1001))), "最多支持 1000"),
])
def test_bad_bodies_are_refused_with_a_request_id(sim, path, fields, words):
    answer = raw_call(sim, path, fields)
    assert answer["code"] == 400 and words in answer["mes"], answer
    assert answer["requestId"]
    assert not sim.records


def test_unknown_path_and_method(sim):
    assert raw_call(sim, "/api/spi/nothing", sms_fields())["code"] == 404
    assert SimulatorServer.push(sim.url + "/spi/sendSms", b"{}").status == 404  # no /api prefix: nginx 404


# -- the plugin classifies the answers ----------------------------------------------------------

def test_wrong_secret_is_an_auth_error_and_not_sent(sim, make_gateway):
    result = make_gateway(app_secret="s6duQGOuwDw4QeF/TJi6tw==").send(sim.demo_message())
    [rejected] = result.rejected
    assert rejected.reason.code == "400" and rejected.reason.not_sent
    assert "X-message-Sign" in rejected.reason.message
    assert not result.unknown and not sim.records


@pytest.mark.parametrize("overrides", [
    {"app_id": "other"},
    {"app_key": "other"},  # headers named X-other-*: the vendor sees none of its own
    {"ignore_path": ""},  # signs /api/spi/sendSms; the vendor signs /spi/sendSms
    {"app_type": 1},  # fine: app type travels and is signed
])
def test_config_mismatches(sim, make_gateway, overrides):
    result = make_gateway(**overrides).send(sim.demo_message())
    if overrides == {"app_type": 1}:
        assert result.ok
        return
    assert result.rejected and result.rejected[0].reason.not_sent and not result.unknown


def test_clock_far_off_is_refused_as_not_sent(sim, make_gateway):
    result = make_gateway(clock=lambda: time.time() - 3600).send(sim.demo_message())
    assert result.rejected[0].reason.code == "400" and "X-message-Time" in result.rejected[0].reason.message


def test_repeated_nonce_second_send_is_rejected(sim, make_gateway):
    gw = make_gateway(nonce=lambda: "f" * 32)
    assert gw.send(sim.demo_message()).ok
    second = gw.send(sim.demo_message())
    assert second.rejected and "X-message-Nonce" in second.rejected[0].reason.message
    assert len(sim.records) == 1


@pytest.mark.parametrize("code, mes, outcome, error", [
    (500, "短信服务商调用失败", "unknown", ProviderError),
    (503, "服务繁忙", "unknown", ProviderError),
    (429, "请求过于频繁", "rejected", RateLimited),
    (400, "参数错误:templateId 模板不存在", "rejected", ProviderError),
    (400, "余额不足", "rejected", InsufficientBalance),
    (401, "未认证", "rejected", AuthError),
    (403, "无权限", "rejected", AuthError),
    (404, "接口不存在", "rejected", ProviderError),
    (0, "未知错误", "unknown", ProviderError),
    # a 5xx may come after the SMS vendor was called: its words name the problem, not the outcome
    (500, "第三方短信服务商响应超时,请求频繁", "unknown", RateLimited),
    (503, "短信服务商返回:账户余额查询失败", "unknown", InsufficientBalance),
])
def test_vendor_codes_are_classified(sim, make_gateway, code, mes, outcome, error):
    sim.fail_next(code, mes)
    result = make_gateway().send(sim.demo_message())
    assert not result.accepted
    if outcome == "rejected":
        [rec] = result.rejected
        assert rec.reason.not_sent
    else:
        assert result.unknown == ["15837390237"]
        [rec] = [r for r in result.recipients]
        assert not rec.reason.not_sent
    assert rec.reason.code == str(code) and rec.reason.message == mes
    assert rec.request_id and rec.request_id.startswith("juse-")
    cfg = JuseConfig(app_id="adrm", app_secret=SECRET)
    err = classify(cfg, str(code), mes, "r1")
    assert type(err) is error and err.request_id == "r1" and err.provider == "juse"


def test_sign_name_error_is_not_mistaken_for_a_signature_error():
    cfg = JuseConfig(app_id="adrm", app_secret=SECRET)
    err = classify(cfg, "400", "参数错误:短信签名不存在", None)
    assert type(err) is ProviderError and err.not_sent
    assert type(classify(cfg, "400", "验签失败", None)) is AuthError


@pytest.mark.parametrize("response", [
    HttpResponse.of_json({"mes": "no code"}),
    HttpResponse.of_json([1, 2]),
    HttpResponse(status=502, body=b"<html>bad gateway</html>"),
])
def test_answers_without_a_code_are_unknown(make_gateway, response):
    from smsgate import Operation

    gw = make_gateway()
    hooks, ctx = gw.hooks("juse"), gw.context("juse", Operation.SEND)
    with pytest.raises(ProviderError) as err:
        hooks.parse_response(ctx=ctx, operation=Operation.SEND, request=None, response=response)
    assert not err.value.not_sent and err.value.code == f"HTTP{response.status}"


@pytest.mark.parametrize("data, expected", [
    (1234, "1234"), ("abc", "abc"), ({"sendRecordId": 9}, "9"), ({"sendTaskId": 8}, "8"),
    (None, "req-1"), ({}, "req-1"), ("", "req-1"),
])
def test_message_id_comes_from_data_else_request_id(make_gateway, data, expected):
    from smsgate import Operation

    gw = make_gateway()
    hooks, ctx = gw.hooks("juse"), gw.context("juse", Operation.SEND)
    reply = hooks.parse_response(ctx=ctx, operation=Operation.SEND, request=None,
                                 response=HttpResponse.of_json({"code": 200, "data": data, "requestId": "req-1"}))
    assert reply.message_id == expected and reply.request_id == "req-1"
