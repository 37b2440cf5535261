"""Sends through Gateway over real HTTP to the simulator, including the issue's "done when"."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from smsgate import ConfigError, Message, Operation, ValidationError
from smsgate_cmas.plugin import CAPABILITIES


def test_done_when_free_text(sim, make_gateway):
    gw = make_gateway(sim)
    result = gw.send(Message(to=["13800138000"], text="验证码 1234"), provider="cmas")
    assert result.ok, result.to_json_dict()
    answer = sim.answers[-1].json()
    assert answer["rspcod"] == "success" and answer["success"] is True
    assert answer["mgsGroup"] in result.to_json_dict()["message_ids"]
    assert sim.accepted == [{"mgsGroup": answer["mgsGroup"], "mobile": "13800138000", "content": "验证码 1234",
                             "sign": "d8Kx3Qa9", "addSerial": ""}]


def test_done_when_template(sim, make_gateway):
    gw = make_gateway(sim)
    result = gw.send(Message(to=["13800138000"], template_id="SMS_CODE", params=["1234"]), provider="cmas")
    assert result.ok, result.to_json_dict()
    assert sim.requests[-1].path == "/sms/tmpsubmit"
    group = sim.answers[-1].json()["mgsGroup"]
    assert group and result.to_json_dict()["message_ids"] == [group] == [sim.accepted[0]["mgsGroup"]]
    assert sim.accepted[0]["templateId"] == "SMS_CODE" and sim.accepted[0]["params"] == ["1234"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMSGATE_")}
    return subprocess.run([sys.executable, "-m", "smsgate.cli", *args], capture_output=True, text=True,
                          env=env, timeout=60)


@pytest.mark.parametrize("content", [["--content", "验证码 1234"],
                                     ["--template", "SMS_CODE", "--params", '["1234"]']])
def test_done_when_through_the_cli(sim, tmp_path, content):
    cfg = sim.demo_config()
    toml = "[providers.cmas]\n" + "".join(f"{k} = {json.dumps(v, ensure_ascii=False)}\n" for k, v in cfg.items())
    path = tmp_path / "smsgate.toml"
    path.write_text(toml, encoding="utf-8")
    proc = _cli("send", "--config", str(path), "--provider", "cmas", "--to", "13800138000", *content, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["ok"] is True
    assert out["message_ids"] == [sim.answers[-1].json()["mgsGroup"]]


def test_cli_reports_pull(sim, tmp_path):
    toml = "[providers.cmas]\n" + "".join(f"{k} = {json.dumps(v, ensure_ascii=False)}\n"
                                          for k, v in sim.demo_config().items())
    path = tmp_path / "smsgate.toml"
    path.write_text(toml, encoding="utf-8")
    sim.report("13800138000", "G1", status="UNDELIV", error_code="DB:0140")
    proc = _cli("reports", "--config", str(path), "--provider", "cmas", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [(r["message_id"], r["phone"], r["status"], r["description"]) for r in rows] == [
        ("G1", "13800138000", "failed", "DB:0140")]


def test_chinese_content_arrives_intact(sim, make_gateway):
    text = "【测试】您好，您的订单 #A-17 已发货：顺丰 SF1234567890。回复 TD 退订 😀"
    result = make_gateway(sim).send(Message(to=["+86 139-0013-9000"], text=text))
    assert result.ok
    assert sim.accepted[0]["content"] == text and sim.accepted[0]["mobile"] == "13900139000"


def test_many_recipients_one_group_per_request(sim, make_gateway):
    phones = [f"138{i:08d}" for i in range(5001)]
    result = make_gateway(sim).send(Message(to=phones, text="通知"))
    assert result.ok
    assert [r.path for r in sim.requests] == ["/sms/submit", "/sms/submit"]
    sizes = sorted(len(json.loads(_decode(r.body))["mobiles"].split(",")) for r in sim.requests)
    assert sizes == [1, 5000]
    assert len(result.message_ids) == 2


def _decode(body: bytes) -> str:
    import base64

    return base64.b64decode(body).decode("utf-8")


def test_many_to_many_round_trip_and_fewer_than_1000_a_request(sim, make_gateway):
    personal = {f"139{i:08d}": f"第{i}号，您好" for i in range(1000)}
    result = make_gateway(sim).send(Message.personalised(personal))
    assert result.ok and len(result.accepted) == 1000
    bodies = [json.loads(_decode(r.body)) for r in sim.requests]
    assert sorted(len(json.loads(b["content"])) for b in bodies) == [1, 999]
    assert all(b["mobiles"] == "" for b in bodies)
    got = {a["mobile"]: a["content"] for a in sim.accepted}
    assert got == personal
    assert CAPABILITIES.max_recipients[Operation.SEND_BATCH] == 999
    assert CAPABILITIES.max_recipients[Operation.SEND] == 5000


def test_personalised_template_is_refused_before_sending(sim, make_gateway):
    with pytest.raises(ValidationError) as err:
        make_gateway(sim).send(Message.personalised({"13800138000": ["1"]}, template_id="T1"))
    assert err.value.field == "personal"
    assert not sim.requests


def test_named_params_and_scheduling_are_refused(sim, make_gateway):
    import datetime as dt

    gw = make_gateway(sim)
    with pytest.raises(ValidationError) as err:
        gw.send(Message(to=["13800138000"], template_id="T1", params={"code": "1"}))
    assert err.value.field == "params"
    with pytest.raises(ValidationError) as err:
        gw.send(Message(to=["13800138000"], text="x", send_at=dt.datetime(2030, 1, 1)))
    assert err.value.field == "send_at"
    with pytest.raises(ValidationError) as err:
        gw.send(Message(to=["13800138000"], text="x", extend_code="12a"))
    assert err.value.field == "extend_code"
    assert not sim.requests


def test_config_needs_base_url_and_checks_add_serial(sim):
    from smsgate import Gateway

    values = {k: v for k, v in sim.demo_config().items() if k != "base_url"}
    with pytest.raises(ConfigError) as err:
        Gateway({"providers": {"cmas": values}}, environ={}).provider("cmas")
    assert "base_url" in str(err.value) and err.value.field == "base_url"
    with pytest.raises(ConfigError) as err:
        Gateway({"providers": {"cmas": {**sim.demo_config(), "add_serial": "12x"}}}, environ={}).send(
            Message(to=["13800138000"], text="x"))
    assert "add_serial" in str(err.value) and err.value.field == "add_serial"
    assert not sim.requests
    _, config = Gateway({"providers": {"cmas": sim.demo_config()}}, environ={}).provider("cmas")
    assert config.verify_tls is True and config.add_serial == ""
    assert config.secret_key not in repr(config)
