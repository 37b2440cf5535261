"""The vendor JSON shapes as attrs classes: answers that cannot be read name the vendor field,
request bodies keep their keys and order."""

from __future__ import annotations

import subprocess
import sys

import pytest

from smsgate import AuthError, Gateway, HttpRequest, HttpResponse, Message, Operation, ProviderError
from smsgate_cmas import wire


def parse(scripted, answer, operation=Operation.SEND, path="/sms/submit"):
    gw = Gateway({"providers": {"cmas": scripted.demo_config()}})
    return gw.hooks("cmas").parse_response(ctx=gw.context("cmas", operation), operation=operation,
                                           request=HttpRequest(url=scripted.url + path),
                                           response=HttpResponse.of_json(answer))


@pytest.mark.parametrize("answer,field,code", [
    ({"mgsGroup": "G1", "success": True}, "rspcod: missing", "ANSWER"),
    ({"rspcod": "success", "mgsGroup": "G1", "success": "true"}, "success: expected a JSON boolean", "success"),
    ({"rspcod": "success", "mgsGroup": "G1", "success": 1}, "success: expected a JSON boolean", "success"),
])
def test_unreadable_send_answer_names_the_vendor_field(scripted, answer, field, code):
    with pytest.raises(ProviderError) as err:
        parse(scripted, answer)
    assert type(err.value) is ProviderError and not err.value.not_sent
    assert field in str(err.value) and err.value.code == code


def test_unreadable_answer_leaves_recipients_unknown_with_the_field_in_the_reason(scripted):
    scripted.answers.append(HttpResponse.of_json({"rspcod": "success", "mgsGroup": "G1", "success": "yes"}))
    result = Gateway({"providers": {"cmas": scripted.demo_config()}}).send(Message(to=["13800138000"], text="x"))
    assert result.unknown == ["13800138000"] and not result.accepted and not result.rejected
    assert "success" in result.recipients[0].reason.message


def test_answer_without_a_group_names_mgs_group(scripted):
    with pytest.raises(ProviderError) as err:
        parse(scripted, {"rspcod": "success", "mgsGroup": "", "success": True})
    assert not err.value.not_sent and "mgsGroup" in str(err.value)


def test_a_documented_refusal_is_classified_even_if_the_rest_is_unreadable(scripted):
    with pytest.raises(AuthError) as err:
        parse(scripted, {"rspcod": "IllegalMac", "mgsGroup": [], "success": "no"})
    assert err.value.not_sent and err.value.code == "IllegalMac"


def test_pull_items_are_read_leniently(scripted):
    items = [{"reportStatus": "DELIVRD", "mobile": 13800138000, "msgGroup": "G1", "receiveDate": 20240918113020},
             "not an object", {"mobile": "13900139000"}]
    reports = parse(scripted, items, Operation.PULL_REPORTS, "/sms/report")
    assert [(r.phone, r.message_id, r.raw_status, r.reported_at) for r in reports] == [
        ("13800138000", "G1", "DELIVRD", "20240918113020"), ("13900139000", None, None, None)]
    [msg] = parse(scripted, [{"smsContent": "TD", "mobile": "13800138000", "addSerial": 1}],
                  Operation.PULL_INBOUND, "/sms/deliver")
    assert (msg.phone, msg.content, msg.service_code, msg.received_at) == ("13800138000", "TD", "1", None)


def test_dto_classes_use_the_vendor_keys():
    assert wire.WIRE.read({"rspcod": "success", "mgsGroup": "G", "success": True}, wire.SubmitAnswer) == \
        wire.SubmitAnswer(rspcod="success", mgsGroup="G", success=True)
    req = wire.TmplSubmitRequest(ecName="e", apId="a", templateId="T", mobiles="1", params='[""]', sign="s",
                                 addSerial="")
    assert list(wire.WIRE.write(req)) == ["ecName", "apId", "templateId", "mobiles", "params", "sign", "addSerial"]
    pull = wire.PullRequest(ecName="e", apId="a", secretKey="hidden")
    assert wire.WIRE.write(pull) == {"ecName": "e", "apId": "a", "secretKey": "hidden"}
    assert "hidden" not in repr(pull)


def test_importing_the_plugin_does_not_import_cattrs():
    code = "import sys, smsgate_cmas.plugin; print('cattrs' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
