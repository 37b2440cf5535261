"""The simulator signs and checks on its own, from the vendor's description: a request whose params
part was built in another order or format is refused, whatever the plugin's helpers would say."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest

from smsgate.testing import SimulatorServer
from smsgate_juse import dialect
from smsgate_juse.simulator import vendor_callback_sign, vendor_request_sign, vendor_sign_params

SECRET = "r6duQGOuwDw4QeF/TJi6tw=="
SEND_SIGN = "1722092a360cc6c2478c75f0fbd94192"
CALLBACK_SIGN = "f04f1da7f21971881ef0ceee3eb1d455"
NONCE = "6bab44992f9e4164812824e4aaf51628"
PARAMS_STRING = ("appId=adrm,params={param1=888999},phone=X4jPc0rqNtopIgUuoBe5Dw==,signName=登录验证,"
                 "templateId=MSG_2024090901")
DOC_BODY = ('{"appId":"adrm","templateId":"MSG_2024090901","signName":"登录验证",'
            '"phone":"X4jPc0rqNtopIgUuoBe5Dw==","params":{"param1":"888999"}}').encode("utf-8")


def post_signed_string(sim, body: bytes, params: str, *, ts: str | None = None, nonce: str | None = None) -> dict:
    """POST ``body`` with a signature whose params part is exactly ``params``."""
    ts = ts or str(int(sim.clock()))
    nonce = nonce or uuid.uuid4().hex
    sign = hashlib.md5((SECRET + "/spi/sendSms" + params + "2" + ts + nonce).encode("utf-8")).hexdigest()
    headers = {"Content-Type": "application/json", "X-message-Algorithm": "md5", "X-message-Time": ts,
               "X-message-AppType": "2", "X-message-AppID": "adrm", "X-message-Nonce": nonce,
               "X-message-Sign": sign}
    return SimulatorServer.push(sim.url + "/api/spi/sendSms", body, headers).json()


def test_simulator_signing_gives_the_checked_vectors():
    body = json.loads(DOC_BODY)
    assert vendor_sign_params(body) == PARAMS_STRING
    assert vendor_request_sign(SECRET, "/spi/sendSms", body, "2", "1726631416", NONCE) == SEND_SIGN
    assert vendor_callback_sign(SECRET, "1726631416", NONCE, "adrm", "sms_report") == CALLBACK_SIGN


def test_simulator_accepts_the_documents_request_as_printed(sim):
    sim.clock = lambda: 1726631416.0
    headers = {"Content-Type": "application/json", "X-message-Algorithm": "md5", "X-message-Time": "1726631416",
               "X-message-AppType": "2", "X-message-AppID": "adrm", "X-message-Nonce": NONCE,
               "X-message-Sign": SEND_SIGN}
    answer = SimulatorServer.push(sim.url + "/api/spi/sendSms", DOC_BODY, headers).json()
    assert answer["code"] == 200, answer
    assert [r.phone for r in sim.records] == ["15837390237"]


def test_the_correct_params_string_is_accepted(sim):
    assert post_signed_string(sim, DOC_BODY, PARAMS_STRING)["code"] == 200


@pytest.mark.parametrize("params", [
    # body order, not sorted by key
    "appId=adrm,templateId=MSG_2024090901,signName=登录验证,phone=X4jPc0rqNtopIgUuoBe5Dw==,params={param1=888999}",
    # sorted in reverse
    "templateId=MSG_2024090901,signName=登录验证,phone=X4jPc0rqNtopIgUuoBe5Dw==,params={param1=888999},appId=adrm",
    # a space after each comma
    "appId=adrm, params={param1=888999}, phone=X4jPc0rqNtopIgUuoBe5Dw==, signName=登录验证, "
    "templateId=MSG_2024090901",
    # joined with & like a query string
    "appId=adrm&params={param1=888999}&phone=X4jPc0rqNtopIgUuoBe5Dw==&signName=登录验证&templateId=MSG_2024090901",
    # the nested map as JSON text
    'appId=adrm,params={"param1":"888999"},phone=X4jPc0rqNtopIgUuoBe5Dw==,signName=登录验证,'
    "templateId=MSG_2024090901",
    # key:value instead of key=value
    "appId:adrm,params:{param1:888999},phone:X4jPc0rqNtopIgUuoBe5Dw==,signName:登录验证,templateId:MSG_2024090901",
    # the params map left out
    "appId=adrm,phone=X4jPc0rqNtopIgUuoBe5Dw==,signName=登录验证,templateId=MSG_2024090901",
])
def test_params_signed_in_another_order_or_format_are_refused(sim, params):
    answer = post_signed_string(sim, DOC_BODY, params)
    assert answer["code"] == 400 and "X-message-Sign" in answer["mes"], answer
    assert not sim.records


def test_nested_map_is_signed_in_the_bodys_key_order_not_sorted(sim):
    body = dict(json.loads(DOC_BODY), params={"param2": "b", "param1": "a"})
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    sorted_inside = PARAMS_STRING.replace("{param1=888999}", "{param1=a,param2=b}")
    body_order = PARAMS_STRING.replace("{param1=888999}", "{param2=b,param1=a}")
    assert post_signed_string(sim, raw, sorted_inside)["code"] == 400
    assert post_signed_string(sim, raw, body_order)["code"] == 200


def test_null_fields_are_left_out_not_written_as_null(sim):
    raw = json.dumps(dict(json.loads(DOC_BODY), extra=None), ensure_ascii=False).encode("utf-8")
    with_null = PARAMS_STRING.replace(",params=", ",extra=null,params=")
    assert post_signed_string(sim, raw, with_null)["code"] == 400
    assert post_signed_string(sim, raw, PARAMS_STRING)["code"] == 200


def test_simulator_and_plugin_agree_on_the_bodies_the_plugin_sends():
    for body in (json.loads(DOC_BODY),
                 {"appId": "a", "name": "n", "templateId": "T", "signName": "S", "planTime": "2024-09-18 10:00:00",
                  "phones": "x", "params": {"z": "1", "a": "2"}}):
        assert vendor_sign_params(body) == dialect.sign_params(body)
