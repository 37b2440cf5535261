"""Report and reply pulls (queues), and the two callbacks pushed over real HTTP into a Receiver."""

from __future__ import annotations

import json

import pytest

from smsgate import CallbackRequest, Message, PullQuery, Status, ValidationError
from smsgate.receiving import BackgroundServer, Receiver
from smsgate_tencent.simulator import DEMO_TEMPLATE


def test_report_pull_reads_the_queue_once(sim, gateway):
    result = gateway.send(Message(to=["13800138000", "13900139000"], template_id=DEMO_TEMPLATE, params=["1"],
                                  biz_id="order-17"))
    sim.deliver_all(statuses={"13900139000": "FAIL"})
    reports = gateway.pull_reports("tencent", PullQuery())
    by_phone = {r.phone: r for r in reports}
    assert set(by_phone) == {"13800138000", "13900139000"}
    ok, failed = by_phone["13800138000"], by_phone["13900139000"]
    assert ok.status is Status.DELIVERED and ok.raw_status == "SUCCESS" and ok.description is None
    assert failed.status is Status.FAILED and failed.description == "UNDELIV"
    assert {r.message_id for r in reports} == set(result.message_ids)
    assert ok.biz_id == "order-17" and ok.reported_at.isdigit()
    assert json.loads(sim.requests[-1].body) == {"Limit": 100, "SmsSdkAppId": "1400006666"}
    assert gateway.pull_reports("tencent", PullQuery()) == []  # "仅能拉取一次"


def test_report_pull_returns_at_most_100_a_call(sim, make_gateway):
    sim.phone_limits = ()
    gw = make_gateway(sim)
    gw.send(Message(to=[f"138{i:08d}" for i in range(150)], template_id=DEMO_TEMPLATE, params=["1"]))
    assert sim.deliver_all() == 150
    assert len(gw.pull_reports("tencent", PullQuery())) == 100
    assert len(gw.pull_reports("tencent", PullQuery())) == 50


def test_reply_pull_gives_inbound_messages(sim, gateway):
    sim.add_reply("13800138000", "退订", extend="11")
    [msg] = gateway.pull_inbound("tencent")
    assert (msg.phone, msg.content, msg.service_code) == ("13800138000", "退订", "11")
    assert msg.raw["SignName"] == "腾讯云"
    assert gateway.pull_inbound("tencent") == []


@pytest.fixture
def receiver(tmp_path, sim, gateway):
    rec = Receiver(gateway, spool=str(tmp_path / "spool.sqlite3"), plugin_hooks=False, poll_interval=0.05)
    events = []
    rec.add_handler(lambda items: events.extend(i.event for i in items), name="test", batch=True)
    with BackgroundServer(rec.wsgi_app) as server:
        yield rec, f"{server.url}{rec.prefix}/tencent", events
    rec.close()


def test_status_callback_into_a_receiver(sim, gateway, receiver):
    rec, url, events = receiver
    gateway.send(sim.demo_message())
    sim.deliver_all(statuses={"13900139000": "FAIL"})
    [answer] = sim.push_pending(url)
    assert answer.status == 200 and json.loads(answer.body) == {"result": 0, "errmsg": "OK"}
    rec.drain()
    statuses = {e.phone: e.status for e in events}
    assert statuses == {"13800138000": Status.DELIVERED, "13900139000": Status.FAILED}
    assert {e.message_id for e in events} == {s.serial for s in sim.sent}


def test_reply_callback_into_a_receiver(sim, receiver):
    rec, url, events = receiver
    sim.add_reply("13800138000", "好的", extend="7")
    [answer] = sim.push_reply(url)
    assert answer.status == 200 and json.loads(answer.body) == {"result": 0, "errmsg": "OK"}
    rec.drain()
    [msg] = events
    assert (msg.phone, msg.content, msg.service_code) == ("13800138000", "好的", "7")


def test_references_callback_examples_parse(gateway):
    status = [{"user_receive_time": "2015-10-17 08:03:04", "nationcode": "86", "mobile": "13800138000",
               "report_status": "SUCCESS", "errmsg": "DELIVRD", "description": "用户短信送达成功", "sid": "xxxxxxx"}]
    reply = {"extend": "", "mobile": "13800138000", "nationcode": "86", "sign": "xxxxxx", "text": "xxxxx",
             "time": 1457336869}
    [report] = gateway.handle_callback("tencent", CallbackRequest(body=json.dumps(status).encode())).events
    assert (report.message_id, report.phone, report.status, report.reported_at) == (
        "xxxxxxx", "13800138000", Status.DELIVERED, "2015-10-17 08:03:04")
    [inbound] = gateway.handle_callback("tencent", CallbackRequest(body=json.dumps(reply).encode())).events
    assert (inbound.phone, inbound.content, inbound.received_at, inbound.service_code) == (
        "13800138000", "xxxxx", "1457336869", None)


@pytest.mark.parametrize("body, words", [
    (b"not json", "not JSON"),
    (b'[{"mobile": "13800138000"}]', "[0].report_status: missing"),
    (b'{"mobile": "13800138000"}', "text: missing"),
    (b'"text"', "neither a status array nor a reply object"),
])
def test_malformed_pushes_name_what_is_wrong(gateway, body, words):
    with pytest.raises(ValidationError) as err:
        gateway.handle_callback("tencent", CallbackRequest(body=body))
    assert words in str(err.value)


def test_push_path_secret(sim, make_gateway):
    gw = make_gateway(sim, push_path_secret="Zk3Q9")
    body = json.dumps({"mobile": "13800138000", "text": "hi"}).encode()
    assert gw.handle_callback("tencent", CallbackRequest(path="/callbacks/Zk3Q9/tencent", body=body)).events
    from smsgate import AuthError

    with pytest.raises(AuthError):
        gw.handle_callback("tencent", CallbackRequest(path="/callbacks/tencent", body=body))
