"""Pushes: the simulator POSTs signed sms_report / sms_task_report / sms_deliver to a receiver over
HTTP; forged, stale, replayed and foreign pushes are refused."""

from __future__ import annotations

import json

import pytest

from smsgate import (AuthError, CallbackRequest, DeliveryReport, InboundMessage, Message, Status, TaskSummary,
                     ValidationError)
from smsgate_juse import dialect
from smsgate_juse.plugin import MemoryReplayStore
from smsgate_juse.simulator import JuseSimulator

NOW = 1726631416.0
SECRET = "r6duQGOuwDw4QeF/TJi6tw=="


@pytest.fixture
def fixed(sim, make_gateway, receiver_for):
    """A simulator and a gateway sharing a fixed clock, and a receiver for the pushes."""
    sim.clock = lambda: NOW
    gw = make_gateway(clock=lambda: NOW)
    return sim, gw, receiver_for(gw)


def test_report_push_after_a_single_send(fixed):
    sim, gw, receiver = fixed
    result = gw.send(sim.demo_message())
    assert sim.deliver_all() == 1 and sim.deliver_all() == 0
    [answer] = sim.push_pending(receiver.url)
    assert answer.status == 200 and answer.json()["code"] == 200
    [report] = receiver.events
    assert isinstance(report, DeliveryReport)
    assert report.message_id == result.message_ids[0] and report.status is Status.DELIVERED
    assert (report.raw_status, report.reported_at, report.provider) == ("1", "2024-09-18 11:50:16", "juse")
    assert not sim.pending_reports and sim.push_pending(receiver.url) == []


def test_task_reports_and_task_summary(fixed):
    sim, gw, receiver = fixed
    result = gw.send(Message(to=["13800138000", "13900139000", "15837390237"], template_id="T", sign_name="S"))
    assert result.ok
    assert sim.push_task_reports(receiver.url) == []  # not final yet
    assert sim.deliver_all() == 3
    assert len(sim.push_pending(receiver.url, per_push=2)) == 2
    [summary_answer] = sim.push_task_reports(receiver.url)
    assert summary_answer.json()["code"] == 200
    reports = [e for e in receiver.events if isinstance(e, DeliveryReport)]
    [summary] = [e for e in receiver.events if isinstance(e, TaskSummary)]
    assert len(reports) == 3 and {r.status for r in reports} == {Status.DELIVERED}
    assert {r.message_id for r in reports} == {str(r.record_id) for r in sim.records}
    assert (summary.task_id, summary.total, summary.sent, summary.failed) == (result.message_ids[0], 3, 3, 0)
    assert sim.push_task_reports(receiver.url) == []  # summarised once


def test_inbound_push(fixed):
    sim, _, receiver = fixed
    answer = sim.push_inbound(receiver.url, "15837390237", "退订", add_serial="106901")
    assert answer.json()["code"] == 200
    [msg] = receiver.events
    assert isinstance(msg, InboundMessage)
    assert (msg.phone, msg.content, msg.service_code, msg.received_at) == (
        "15837390237", "退订", "106901", "2024-09-18 11:50:16")


def test_forged_push_is_refused_and_reports_are_kept(fixed):
    sim, gw, receiver = fixed
    gw.send(sim.demo_message())
    sim.deliver_all()
    sim.app_secret = "s6duQGOuwDw4QeF/TJi6tw=="  # the forger does not know our secret
    [answer] = sim.push_pending(receiver.url)
    assert answer.status == 401 and receiver.refused == 1 and not receiver.events
    assert len(sim.pending_reports) == 1  # the vendor would push again
    sim.app_secret = SECRET
    sim.push_pending(receiver.url)
    assert len(receiver.events) == 1


@pytest.mark.parametrize("offset, accepted", [(-901, False), (901, False), (-900, True), (900, True), (0, True)])
def test_fifteen_minute_window_both_ways(fixed, offset, accepted):
    sim, _, receiver = fixed
    answer = sim.push_callback(receiver.url, "sms_deliver", timestamp=int(NOW) + offset,
                               smsDeliverDtoList=[{"content": "hi", "mobile": "13800138000"}])
    assert (answer.status == 200) is accepted
    assert len(receiver.events) == (1 if accepted else 0)


def test_replayed_push_is_refused(fixed):
    sim, _, receiver = fixed
    dto = [{"content": "hi", "mobile": "13800138000"}]
    first = sim.push_callback(receiver.url, "sms_deliver", nonce="a" * 32, smsDeliverDtoList=dto)
    again = sim.push_callback(receiver.url, "sms_deliver", nonce="a" * 32, smsDeliverDtoList=dto)
    assert first.status == 200 and again.status == 401 and len(receiver.events) == 1


def test_forged_push_does_not_burn_a_nonce(fixed):
    sim, _, receiver = fixed
    dto = [{"content": "hi", "mobile": "13800138000"}]
    body = sim.callback_body("sms_deliver", smsDeliverDtoList=dto)
    headers = sim.callback_headers("sms_deliver", nonce="b" * 32)
    forged = {**headers, "X-message-Sign": "0" * 32}
    assert sim.push(receiver.url, body, forged).status == 401
    assert sim.push(receiver.url, body, headers).status == 200


def test_push_for_another_app_or_type_is_refused(fixed):
    sim, _, receiver = fixed
    # signed with our secret but for another appId: not ours
    body = json.dumps({"appId": "other", "type": "sms_deliver", "smsDeliverDtoList": []}).encode()
    headers = sim.callback_headers("sms_deliver", app_id="other")
    assert sim.push(receiver.url, body, headers).status == 401
    # the type is signed: a sms_report signature does not cover a sms_deliver body
    body = sim.callback_body("sms_deliver", smsDeliverDtoList=[])
    assert sim.push(receiver.url, body, sim.callback_headers("sms_report")).status == 401


def _request(body: dict, ts: str = "1726631416", nonce: str = "c" * 32, app_key: str = "message",
             kind: str | None = None, drop: str | None = None) -> CallbackRequest:
    sign = dialect.callback_signature(SECRET, ts, nonce, body.get("appId", ""), kind or body.get("type", ""))
    headers = {f"X-{app_key}-Time": ts, f"X-{app_key}-Nonce": nonce, f"X-{app_key}-Sign": sign}
    if drop:
        del headers[f"X-{app_key}-{drop}"]
    return CallbackRequest(headers=headers, body=json.dumps(body).encode())


@pytest.mark.parametrize("request_", [
    _request({"appId": "adrm", "type": "sms_report"}, drop="Time"),
    _request({"appId": "adrm", "type": "sms_report"}, drop="Nonce"),
    _request({"appId": "adrm", "type": "sms_report"}, drop="Sign"),
    _request({"appId": "adrm", "type": "sms_report"}, ts="yesterday"),
    _request({"appId": "adrm", "type": "sms_report"}, app_key="other"),
    _request({"appId": "adrm"}),
    CallbackRequest(headers={"X-message-Time": "1", "X-message-Nonce": "n", "X-message-Sign": "s"}, body=b"[1]"),
    CallbackRequest(headers={"X-message-Time": "1", "X-message-Nonce": "n", "X-message-Sign": "s"}, body=b"{bad"),
])
def test_incomplete_pushes_are_refused(make_gateway, request_):
    gw = make_gateway(clock=lambda: NOW)
    with pytest.raises(AuthError):
        gw.handle_callback("juse", request_)


def test_uppercase_signature_is_accepted(make_gateway):
    req = _request({"appId": "adrm", "type": "sms_report", "sendSmsRecordDtoList": []})
    sign = req.header("X-message-Sign")
    req = CallbackRequest(headers={**dict(req.headers), "X-message-Sign": sign.upper()}, body=req.body)
    assert make_gateway(clock=lambda: NOW).handle_callback("juse", req).events == ()


def test_pluggable_replay_store_is_used(make_gateway):
    class Store:
        def __init__(self):
            self.keys = []

        def add(self, key, ttl):
            self.keys.append((key, ttl))
            return len(self.keys) == 1

    store = Store()
    gw = make_gateway(clock=lambda: NOW, extras={"replay_store": store})
    body = {"appId": "adrm", "type": "sms_report", "sendSmsRecordDtoList": []}
    gw.handle_callback("juse", _request(body))
    with pytest.raises(AuthError):
        gw.handle_callback("juse", _request(body))
    assert store.keys == [("juse:adrm:" + "c" * 32, 1800)] * 2
    # handle_callback's own extras too
    other = Store()
    other.keys.append(("seen", 1))
    with pytest.raises(AuthError):
        make_gateway(clock=lambda: NOW).handle_callback("juse", _request(body), replay_store=other)


def test_in_memory_store_is_per_gateway_and_forgets_after_the_window():
    now = [1000.0]
    store = MemoryReplayStore(lambda: now[0])
    assert store.add("k", 1800) and not store.add("k", 1800)
    now[0] += 1801
    assert store.add("k", 1800)


def test_each_gateway_has_its_own_memory(make_gateway):
    body = {"appId": "adrm", "type": "sms_report", "sendSmsRecordDtoList": []}
    make_gateway(clock=lambda: NOW).handle_callback("juse", _request(body, nonce="d" * 32))
    make_gateway(clock=lambda: NOW).handle_callback("juse", _request(body, nonce="d" * 32))


@pytest.mark.parametrize("status, expected", [(1, Status.DELIVERED), (-1, Status.FAILED), (0, Status.PENDING),
                                              (2, Status.PENDING), (7, Status.UNKNOWN), ("1", Status.DELIVERED),
                                              (None, Status.UNKNOWN)])
def test_send_status_mapping(make_gateway, status, expected):
    body = {"appId": "adrm", "type": "sms_report",
            "sendSmsRecordDtoList": [{"sendRecordId": 5, "sendStatus": status, "remark": "r"}]}
    [report] = make_gateway(clock=lambda: NOW).handle_callback("juse", _request(body)).events
    assert report.status is expected and report.description == "r" and report.phone is None


def test_documents_example_body_gives_its_task_summary(make_gateway):
    # the document's example: type sms_report with an empty record list and a task dto beside it
    body = {"appId": "adrm", "type": "sms_report", "extensions": {}, "sendSmsRecordDtoList": [],
            "sendSmsTaskDto": {"sendTaskId": 1, "totalCount": 5, "sendCount": 3, "failCount": 2}}
    result = make_gateway(clock=lambda: NOW).handle_callback("juse", _request(body))
    [summary] = result.events
    assert isinstance(summary, TaskSummary) and (summary.task_id, summary.failed) == ("1", 2)
    assert result.response.json()["code"] == 200


def test_task_report_example_dto(make_gateway):
    body = {"appId": "adrm", "type": "sms_task_report",
            "sendSmsTaskDto": {"sendTaskId": 1, "totalCount": 5, "sendCount": 3, "failCount": 2}}
    [summary] = make_gateway(clock=lambda: NOW).handle_callback("juse", _request(body)).events
    assert (summary.task_id, summary.total, summary.sent, summary.failed) == ("1", 5, 3, 2)


def test_encrypted_inbound_mobile_is_decrypted(make_gateway):
    body = {"appId": "adrm", "type": "sms_deliver",
            "smsDeliverDtoList": [{"content": "TD", "mobile": "X4jPc0rqNtopIgUuoBe5Dw==", "addSerial": ""}]}
    [msg] = make_gateway(clock=lambda: NOW).handle_callback("juse", _request(body)).events
    assert msg.phone == "15837390237" and msg.service_code is None


def test_unknown_type_is_acknowledged_without_events(make_gateway):
    result = make_gateway(clock=lambda: NOW).handle_callback("juse", _request({"appId": "adrm", "type": "new"}))
    assert result.events == () and result.response.json() == {"code": 200, "mes": "success", "data": None,
                                                             "requestId": None}


@pytest.mark.parametrize("body", [
    {"appId": "adrm", "type": "sms_report", "sendSmsRecordDtoList": {"not": "a list"}},
    {"appId": "adrm", "type": "sms_report", "sendSmsRecordDtoList": [1]},
    {"appId": "adrm", "type": "sms_task_report", "sendSmsTaskDto": {"totalCount": 1}},
    {"appId": "adrm", "type": "sms_task_report", "sendSmsTaskDto": {"sendTaskId": 1, "totalCount": "many"}},
    {"appId": "adrm", "type": "sms_deliver", "smsDeliverDtoList": [{"content": "x"}]},
    {"appId": "adrm", "type": "sms_deliver", "smsDeliverDtoList": [{"mobile": "13800138000", "content": 5}]},
])
def test_malformed_pushes_are_validation_errors(make_gateway, body):
    with pytest.raises(ValidationError) as err:
        make_gateway(clock=lambda: NOW).handle_callback("juse", _request(body))
    assert err.value.field == "body"


def test_push_from_a_simulator_with_another_app_key(receiver_for, make_gateway):
    with JuseSimulator(app_key="msgcenter", clock=lambda: NOW) as other:
        from smsgate import Gateway

        gw = Gateway({"providers": {"juse": other.demo_config()}}, clock=lambda: NOW)
        receiver = receiver_for(gw)
        assert gw.send(other.demo_message()).ok
        assert other.requests[0].header("X-msgcenter-Sign")
        other.deliver_all()
        [answer] = other.push_pending(receiver.url)
        assert answer.status == 200 and len(receiver.events) == 1
