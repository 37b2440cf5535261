"""QuerySendDetails (the report pull) and the SmsReport / SmsUp HTTP pushes, over HTTP."""

from __future__ import annotations

import datetime as dt
import json
from urllib.parse import parse_qsl, urlsplit

import pytest

from smsgate import (CallbackRequest, DeliveryReport, InboundMessage, Message, PullQuery, Status,
                     ValidationError)
from smsgate_aliyun.simulator import DEMO_TEMPLATE, SIGN_NAME

TWO = ["13800138000", "13900139000"]


def _sent(gw):
    result = gw.send(Message(to=TWO, template_id=DEMO_TEMPLATE, params={"code": "1"}, biz_id="order-7"))
    assert result.ok
    return result.message_ids[0]


def test_a_pull_looks_up_one_phone_and_bizid(sim, make_gateway):
    gw = make_gateway()
    biz_id = _sent(gw)
    (waiting,) = gw.pull_reports("aliyun", PullQuery(message_ids=[biz_id], phones=[TWO[0]]))
    assert (waiting.status, waiting.message_id, waiting.phone, waiting.raw_status) == \
        (Status.PENDING, biz_id, TWO[0], "1")
    assert sim.deliver_all(err_codes={TWO[1]: "MK:0001"}) == 2
    (ok,) = gw.pull_reports("aliyun", PullQuery(message_ids=[biz_id], phones=["+86 138 0013 8000"]))
    (failed,) = gw.pull_reports("aliyun", PullQuery(message_ids=[biz_id], phones=[TWO[1]]))
    assert (ok.status, ok.raw_status, ok.description, ok.biz_id) == (Status.DELIVERED, "DELIVERED", None, "order-7")
    assert (failed.status, failed.raw_status, failed.description) == (Status.FAILED, "MK:0001", "MK:0001")
    assert ok.reported_at and ok.raw["SendStatus"] == 3
    query = dict(parse_qsl(urlsplit(sim.requests_to("/")[-1].path).query))
    china_today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).strftime("%Y%m%d")
    assert query == {"PhoneNumber": TWO[1], "SendDate": china_today, "PageSize": "50", "CurrentPage": "1",
                     "BizId": biz_id}


def test_a_pull_without_a_bizid_returns_the_days_records_of_the_phone(sim, make_gateway):
    gw = make_gateway()
    _sent(gw)
    _sent(gw)
    reports = gw.pull_reports("aliyun", PullQuery(phones=[TWO[0]]))
    assert len(reports) == 2 and all(r.message_id is None and r.phone == TWO[0] for r in reports)


def test_since_picks_the_send_date(sim, make_gateway):
    gw = make_gateway()
    _sent(gw)
    yesterday = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)
    assert gw.pull_reports("aliyun", PullQuery(phones=[TWO[0]], since=yesterday)) == []
    query = dict(parse_qsl(urlsplit(sim.requests[-1].path).query))
    assert query["SendDate"] == yesterday.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y%m%d")


@pytest.mark.parametrize("query, field", [
    (PullQuery(message_ids=["1^0"]), "phones"),
    (PullQuery(phones=TWO), "phones"),
    (PullQuery(phones=["12345"]), "phones"),
    (PullQuery(message_ids=["1^0", "2^0"], phones=[TWO[0]]), "message_ids"),
])
def test_a_pull_the_api_cannot_answer_is_refused_before_sending(sim, make_gateway, query, field):
    with pytest.raises(ValidationError) as err:  # a query's bad input: the error names its field
        make_gateway().pull_reports("aliyun", query)
    assert err.value.field == field and field in str(err.value) and not sim.requests


# -- pushes ------------------------------------------------------------------------------------

def test_smsreport_pushes_reach_the_receiver_with_the_path_secret(sim, make_gateway, receiver_for):
    gw = make_gateway()
    biz_id = _sent(gw)
    sim.deliver_all(err_codes={TWO[1]: "IC:0015"})
    receiver = receiver_for(gw)
    (answer,) = sim.push_pending(receiver.push_url)
    assert answer.status == 200 and json.loads(answer.body) == {"code": 0, "msg": "接收成功"}
    by_phone = {e.phone: e for e in receiver.events}
    assert set(by_phone) == set(TWO) and all(isinstance(e, DeliveryReport) for e in receiver.events)
    assert by_phone[TWO[0]].status is Status.DELIVERED and by_phone[TWO[0]].message_id == biz_id
    assert (by_phone[TWO[1]].status, by_phone[TWO[1]].raw_status) == (Status.FAILED, "IC:0015")
    assert by_phone[TWO[1]].biz_id == "order-7" and by_phone[TWO[1]].reported_at
    assert sim.push_pending(receiver.push_url) == []  # each receipt is pushed once


def test_smsup_pushes_become_inbound_messages(sim, make_gateway, receiver_for):
    receiver = receiver_for(make_gateway())
    assert sim.push_inbound(receiver.push_url, "13800138000", "TD", dest_code="12").status == 200
    (msg,) = receiver.events
    assert isinstance(msg, InboundMessage)
    assert (msg.phone, msg.content, msg.service_code) == ("13800138000", "TD", "12") and msg.received_at


@pytest.mark.parametrize("secret", ["", "wrong-secret", "demo-push-secret"])
def test_a_push_without_the_configured_path_secret_is_refused(sim, make_gateway, receiver_for, secret):
    receiver = receiver_for(make_gateway())
    sim.push_path_secret = secret
    answer = sim.push_inbound(receiver.push_url, "13800138000", "TD")
    assert answer.status == 401 and not receiver.events


def test_without_any_protection_every_push_is_refused(sim, make_gateway, receiver_for):
    # Alibaba Cloud signs no push: with no path secret, allow-list or push_auth = "none", none is taken
    receiver = receiver_for(make_gateway(push_path_secret=""))
    sim.push_path_secret = ""
    assert sim.push_inbound(receiver.push_url, "13800138000", "TD").status == 401 and not receiver.events


def test_with_push_auth_none_every_push_is_accepted(sim, make_gateway, receiver_for):
    receiver = receiver_for(make_gateway(push_path_secret="", push_auth="none"))
    sim.push_path_secret = ""
    assert sim.push_inbound(receiver.push_url, "13800138000", "TD").status == 200 and len(receiver.events) == 1


MIXED = [
    {"phone_number": "13800138000", "send_time": "2017-01-01 00:00:00", "report_time": "2017-01-01 00:00:05",
     "success": True, "err_code": "DELIVERED", "err_msg": "用户接收成功", "sms_size": "1", "biz_id": "12345^0",
     "out_id": "67890"},
    {"phone_number": "13900139000", "content": "内容", "send_time": "2017-09-01 00:00:00", "dest_code": "1234",
     "sequence_id": 1234567890},
    {"phone_number": "13900139000", "content": "2", "send_time": "2017-09-01 00:00:01", "dest_code": "1234",
     "sequence_id": "1234567891", "sign_name": "签名"},
]


def test_the_documents_push_examples_parse(make_gateway):
    gw = make_gateway(push_path_secret="", push_auth="none")
    result = gw.handle_callback("aliyun", CallbackRequest(body=json.dumps(MIXED, ensure_ascii=False).encode()))
    report, up1, up2 = result.events
    assert (report.status, report.message_id, report.biz_id, report.raw_status) == \
        (Status.DELIVERED, "12345^0", "67890", "DELIVERED")
    assert (up1.content, up1.service_code, up2.content) == ("内容", "1234", "2")
    assert result.response.status == 200 and json.loads(result.response.body)["code"] == 0


@pytest.mark.parametrize("body", [
    b"not json", b'{"phone_number":"13800138000"}', b'[{"phone_number":"13800138000"}]',
    b'[{"phone_number":"13800138000","success":"true"}]', b'[{"content":"x"}]', b"[1]",
])
def test_a_malformed_push_is_a_validation_error(make_gateway, body):
    gw = make_gateway(push_path_secret="", push_auth="none")
    with pytest.raises(ValidationError):
        gw.handle_callback("aliyun", CallbackRequest(body=body))


def test_the_path_secret_must_be_a_whole_segment(make_gateway):
    from smsgate import AuthError

    gw = make_gateway(push_path_secret="s3cret")
    body = json.dumps(MIXED[:1]).encode()
    assert gw.handle_callback("aliyun", CallbackRequest(body=body, path="/callbacks/aliyun/s3cret")).events
    for path in ("/callbacks/aliyun", "/callbacks/aliyun/s3cret2", "/callbacks/aliyun/x", "/s3cre"):
        with pytest.raises(AuthError):
            gw.handle_callback("aliyun", CallbackRequest(body=body, path=path))
