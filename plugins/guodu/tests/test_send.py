"""Sending through Gateway to the simulator over HTTP on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request

import pytest

from smsgate import ConfigError, Gateway, Message, Outcome, ValidationError
from smsgate_guodu import dialect

PHONES = ["13800138000", "13900139000"]
DONE_WHEN_TEXT = "您好 A&B+C 100%"


def _phones(n):
    return [f"138{i:08d}" for i in range(n)]


def test_done_when_message_is_accepted_with_msgid(gw, sim):
    """smsgate send --provider guodu --to 13800138000,13900139000 --content "您好 A&B+C 100%" --json"""
    result = gw.send(Message(to="13800138000,13900139000".split(","), text=DONE_WHEN_TEXT), provider="guodu")
    out = result.to_json_dict()
    assert out["ok"] is True
    assert out["accepted"] == PHONES
    msg_id = sim.messages[0].msg_id
    assert out["message_ids"] == [msg_id]
    assert out["segments"] == 1
    assert [m.content for m in sim.messages] == [DONE_WHEN_TEXT, DONE_WHEN_TEXT]


def test_request_bytes(gw, sim):
    gw.send(Message(to=PHONES, text=DONE_WHEN_TEXT), provider="guodu")
    (req,) = sim.requests
    assert req.method == "POST" and req.path == "/HttpQuickProcess/submitJson"
    assert req.header("Content-Type") == "application/json;charset=UTF-8"
    assert req.body == (b'{"OperID":"demo","OperPass":"demo-pass","SendTime":"","AppendID":"",'
                        b'"DesMobile":"13800138000,13900139000",'
                        b'"Content":"%E6%82%A8%E5%A5%BD+A%26B%2BC+100%25"}')


def test_document_content_example(gw, sim):
    gw.send(Message(to=["13312345678"], text="测试消息1"), provider="guodu")
    assert sim.requests[0].json()["Content"] == "%E6%B5%8B%E8%AF%95%E6%B6%88%E6%81%AF1"
    assert sim.messages[0].content == "测试消息1"


def test_special_characters_travel_intact(gw, sim):
    text = "& + % = space ~*'\"\\/中文😀"
    assert gw.send(Message(to=PHONES[:1], text=text), provider="guodu").ok
    assert sim.messages[0].content == text


def test_send_time_in_china_time(gw, sim):
    utc = dt.datetime(2024, 9, 18, 1, 30, 0, tzinfo=dt.timezone.utc)
    gw.send(Message(to=PHONES[:1], text="hi", send_at=utc), provider="guodu")
    gw.send(Message(to=PHONES[:1], text="hi", send_at=dt.datetime(2024, 9, 18, 9, 30, 0)), provider="guodu")
    assert [r.json()["SendTime"] for r in sim.requests] == ["20240918093000", "20240918093000"]


def test_append_id_from_config_and_from_message(make_gateway, sim):
    gw = make_gateway(append_id="0012")
    gw.send(Message(to=PHONES[:1], text="hi"), provider="guodu")
    gw.send(Message(to=PHONES[:1], text="hi", extend_code="77"), provider="guodu")
    assert [r.json()["AppendID"] for r in sim.requests] == ["0012", "77"]


def test_append_id_must_be_digits(gw, sim):
    with pytest.raises(ValidationError) as err:
        gw.send(Message(to=PHONES[:1], text="hi", extend_code="12a"), provider="guodu")
    assert err.value.field == "extend_code"
    assert not sim.requests


def test_sign_name_goes_into_the_text(gw, sim):
    gw.send(Message(to=PHONES[:1], text="您好", sign_name="国都"), provider="guodu")
    gw.send(Message(to=PHONES[:1], text="【国都】您好", sign_name="国都"), provider="guodu")
    assert [m.content for m in sim.messages] == ["【国都】您好", "【国都】您好"]


def test_sign_name_counts_towards_the_limit(gw, sim):
    with pytest.raises(ValidationError) as err:
        gw.send(Message(to=PHONES[:1], text="字" * 497, sign_name="国都"), provider="guodu")
    assert err.value.field == "text" and "500" in str(err.value)
    assert not sim.requests


# -- limits ----------------------------------------------------------------------------------

def test_500_characters_pass_and_501_are_refused(gw, sim):
    assert gw.send(Message(to=PHONES[:1], text="字" * 500), provider="guodu").ok
    with pytest.raises(ValidationError) as err:
        gw.send(Message(to=PHONES[:1], text="字" * 501), provider="guodu")
    assert err.value.field == "text" and "500" in str(err.value)
    assert len(sim.requests) == 1


def test_templates_are_refused_naming_the_provider(gw, sim):
    with pytest.raises(ValidationError) as err:
        gw.send(Message(to=PHONES[:1], template_id="SMS_1", params=["1234"]), provider="guodu")
    assert "guodu" in str(err.value) and "template" in str(err.value)
    assert err.value.field == "template_id"
    assert not sim.requests


def test_default_max_phones_is_200(gw, sim):
    result = gw.send(Message(to=_phones(401), text="hi"), provider="guodu")
    assert result.ok and len(result.accepted) == 401
    assert sorted(len(r.json()["DesMobile"].split(",")) for r in sim.requests) == [1, 200, 200]
    assert len(result.message_ids) == 3


def test_max_phones_is_configurable(make_gateway, sim):
    gw = make_gateway(max_phones=50)
    assert gw.send(Message(to=_phones(120), text="hi"), provider="guodu").ok
    assert sorted(len(r.json()["DesMobile"].split(",")) for r in sim.requests) == [20, 50, 50]


def test_more_phones_than_the_simulator_takes_is_refused_06(make_gateway, sim):
    gw = make_gateway(max_phones=201)
    result = gw.send(Message(to=_phones(201), text="hi"), provider="guodu")
    assert not result.accepted and not result.unknown
    assert {r.reason.code for r in result.rejected} == {"06"}


@pytest.mark.parametrize("values,field", [({"max_phones": 0}, "max_phones"), ({"max_phones": 501}, "max_phones"),
                                          ({"append_id": "12ab"}, "append_id"),
                                          ({"push_allow_ips": ["not-an-ip"]}, "push_allow_ips")])
def test_bad_config_values(sim, values, field):
    with pytest.raises(ConfigError) as err:  # when the Gateway is built, not at the first send
        Gateway({"providers": {"guodu": {**sim.demo_config(), **values}}}, environ={})
    assert "guodu" in str(err.value) and err.value.field == field and field in str(err.value)
    assert not sim.requests


def test_config_defaults():
    gw = Gateway({"providers": {"guodu": {"oper_id": "a", "oper_pass": "b"}}}, environ={})
    _, cfg = gw.provider("guodu")
    assert cfg.base_url == "http://qxtsms.guodulink.net"
    assert cfg.max_phones == 200 and cfg.append_id == "" and cfg.push_allow_ips == []
    assert "oper_pass" not in repr(cfg) and "push_path_secret" not in repr(cfg)


@pytest.mark.parametrize("length,parts", [(70, 1), (71, 2), (134, 2), (135, 3)])
def test_segments_in_send_result(gw, length, parts):
    result = gw.send(Message(to=PHONES, text="短" * length), provider="guodu")
    assert result.ok and result.segments == parts
    assert result.to_json_dict()["segments"] == parts


# -- answers ----------------------------------------------------------------------------------

@pytest.mark.parametrize("code", ["00", "01", "03"])
def test_accepted_codes(gw, sim, code):
    sim.next_codes = [code]
    result = gw.send(Message(to=PHONES, text="hi"), provider="guodu")
    assert result.ok and result.accepted == PHONES
    assert len(result.message_ids) == 1 and result.message_ids[0].isdigit()


@pytest.mark.parametrize("code", ["02", "04", "05", "06", "07", "08", "09", "10"])
def test_refusal_codes_reject_with_code_and_meaning(gw, sim, code):
    sim.next_codes = [code]
    result = gw.send(Message(to=PHONES, text="hi"), provider="guodu")
    assert not result.ok and not result.accepted and not result.unknown
    assert [r.phone for r in result.rejected] == PHONES
    for r in result.rejected:
        assert r.reason.code == code and r.reason.not_sent
        assert dialect.RESULT_CODES[code][0] in r.reason.message
    assert result.to_json_dict()["rejected"][0]["code"] == code


@pytest.mark.parametrize("code", ["-1", "11"])
def test_ambiguous_codes_leave_recipients_unknown(gw, sim, code):
    sim.next_codes = [code]
    result = gw.send(Message(to=PHONES, text="hi"), provider="guodu")
    assert result.unknown == PHONES and not result.accepted and not result.rejected
    reasons = {r.reason.code for r in result.recipients}
    assert reasons == {code}
    if code == "-1":
        assert "提交异常" in result.recipients[0].reason.message
    assert len(sim.requests) == 1, "never resent"


def test_numeric_result_code_and_missing_msgid(gw, sim):
    def answer(body):
        sim.handle = lambda request: __import__("smsgate").HttpResponse.of_json(body)
    answer({"ResultCode": 0, "MsgId": 12345})
    assert gw.send(Message(to=PHONES, text="hi"), provider="guodu").message_ids == ["12345"]
    answer({"ResultCode": "03"})
    result = gw.send(Message(to=PHONES[:1], text="hi"), provider="guodu")
    assert result.ok and result.message_ids == []
    answer({"Result": "00"})
    result = gw.send(Message(to=PHONES[:1], text="hi"), provider="guodu")
    assert result.unknown == PHONES[:1]


def test_each_real_refusal_of_the_simulator(make_gateway, sim):
    assert make_gateway(oper_id="nobody").send(Message(to=PHONES, text="hi"), provider="guodu").rejected[0].reason.code == "04"
    assert make_gateway(oper_pass="wrong").send(Message(to=PHONES, text="hi"), provider="guodu").rejected[0].reason.code == "05"
    assert make_gateway(append_id="1" * 13).send(Message(to=PHONES, text="hi"), provider="guodu").rejected[0].reason.code == "10"
    sim.refuse_ip = True
    assert make_gateway().send(Message(to=PHONES, text="hi"), provider="guodu").rejected[0].reason.code == "02"


def _post(sim, fields):
    body = json.dumps(fields, ensure_ascii=False).encode("utf-8")
    req = urllib.request.Request(sim.url + "/HttpQuickProcess/submitJson", data=body, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read().decode("utf-8"))


@pytest.mark.parametrize("change,code", [
    ({"SendTime": "2024-09-18 09:00:00"}, "07"),
    ({"Content": ""}, "08"),
    ({"DesMobile": ""}, "09"),
    ({"AppendID": "x1"}, "10"),
    ({"Content": "您好"}, "06"),  # not URL-encoded
    ({"Content": "100%"}, "06"),  # broken escape
    ({"DesMobile": "13800138000,12345"}, "06"),
    ({"OperID": "x"}, "04"),
    ({"OperPass": "x"}, "05"),
])
def test_simulator_checks_like_the_document(sim, change, code):
    fields = {"OperID": "demo", "OperPass": "demo-pass", "SendTime": "", "AppendID": "",
              "DesMobile": "13800138000", "Content": "hi", **change}
    assert _post(sim, fields) == {"ResultCode": code}


def test_simulator_accepts_a_single_phone_with_03(sim):
    fields = {"OperID": "demo", "OperPass": "demo-pass", "SendTime": "20240918093000", "AppendID": "",
              "DesMobile": "13800138000", "Content": "hi"}
    answer = _post(sim, fields)
    assert answer["ResultCode"] == "03" and answer["MsgId"]


def test_personalised_send_is_one_request_a_phone(gw, sim):
    msg = Message.personalised({"13800138000": "您的验证码 1234", "13900139000": "您的验证码 5678"})
    result = gw.send(msg, provider="guodu")
    assert result.ok and len(result.message_ids) == 2
    sent = sorted((r.json()["DesMobile"], dialect.java_urldecode(r.json()["Content"])) for r in sim.requests)
    assert sent == [("13800138000", "您的验证码 1234"), ("13900139000", "您的验证码 5678")]


def test_accepted_recipient_outcomes(gw, sim):
    result = gw.send(Message(to=PHONES, text="hi"), provider="guodu")
    assert all(r.outcome is Outcome.ACCEPTED and r.message_id == sim.messages[0].msg_id for r in result.recipients)


# -- the "done when", through the CLI ------------------------------------------------

def _cli(*args):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGATE_")}
    return subprocess.run([sys.executable, "-m", "smsgate.cli", *args], capture_output=True, text=True,
                          env=env, timeout=120)


def test_done_when_through_the_cli(sim, tmp_path):
    toml = "[providers.guodu]\n" + "".join(f"{k} = {json.dumps(v, ensure_ascii=False)}\n"
                                           for k, v in sim.demo_config().items())
    path = tmp_path / "smsgate.toml"
    path.write_text(toml, encoding="utf-8")
    proc = _cli("send", "--config", str(path), "--provider", "guodu", "--to", "13800138000,13900139000",
                "--content", DONE_WHEN_TEXT, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["ok"] is True
    assert out["message_ids"] == [sim.messages[0].msg_id]
    assert out["accepted"] == PHONES and out["segments"] == 1
    assert sim.requests[0].json()["Content"] == "%E6%82%A8%E5%A5%BD+A%26B%2BC+100%25"
    assert "demo-pass" not in proc.stderr and "13800138000" not in proc.stderr
