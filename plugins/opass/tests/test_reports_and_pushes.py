"""Report pull, balance and the two pushes."""

from __future__ import annotations

import json

import pytest

from smsgate import (AuthError, CallbackRequest, DeliveryReport, InboundMessage, Message, Operation, PullQuery,
                     RateLimited, Status, ValidationError)
from smsgate_opass import plugin


TEMPLATE = "574277763210051584"
NOW = 1726631416.0


def send(gw, phones, **kwargs):
    result = gw.send(Message(to=phones, template_id=TEMPLATE, params=["a", "b"], **kwargs))
    assert result.ok, result.to_json_dict()
    return result


def test_capabilities_declare_the_documented_limits():
    caps = plugin.CAPABILITIES
    assert caps.max_recipients == {Operation.SEND: 1000, Operation.SEND_BATCH: 1000}
    assert caps.spacing(Operation.PULL_REPORTS) == 20.0  # three query calls a minute
    assert caps.spacing(Operation.BALANCE) == 20.0  # the same three, and "默认限制15秒一次"
    assert {b.name for b in caps.budgets_for(Operation.BALANCE)} == {"query", "balance"}
    assert caps.poll_interval == 60.0  # "建议查询频次1分钟"
    assert caps.callbacks == {"report", "inbound"}
    assert Operation.PULL_INBOUND not in caps.operations  # inbound only by push


def test_each_report_is_returned_once(sim, make_gateway):
    result = send(make_gateway(sim), ["13800138000", "13900139000"], biz_id="order-1")
    assert sim.deliver_all() == 2
    reports = make_gateway(sim).pull_reports("opass", PullQuery(message_ids=result.message_ids))
    assert {(r.phone, r.status, r.message_id, r.biz_id) for r in reports} == {
        ("13800138000", Status.DELIVERED, result.message_ids[0], "order-1"),
        ("13900139000", Status.DELIVERED, result.message_ids[0], "order-1")}
    assert all(r.raw_status == "DELIVRD" and len(r.reported_at) == 10 for r in reports)
    assert make_gateway(sim).pull_reports("opass", PullQuery(message_ids=result.message_ids)) == []
    fields = sim.verified[-1]["fields"]
    assert fields == {"msgId": result.message_ids[0]}


def test_at_most_600_reports_a_call(sim, make_gateway):
    send(make_gateway(sim), [f"138{i:08d}" for i in range(700)])
    assert sim.deliver_all() == 700
    assert len(make_gateway(sim).pull_reports("opass")) == 600
    assert len(make_gateway(sim).pull_reports("opass")) == 100


def test_pull_filters_by_msg_id_and_bid(sim, make_gateway):
    first = send(make_gateway(sim), ["13800138000"], biz_id="A")
    second = send(make_gateway(sim), ["13900139000"], biz_id="B")
    sim.deliver_all()
    got = make_gateway(sim).pull_reports("opass", PullQuery(message_ids=second.message_ids))
    assert [r.phone for r in got] == ["13900139000"]
    got = make_gateway(sim).pull_reports("opass", PullQuery(biz_id="A"))
    assert [r.message_id for r in got] == first.message_ids


def test_more_than_600_msg_ids_are_refused_before_sending(sim, make_gateway):
    with pytest.raises(ValidationError) as err:  # bad input to a query names its field
        make_gateway(sim).pull_reports("opass", PullQuery(message_ids=[str(i) for i in range(601)]))
    assert err.value.field == "message_ids" and "600" in str(err.value)
    assert not sim.requests


def test_query_rate_limit_is_6000(sim, make_gateway):
    sim.clock = lambda: NOW  # one frozen instant on both sides: no dependence on the machine's speed
    for _ in range(3):
        make_gateway(sim, clock=lambda: NOW).pull_reports("opass")
    with pytest.raises(RateLimited) as err:
        make_gateway(sim, clock=lambda: NOW).pull_reports("opass")
    assert err.value.code == "6000" and err.value.request_id


@pytest.mark.parametrize("word,status", [
    ("DELIVRD", Status.DELIVERED), ("EXPIRED", Status.FAILED), ("DELETED", Status.FAILED),
    ("UNDELIV", Status.FAILED), ("REJECTD", Status.FAILED),
    # "除DELIVRD外，其他都是未送达": every other word, ACCEPTD and UNKNOWN included, is not delivered
    ("ACCEPTD", Status.FAILED), ("UNKNOWN", Status.FAILED), ("MK:0001", Status.FAILED), ("", Status.UNKNOWN),
])
def test_status_words(sim, word, status, make_gateway):
    send(make_gateway(sim), ["13800138000"])
    sim.deliver_all(status=word)
    [report] = make_gateway(sim).pull_reports("opass")
    assert report.status is status
    assert report.raw_status == (word or None)
    assert report.description == (None if status is Status.DELIVERED else (word or None))


def test_balance(sim, make_gateway):
    sim.clock = lambda: NOW
    balance = make_gateway(sim, clock=lambda: NOW).balance("opass")
    assert balance.amount == 9784 and balance.unit == "messages"
    assert balance.raw["items"] == {"行业短信": 9784, "会员短信": 10007, "推广短信": 6506}
    assert sim.requests[-1].path == "/sms/residueValue/qry"
    with pytest.raises(RateLimited):  # "默认限制15秒一次"
        make_gateway(sim, clock=lambda: NOW).balance("opass")


# -- pushes -------------------------------------------------------------------------------------

def test_report_push_is_parsed(sim, gateway, receiver):
    result = send(gateway, ["13800138000", "13900139000"], biz_id="order-7")
    sim.deliver_all(statuses={"13900139000": "UNDELIV"})
    answers = sim.push_pending(receiver.url)
    assert [a.status for a in answers] == [200]
    assert json.loads(answers[0].body) == {"code": 200, "message": "OK"}
    assert all(isinstance(e, DeliveryReport) for e in receiver.events)
    assert {(e.phone, e.status, e.message_id, e.biz_id) for e in receiver.events} == {
        ("13800138000", Status.DELIVERED, result.message_ids[0], "order-7"),
        ("13900139000", Status.FAILED, result.message_ids[0], "order-7")}
    assert sim.push_pending(receiver.url) == []  # pushed once


def test_inbound_push_is_parsed(sim, receiver):
    answer = sim.push_inbound(receiver.url, "13800138000", "退订 \"T\" \\ 好")
    assert answer.status == 200
    [event] = receiver.events
    assert isinstance(event, InboundMessage)
    assert (event.phone, event.content, event.service_code) == ("13800138000", "退订 \"T\" \\ 好", "106900001234")
    assert len(event.received_at) == 10


def test_document_push_samples_parse(gateway):
    report = {"apiKey": gateway.provider("opass")[1].api_key, "data": [{
        "msgId": "577951956854276096", "tel": "18551067101", "arriveResult": "UNDELIV",
        "arriveTime": "2104091735", "bid": "xxxx"}]}
    inbound = {"apiKey": report["apiKey"], "data": [{
        "srcId": "接入号", "tel": "18551067101", "content": "上行内容", "arriveTime": "2104091735"}]}
    for body in (report, inbound):
        req = CallbackRequest(body=json.dumps(body, ensure_ascii=False).encode("utf-8"))
        [event] = gateway.handle_callback("opass", req).events
        assert event.phone == "18551067101"
    assert event.content == "上行内容" and event.received_at == "2104091735"


def test_push_with_another_api_key_is_refused(sim, gateway, receiver):
    send(gateway, ["13800138000"])
    sim.deliver_all()
    sim.api_key = "0" * 32
    answers = sim.push_pending(receiver.url)
    assert answers[0].status == 403 and not receiver.events
    assert isinstance(receiver.errors[0], AuthError)


@pytest.mark.parametrize("body", [b"[]", b'{"data":[]}', b'{"apiKey":null,"data":[]}'])
def test_unverifiable_push_is_refused(gateway, body):
    with pytest.raises(AuthError):
        gateway.handle_callback("opass", CallbackRequest(body=body))


def test_a_body_that_is_not_json_is_malformed_not_forged(gateway):
    with pytest.raises(ValidationError) as err:
        gateway.handle_callback("opass", CallbackRequest(body=b"not json"))
    assert err.value.field == "body"


@pytest.mark.parametrize("data", ['"x"', "[1]", '[{"tel":"13800138000"}]', "null"])
def test_malformed_push_is_a_validation_error(gateway, data):
    key = gateway.provider("opass")[1].api_key
    body = ('{"apiKey":"%s","data":%s}' % (key, data)).encode()
    with pytest.raises(ValidationError) as err:
        gateway.handle_callback("opass", CallbackRequest(body=body))
    assert err.value.field == "body"


def test_pushes_are_refused_until_a_protection_is_configured(sim, make_gateway):
    gw = make_gateway(sim, push_auth="")  # no allow-list, no path secret: the default
    body = json.dumps({"apiKey": sim.api_key, "data": []}).encode()
    with pytest.raises(AuthError):
        gw.handle_callback("opass", CallbackRequest(body=body, remote_addr="127.0.0.1"))
    allowed = make_gateway(sim, push_auth="", push_allow_ips=["127.0.0.1"])
    assert allowed.handle_callback("opass", CallbackRequest(body=body, remote_addr="127.0.0.1")).events == ()
    with pytest.raises(AuthError):
        allowed.handle_callback("opass", CallbackRequest(body=body, remote_addr="203.0.113.9"))


def test_api_key_is_kept_out_of_the_config_repr(sim, gateway):
    _, config = gateway.provider("opass")
    assert sim.api_key not in repr(config) and "api_key" not in repr(config)
