"""The document's two length rules, checked before sending and by the simulator: the sender number
(spnumber + account identity + AppendID) at most 20 digits (note 1), and at most 500 characters of
Content as the vendor's Java counts them (UTF-16 units: an emoji counts 2)."""

from __future__ import annotations

import json
import urllib.request

import pytest

from smsgate import ConfigError, Message, ValidationError
from smsgate_guodu import dialect

PHONE = ["13800138000"]
EMOJI = "\U0001F600"  # one code point, two UTF-16 units


def test_java_length_counts_utf16_units():
    assert dialect.java_length("字" * 3) == 3
    assert dialect.java_length(EMOJI) == 2
    assert dialect.java_length("a" + EMOJI + "b") == 4


def test_append_id_that_overflows_the_sub_port_is_refused_before_sending(make_gateway, sim):
    gw = make_gateway(sub_port=sim.sp_number)  # "10690013": 8 digits, 12 left
    with pytest.raises(ValidationError) as err:
        gw.send(Message(to=PHONE, text="hi", extend_code="1" * 13), provider="guodu")
    assert err.value.field == "extend_code"
    assert "13 digits" in str(err.value) and "10690013" in str(err.value) and "12 more" in str(err.value)
    assert not sim.requests


def test_append_id_that_fits_exactly_is_sent_and_accepted(make_gateway, sim):
    gw = make_gateway(sub_port=sim.sp_number)
    result = gw.send(Message(to=PHONE, text="hi", extend_code="1" * 12), provider="guodu")
    assert result.ok and sim.messages[0].append_id == "1" * 12


def test_without_a_sub_port_only_twenty_digits_are_checked(make_gateway, sim):
    gw = make_gateway()
    with pytest.raises(ValidationError) as err:
        gw.send(Message(to=PHONE, text="hi", extend_code="1" * 21), provider="guodu")
    assert err.value.field == "extend_code" and not sim.requests
    # 13 digits pass the local check; the platform, knowing its spnumber, answers 10
    result = gw.send(Message(to=PHONE, text="hi", extend_code="1" * 13), provider="guodu")
    assert result.rejected[0].reason.code == "10"


def test_configured_append_id_and_sub_port_are_checked_together_at_load(make_gateway):
    with pytest.raises(ConfigError) as err:
        make_gateway(sub_port="10690013", append_id="1" * 13).send(Message(to=PHONE, text="hi"), provider="guodu")
    assert "sub_port" in str(err.value)
    with pytest.raises(ConfigError):
        make_gateway(sub_port="1069x").send(Message(to=PHONE, text="hi"), provider="guodu")


def test_500_utf16_units_pass_and_an_emoji_that_makes_501_is_refused(gw, sim):
    fits = "字" * 498 + EMOJI  # 499 code points, 500 units
    assert gw.send(Message(to=PHONE, text=fits), provider="guodu").ok
    assert sim.messages[0].content == fits
    over = "字" * 499 + EMOJI  # 500 code points (the core's count passes it), 501 units
    with pytest.raises(ValidationError) as err:
        gw.send(Message(to=PHONE, text=over), provider="guodu")
    assert err.value.field == "text" and "501" in str(err.value) and "UTF-16" in str(err.value)
    assert len(sim.requests) == 1


def test_sign_name_and_emoji_count_together(gw, sim):
    with pytest.raises(ValidationError) as err:
        gw.send(Message(to=PHONE, text="字" * 495 + EMOJI, sign_name="国都"), provider="guodu")  # 4 + 495 + 2
    assert err.value.field == "text" and "【国都】" in str(err.value)
    assert not sim.requests


def test_simulator_counts_as_java_does(sim):
    def post(text):
        fields = {"OperID": "demo", "OperPass": "demo-pass", "SendTime": "", "AppendID": "",
                  "DesMobile": PHONE[0], "Content": dialect.java_urlencode(text)}
        req = urllib.request.Request(sim.url + "/HttpQuickProcess/submitJson", method="POST",
                                     data=json.dumps(fields).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())["ResultCode"]

    assert post("字" * 498 + EMOJI) == "03"
    assert post("字" * 499 + EMOJI) == "06"
