"""Sends through the simulator over real HTTP on 127.0.0.1: routing, bodies, params, planTime."""

from __future__ import annotations

import datetime as dt

import pytest

from smsgate import CHINA_TZ, ConfigError, Gateway, Message, ValidationError
from smsgate.testing import FIXED_NONCE, FIXED_TIME
from smsgate_juse import dialect
from smsgate_juse.plugin import PROD_URL

SECRET = "r6duQGOuwDw4QeF/TJi6tw=="


def nonces():
    n = iter(range(1, 10_000))
    return lambda: f"{next(n):032x}"


def test_done_when_message_is_accepted(sim, make_gateway):
    """`smsgate send --provider juse --to 15837390237 --template MSG_2024090901
    --params '{"param1":"888999"}' --sign-name 登录验证` against the simulator."""
    gw = make_gateway()
    result = gw.send(Message(to=["15837390237"], template_id="MSG_2024090901", params={"param1": "888999"},
                             sign_name="登录验证"), provider="juse")
    assert result.ok and result.to_json_dict()["ok"] is True
    [record] = sim.records
    assert result.message_ids == [str(record.record_id)]
    assert result.request_ids == ["juse-1"]
    assert (record.phone, record.template_id, record.sign_name, record.params) == (
        "15837390237", "MSG_2024090901", "登录验证", {"param1": "888999"})
    [request] = sim.requests
    assert request.path == "/api/spi/sendSms"


def test_fixed_clock_over_the_wire_carries_the_document_signature(sim, make_gateway):
    sim.clock = lambda: FIXED_TIME
    gw = make_gateway(clock=lambda: FIXED_TIME, nonce=lambda: FIXED_NONCE)
    assert gw.send(sim.demo_message()).ok
    [request] = sim.requests
    assert request.header("X-message-Sign") == "1722092a360cc6c2478c75f0fbd94192"
    assert request.json()["phone"] == "X4jPc0rqNtopIgUuoBe5Dw=="


def test_several_recipients_go_to_one_task_planned_now(sim, make_gateway):
    sim.clock = lambda: FIXED_TIME
    gw = make_gateway(clock=lambda: FIXED_TIME)
    result = gw.send(Message(to=["15837390237", "+86 185 6629 2142"], template_id="MSG_2024090901",
                             params={"param2": "b", "param1": "a"}, sign_name="登录验证"))
    assert result.ok and result.accepted == ["15837390237", "18566292142"]
    [request] = sim.requests
    assert request.path == "/api/spi/sendSmsTask"
    body = request.json()
    assert list(body) == ["appId", "name", "templateId", "signName", "planTime", "phones", "params"]
    assert body["planTime"] == "2024-09-18 11:50:16"
    assert body["name"] == "smsgate MSG_2024090901 2024-09-18 11:50:16"
    assert dialect.decrypt_phone(SECRET, body["phones"]) == "15837390237,18566292142"
    assert list(body["params"]) == ["param2", "param1"]  # a task keeps the order given
    [task] = sim.tasks.values()
    assert result.message_ids == [str(task.task_id)]
    assert [r.phone for r in sim.records] == ["15837390237", "18566292142"]


def test_single_send_sorts_params_like_the_vendors_treemap(sim, make_gateway):
    make_gateway().send(Message(to=["15837390237"], template_id="T", params={"b": "2", "a": "1"}, sign_name="S"))
    assert list(sim.requests[0].json()["params"]) == ["a", "b"]


def test_send_time_makes_even_one_recipient_a_task(sim, make_gateway):
    at = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    result = make_gateway().send(Message(to=["15837390237"], template_id="T", params={}, sign_name="S", send_at=at,
                                         biz_id="spring-promo"))
    assert result.ok
    body = sim.requests[0].json()
    assert sim.requests[0].path == "/api/spi/sendSmsTask"
    assert body["planTime"] == "2030-01-02 11:04:05"  # China time
    assert body["name"] == "spring-promo"
    assert body["params"] == {}


def test_naive_send_time_is_china_time(sim, make_gateway):
    make_gateway().send(Message(to=["15837390237"], template_id="T", sign_name="S",
                                send_at=dt.datetime(2030, 1, 2, 3, 4, 5)))
    assert sim.requests[0].json()["planTime"] == "2030-01-02 03:04:05"


def test_more_than_1000_recipients_are_cut_into_tasks_sharing_one_plan_time(sim, make_gateway):
    sim.clock = lambda: FIXED_TIME
    phones = [f"139{i:08d}" for i in range(1001)]
    gw = make_gateway(clock=lambda: FIXED_TIME, max_concurrency=1)
    result = gw.send(Message(to=phones, template_id="T", params=["x"], sign_name="S"))
    assert result.ok and len(result.accepted) == 1001
    requests = sorted(sim.requests, key=lambda r: len(r.body), reverse=True)
    assert [r.path for r in requests] == ["/api/spi/sendSmsTask"] * 2  # the last single phone too
    bodies = [r.json() for r in requests]
    assert [len(dialect.decrypt_phone(SECRET, b["phones"]).split(",")) for b in bodies] == [1000, 1]
    assert {b["planTime"] for b in bodies} == {"2024-09-18 11:50:16"}
    assert bodies[1]["name"] == bodies[0]["name"] + " #2"
    assert len(result.message_ids) == 2


def test_positional_params_map_to_param1_to_n(sim, make_gateway):
    result = make_gateway().send(Message(to=["15837390237"], template_id="T", params=["888999", 5, True],
                                         sign_name="S"))
    assert result.ok
    assert sim.requests[0].json()["params"] == {"param1": "888999", "param2": "5", "param3": "true"}


def test_ten_positional_params_are_refused_before_sending(sim, make_gateway):
    with pytest.raises(ValidationError) as err:
        make_gateway().send(Message(to=["15837390237"], template_id="T", params=list("abcdefghij"), sign_name="S"))
    assert err.value.field == "params" and "param10" in str(err.value)
    assert not sim.requests


@pytest.mark.parametrize("message, field", [
    (Message(to=["15837390237"], template_id="T", params={"a": "1"}), "sign_name"),
    (Message(to=["15837390237"], template_id="T", params={"a": "1"}, sign_name="  "), "sign_name"),
    (Message(to=["15837390237"], template_id="T", params={"a": "1"}, sign_name="S", extend_code="01"),
     "extend_code"),
    (Message(to=["15837390237"], template_id="T", params={"a": {"nested": 1}}, sign_name="S"), "params"),
    (Message(to=["15837390237"], template_id="T", params={"a": None}, sign_name="S"), "params"),
    (Message(to=["15837390237"], template_id="T", params={"": "1"}, sign_name="S"), "params"),
    (Message(to=["15837390237"], text="hello", sign_name="S"), "text"),
    (Message.personalised({"15837390237": ["1"]}, template_id="T", sign_name="S"), "personal"),
])
def test_messages_juse_cannot_take_are_refused(sim, make_gateway, message, field):
    with pytest.raises(ValidationError) as err:
        make_gateway().send(message)
    assert err.value.field == field
    assert not sim.requests


def test_config_defaults_and_values():
    gw = Gateway({"providers": {"juse": {"app_id": "adrm", "app_secret": SECRET, "app_type": 3}}})
    _, cfg = gw.provider("juse")
    assert (cfg.base_url, cfg.app_key, cfg.app_type, cfg.ignore_path) == (PROD_URL, "message", "3", "/api")
    assert SECRET not in repr(cfg)


@pytest.mark.parametrize("values, field", [
    ({"app_secret": "not base64!"}, "app_secret"),
    ({"app_secret": "c2hvcnQ="}, "app_secret"),
    ({"app_secret": "a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s="}, "app_secret"),  # 32 bytes: not AES-128
    ({"app_type": "web"}, "app_type"),
])
def test_bad_config_values_are_refused(values, field):
    with pytest.raises(ConfigError) as err:  # when the Gateway is built, not at the first send
        Gateway({"providers": {"juse": {"app_id": "adrm", "app_secret": SECRET, **values}}})
    assert err.value.field == field and field in str(err.value)
    for value in values.values():
        assert str(value) not in str(err.value)  # a secret is never echoed


def test_now_china_is_used_for_plan_time(sim, make_gateway):
    when = dt.datetime(2025, 5, 5, 8, 0, 0, tzinfo=CHINA_TZ).timestamp()
    sim.clock = lambda: when
    make_gateway(clock=lambda: when).send(Message(to=["13800138000", "13900139000"], template_id="T", sign_name="S"))
    assert sim.requests[0].json()["planTime"] == "2025-05-05 08:00:00"
