"""Pushes through smsgate's own Receiver over HTTP from the simulator: every list a push carries is
read by its name whatever its ``type`` says, a push is never acknowledged while a list it carried
is dropped, and refused pushes are answered in the vendor's ``{code, mes}`` shape, never code 200."""

from __future__ import annotations

import pytest

from smsgate import Gateway, InboundMessage, TaskSummary
from smsgate.receiving import BackgroundServer, Receiver
from smsgate_juse.simulator import JuseSimulator

INBOUND = {"content": "Y", "mobile": "13800138000", "sendTime": "2024-09-18 11:30:16", "addSerial": "01"}
TASK = {"sendTaskId": 7, "totalCount": 5, "sendCount": 3, "failCount": 2}
RECORD = {"sendRecordId": 9, "sendStatus": 1, "reportDate": "2024-09-18 11:30:20", "remark": "ok"}


class Endpoint:
    def __init__(self, sim: JuseSimulator, tmp_path):
        self.receiver = Receiver(Gateway({"providers": {"juse": sim.demo_config()}}),
                                 spool=tmp_path / "spool.sqlite3", poll_interval=0.05)
        self.events: list = []
        self.receiver.on_event(self.events.append, name="collect")
        self.server = BackgroundServer(self.receiver.wsgi_app).start()
        self.url = f"{self.server.url}/callbacks/juse"

    def received(self) -> list:
        assert self.receiver.drain()
        return sorted(self.events, key=lambda e: type(e).__name__)

    def close(self) -> None:
        self.server.stop()
        self.receiver.close()


@pytest.fixture
def sim():
    with JuseSimulator() as simulator:
        yield simulator


@pytest.fixture
def endpoint(sim, tmp_path):
    e = Endpoint(sim, tmp_path)
    yield e
    e.close()


def test_the_tables_pairing_sms_task_report_with_inbound_sms(sim, endpoint):
    answer = sim.push_callback(endpoint.url, "sms_task_report", smsDeliverDtoList=[INBOUND])
    assert answer.status == 200 and answer.json()["code"] == 200
    [msg] = endpoint.received()
    assert isinstance(msg, InboundMessage) and (msg.phone, msg.content, msg.service_code) == ("13800138000", "Y", "01")


def test_the_tables_pairing_sms_deliver_with_a_task_summary(sim, endpoint):
    answer = sim.push_callback(endpoint.url, "sms_deliver", sendSmsTaskDto=TASK)
    assert answer.status == 200 and answer.json()["code"] == 200
    [task] = endpoint.received()
    assert isinstance(task, TaskSummary) and (task.task_id, task.total, task.sent, task.failed) == ("7", 5, 3, 2)


def test_the_documents_example_sms_report_with_a_task_summary(sim, endpoint):
    # the document's own example push: an empty record list and a task dto beside it
    answer = sim.push_callback(endpoint.url, "sms_report", sendSmsRecordDtoList=[], sendSmsTaskDto=TASK)
    assert answer.status == 200 and answer.json()["code"] == 200
    [task] = endpoint.received()
    assert isinstance(task, TaskSummary) and task.task_id == "7"


def test_a_push_carrying_all_three_lists_gives_every_event(sim, endpoint):
    answer = sim.push_callback(endpoint.url, "sms_report", sendSmsRecordDtoList=[RECORD], sendSmsTaskDto=TASK,
                               smsDeliverDtoList=[INBOUND])
    assert answer.status == 200
    kinds = [type(e).__name__ for e in endpoint.received()]
    assert kinds == ["DeliveryReport", "InboundMessage", "TaskSummary"]


def test_a_push_with_a_list_smsgate_cannot_read_is_refused_not_acknowledged(sim, endpoint):
    answer = sim.push_callback(endpoint.url, "sms_report", sendSmsRecordDtoList=[RECORD],
                               smsReplyDtoList=[{"x": 1}])
    assert answer.status == 400
    body = answer.json()
    assert body["code"] == 400 and "smsReplyDtoList" in body["mes"] and body["requestId"] is None
    assert endpoint.received() == []  # nothing stored: the vendor keeps the push and sends it again


def test_an_unknown_type_keeps_what_its_known_lists_carry(sim, endpoint):
    answer = sim.push_callback(endpoint.url, "sms_something_new", smsDeliverDtoList=[INBOUND])
    assert answer.status == 200
    assert [type(e).__name__ for e in endpoint.received()] == ["InboundMessage"]
    assert sim.push_callback(endpoint.url, "sms_something_new").status == 200  # carries nothing: nothing lost


def test_refused_pushes_answer_in_the_vendors_shape_with_a_failure_code(sim, endpoint):
    forged = JuseSimulator(app_id=sim.app_id, app_secret="AAAAAAAAAAAAAAAAAAAAAA==")
    body = sim.callback_body("sms_deliver", smsDeliverDtoList=[INBOUND])
    answer = sim.push(endpoint.url, body, forged.callback_headers("sms_deliver"))
    assert answer.status == 401
    assert answer.json() == {"code": 401, "mes": "verification failed", "data": None, "requestId": None}
    answer = sim.push_callback(endpoint.url, "sms_deliver", smsDeliverDtoList=[{"content": "x"}])
    assert answer.status == 400
    body = answer.json()
    assert body["code"] == 400 and "smsDeliverDtoList[0].mobile: missing" in body["mes"]
    assert endpoint.received() == []


def test_the_simulator_keeps_reports_whose_push_was_refused(sim, tmp_path):
    # a refused answer's code is not 200, so the vendor (here its simulator) pushes them again
    other = JuseSimulator(app_secret="AAAAAAAAAAAAAAAAAAAAAA==").start()
    wrong = Endpoint(other, tmp_path)  # a receiver configured with another secret
    try:
        gw = Gateway({"providers": {"juse": sim.demo_config()}})
        assert gw.send(sim.demo_message()).ok and sim.deliver_all() == 1
        [answer] = sim.push_pending(wrong.url)
        assert answer.status == 401 and answer.json()["code"] == 401
        assert len(sim.pending_reports) == 1
    finally:
        wrong.close()
        other.stop()


def test_two_identical_replies_in_one_push_are_two_inbound_events_and_a_resend_adds_none(sim, endpoint):
    # two genuine "Y" replies from one phone in the same minute: both reach the handlers
    assert sim.push_callback(endpoint.url, "sms_deliver", smsDeliverDtoList=[INBOUND, INBOUND]).status == 200
    assert [e.content for e in endpoint.received()] == ["Y", "Y"]
    # the vendor resending the same push (our answer lost; a new nonce) stores nothing again
    assert sim.push_callback(endpoint.url, "sms_deliver", smsDeliverDtoList=[INBOUND, INBOUND]).status == 200
    assert len(endpoint.received()) == 2
