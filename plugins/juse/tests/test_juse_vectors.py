"""The document's three test vectors, byte for byte, through the plugin's own hooks."""

from __future__ import annotations

import hashlib
import json

from smsgate import CallbackRequest, Gateway, Message, Operation
from smsgate_juse import dialect

from smsgate.testing import FIXED_NONCE, FIXED_TIME

SECRET = "r6duQGOuwDw4QeF/TJi6tw=="
SEND_SIGN = "1722092a360cc6c2478c75f0fbd94192"
CALLBACK_SIGN = "f04f1da7f21971881ef0ceee3eb1d455"
PARAMS_STRING = ("appId=adrm,params={param1=888999},phone=X4jPc0rqNtopIgUuoBe5Dw==,signName=登录验证,"
                 "templateId=MSG_2024090901")
DOC_MESSAGE = Message(to=["15837390237"], template_id="MSG_2024090901", params={"param1": "888999"},
                      sign_name="登录验证")


def doc_gateway(**values) -> Gateway:
    config = {"app_id": "adrm", "app_secret": SECRET, "base_url": "https://msgdev.gooeto.com/api", **values}
    return Gateway({"providers": {"juse": config}}, clock=lambda: FIXED_TIME, nonce=lambda: FIXED_NONCE)


def built_and_signed(gw: Gateway, message: Message = DOC_MESSAGE):
    from smsgate.sending.pipeline import normalise_recipients

    hooks, ctx = gw.hooks("juse"), gw.context("juse", Operation.SEND)
    msg = hooks.validate_message(ctx=ctx, message=normalise_recipients(message)) or message
    request = hooks.build_request(ctx=ctx, operation=Operation.SEND, payload=msg)
    return request, hooks.sign(ctx=ctx, operation=Operation.SEND, request=request)


def test_aes_vector():
    assert dialect.encrypt_phone(SECRET, "15837390237") == "X4jPc0rqNtopIgUuoBe5Dw=="
    assert dialect.decrypt_phone(SECRET, "X4jPc0rqNtopIgUuoBe5Dw==") == "15837390237"


def test_send_signature_vector_from_the_parts():
    text = dialect.request_sign_string(SECRET, "/spi/sendSms", PARAMS_STRING, "2", "1726631416", FIXED_NONCE)
    assert dialect.request_signature(SECRET, "/spi/sendSms", PARAMS_STRING, "2", "1726631416",
                                     FIXED_NONCE) == SEND_SIGN
    assert hashlib.md5(text.encode()).hexdigest() == SEND_SIGN


def test_send_request_is_the_documents_byte_for_byte():
    request, signed = built_and_signed(doc_gateway())
    assert request.url == "https://msgdev.gooeto.com/api/spi/sendSms"
    assert request.body == ('{"appId":"adrm","templateId":"MSG_2024090901","signName":"登录验证",'
                            '"phone":"X4jPc0rqNtopIgUuoBe5Dw==","params":{"param1":"888999"}}').encode("utf-8")
    # the body sent is the JSON whose fields give the document's params string
    assert dialect.sign_params(json.loads(request.body)) == PARAMS_STRING
    assert dialect.strip_ignore_path(request.path, "/api") == "/spi/sendSms"
    assert dict(signed.headers) == {
        "Content-Type": "application/json;charset=UTF-8",
        "X-message-Algorithm": "md5",
        "X-message-Time": "1726631416",
        "X-message-AppType": "2",
        "X-message-AppID": "adrm",
        "X-message-Nonce": FIXED_NONCE,
        "X-message-Sign": SEND_SIGN,
    }


def test_printed_example_string_does_not_give_the_printed_md5():
    # VENDORS.md: the document prints time 1726630835, nonce b2d863e9..., app type 1 in its example
    # string, but its md5 belongs to the header table's values; the md5 is trusted.
    printed = SECRET + "/spi/sendSms" + PARAMS_STRING + "1" + "1726630835" + "b2d863e99be94f94a806c7f9b51e49e4"
    assert hashlib.md5(printed.encode()).hexdigest() != SEND_SIGN


def test_app_key_and_app_type_change_the_headers():
    _, signed = built_and_signed(doc_gateway(app_key="other", app_type=1))
    assert signed.header("X-other-AppType") == "1"
    assert signed.header("X-message-Sign") is None
    assert signed.header("X-other-Sign") == dialect.request_signature(
        SECRET, "/spi/sendSms", PARAMS_STRING, "1", "1726631416", FIXED_NONCE)


def test_callback_signature_vector():
    assert dialect.callback_signature(SECRET, "1726631416", FIXED_NONCE, "adrm", "sms_report") == CALLBACK_SIGN


def test_callback_with_the_documents_headers_is_accepted():
    gw = doc_gateway()
    body = json.dumps({"appId": "adrm", "type": "sms_report", "extensions": {},
                       "sendSmsRecordDtoList": [{"sendRecordId": 7, "sendStatus": 1,
                                                 "reportDate": "2024-09-18 11:50:16", "remark": "ok"}]}).encode()
    headers = {"X-message-Time": "1726631416", "X-message-Nonce": FIXED_NONCE, "X-message-Sign": CALLBACK_SIGN}
    result = gw.handle_callback("juse", CallbackRequest(headers=headers, body=body))
    assert [e.message_id for e in result.events] == ["7"]
    assert result.response.json()["code"] == 200
