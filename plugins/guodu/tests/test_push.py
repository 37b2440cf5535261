"""Report and inbound pushes: parsing, the optional source checks, and real POSTs from the simulator."""

from __future__ import annotations

import json

import pytest
from smsgate.testing import capture_logs

from smsgate import (AuthError, CallbackRequest, DeliveryReport, Gateway, InboundMessage, Message, Status,
                     ValidationError)
from smsgate.testing import SimulatorServer
from smsgate_guodu.plugin import is_unrecognised, push_body

DOC_EXAMPLE = ('[{"msg":"发送成功","mobile":"133********","msgId":"12345678",\n'
               '"reportTime":"2022-12-12 12:00:00","status":0}];').encode("utf-8")


def push(gw, body, **kwargs):
    if not isinstance(body, bytes):
        body = json.dumps(body, ensure_ascii=False).encode("utf-8")
    kwargs.setdefault("headers", {"Content-Type": "application/json"})
    return gw.handle_callback("guodu", CallbackRequest(path="/callbacks/guodu", body=body, **kwargs))


def reports(n, failed_every=0):
    return [{"msg": "UNDELIV" if failed_every and i % failed_every == 0 else "发送成功",
             "mobile": f"138{i:08d}", "msgId": f"9{i:07d}", "reportTime": "2022-12-12 12:00:00",
             "status": 1 if failed_every and i % failed_every == 0 else 0} for i in range(n)]


def test_document_example_with_its_trailing_semicolon(gw):
    result = push(gw, DOC_EXAMPLE)
    (report,) = result.events
    assert report == DeliveryReport(provider="guodu", message_id="12345678", phone="133********",
                                    status=Status.DELIVERED, raw_status="0", description="发送成功",
                                    reported_at="2022-12-12 12:00:00")
    assert result.response.status == 200


def test_250_reports_in_one_push(gw):
    result = push(gw, reports(250, failed_every=5))
    assert len(result.events) == 250
    assert all(isinstance(e, DeliveryReport) for e in result.events)
    failed = [e for e in result.events if e.status is Status.FAILED]
    assert len(failed) == 50 and {e.description for e in failed} == {"UNDELIV"} and failed[0].raw_status == "1"
    assert sum(e.status is Status.DELIVERED for e in result.events) == 200
    assert result.events[249].message_id == "90000249" and result.events[249].phone == "13800000249"


@pytest.mark.parametrize("status,expected", [(0, Status.DELIVERED), ("0", Status.DELIVERED), ("00", Status.DELIVERED),
                                             ("-0", Status.DELIVERED), (1, Status.FAILED), ("10", Status.FAILED),
                                             (2, Status.FAILED), (-1, Status.FAILED), ("99", Status.FAILED)])
def test_status_mapping(gw, status, expected):
    item = {"msg": "x", "mobile": "13800138000", "msgId": 42, "reportTime": "2022-12-12 12:00:00", "status": status}
    (report,) = push(gw, [item]).events
    assert report.status is expected and report.message_id == "42" and report.raw_status == str(status)


def test_empty_array_is_answered(gw):
    result = push(gw, [])
    assert result.events == () and result.response.status == 200


@pytest.mark.parametrize("body", [
    b"",
    [{"mobile": "13800138000", "msgId": "1", "status": "ok"}],
    [{"mobile": "13800138000", "status": 0}],
    [{"msgId": "1", "status": 0}],
    [{"mobile": "13800138000", "msgId": "1", "status": 0}, {"mobile": "13800138000", "content": "hi"}],
])
def test_malformed_report_pushes(gw, body):
    with pytest.raises(ValidationError) as err:
        push(gw, body)
    assert err.value.field == "body"


def test_inbound_json_array(gw):
    with capture_logs() as logs:
        result = push(gw, [{"mobile": "13800138000", "content": "退订", "appendId": "01",
                            "recvTime": "2022-12-12 12:00:00"}])
    (msg,) = result.events
    assert msg == InboundMessage(provider="guodu", phone="13800138000", content="退订",
                                 received_at="2022-12-12 12:00:00", service_code="01")
    assert result.response.status == 200
    text = json.dumps(logs, ensure_ascii=False, default=str)
    assert "smsgate.guodu.push.inbound" in text and "138****8000" in text and "13800138000" not in text


def test_inbound_form_encoded(gw):
    body = "SrcMobile=13800138000&Content=%E9%80%80%E8%AE%A2&AppendID=12&RecvTime=2022-12-12+12%3A00%3A00".encode()
    result = push(gw, body, headers={"Content-Type": "application/x-www-form-urlencoded"})
    (msg,) = result.events
    assert (msg.phone, msg.content, msg.service_code, msg.received_at) == \
        ("13800138000", "退订", "12", "2022-12-12 12:00:00")


def test_inbound_in_the_query_string(gw):
    result = gw.handle_callback("guodu", CallbackRequest(method="GET", path="/cb", query="mobile=13800138000&content=hi"))
    (msg,) = result.events
    assert (msg.phone, msg.content) == ("13800138000", "hi")


@pytest.mark.parametrize("body", [b"<xml><mobile>13800138000</mobile></xml>", b'{"type":"mo","data":"x 13900139000"}',
                                  b'"just a string"', b"\xff\xfe garbage"])
def test_unrecognised_push_is_kept_whole_and_answered_200(gw, body):
    with capture_logs() as logs:
        result = push(gw, body, headers={"Content-Type": "text/plain"})
    (event,) = result.events
    assert isinstance(event, InboundMessage) and is_unrecognised(event) and event.phone == ""
    assert push_body(event) == body
    assert event.raw["content_type"] == "text/plain" and event.raw["path"] == "/callbacks/guodu"
    assert result.response.status == 200
    text = json.dumps(logs, ensure_ascii=False, default=str)
    assert "smsgate.guodu.push.unrecognised" in text
    assert "13800138000" not in text and "13900139000" not in text


# -- who may push --------------------------------------------------------------------------

def test_push_auth_none_accepts_anyone(gw):
    assert push(gw, [], remote_addr="203.0.113.9").response.status == 200


def test_without_any_protection_every_push_is_refused(make_gateway):
    # the default: no allow-list, no path secret, no explicit push_auth = "none"
    gw = make_gateway(push_auth="")
    with capture_logs() as logs, pytest.raises(AuthError):
        push(gw, reports(1), remote_addr="221.179.172.68")
    assert any("push_auth" in str(e.get("hint")) for e in logs)


def test_push_auth_takes_only_none(make_gateway):
    from smsgate import ConfigError

    with pytest.raises(ConfigError, match="push_auth"):
        make_gateway(push_auth="off").provider("guodu")


def test_more_items_than_the_document_allows_are_refused_before_reading_them(gw):
    from smsgate import PushTooLarge

    with pytest.raises(PushTooLarge, match="250"):
        push(gw, reports(251))


def test_path_secret_is_not_kept_in_an_unrecognised_push(make_gateway):
    gw = make_gateway(push_path_secret="Zk3vQ9-secret", push_auth="")
    with capture_logs() as logs:
        result = gw.handle_callback("guodu", CallbackRequest(path="/callbacks/guodu/Zk3vQ9-secret",
                                                             body=b"something odd"))
    [event] = result.events
    assert event.raw["path"] == "/callbacks/guodu/***"
    assert "Zk3vQ9-secret" not in json.dumps([event.raw, logs], default=str)


@pytest.mark.parametrize("addr,ok", [
    ("221.179.172.68", True), ("124.251.7.68", True), ("124.251.7.69", False), ("10.1.2.3", True),
    ("10.1.2.3:52314", True), ("::ffff:221.179.172.68", True), ("2001:db8::1", True), ("[2001:db8::1]:443", True),
    ("2001:db9::1", False), (None, False), ("", False), ("bogus", False),
])
def test_push_allow_ips(make_gateway, addr, ok):
    gw = make_gateway(push_allow_ips=["221.179.172.68", "124.251.7.68", "10.0.0.0/8", "2001:db8::/32"])
    if ok:
        assert push(gw, [], remote_addr=addr).response.status == 200
    else:
        with pytest.raises(AuthError):
            push(gw, [], remote_addr=addr)


def test_push_path_secret(make_gateway):
    gw = make_gateway(push_path_secret="s3cr3t-Path")
    ok = gw.handle_callback("guodu", CallbackRequest(path="/hooks/s3cr3t-Path/guodu", body=b"[]"))
    assert ok.response.status == 200
    for path in ("/hooks/guodu", "/hooks/s3cr3t-path/guodu", "/hooks/s3cr3t-Path-x"):
        with pytest.raises(AuthError):
            gw.handle_callback("guodu", CallbackRequest(path=path, body=b"[]"))


# -- the simulator pushes over HTTP --------------------------------------------------------

class Receiver(SimulatorServer):
    """The application's endpoint: hands every POST to Gateway.handle_callback."""

    def __init__(self, gateway: Gateway):
        super().__init__()
        self.gateway = gateway
        self.events: list = []
        self.status = None

    def handle(self, request):
        if self.status is not None:
            from smsgate import HttpResponse
            return HttpResponse(status=self.status, body=b"down")
        result = self.gateway.handle_callback("guodu", request.as_callback())
        self.events.extend(result.events)
        return result.response


def test_simulator_pushes_reports_for_what_it_accepted(gw, sim):
    sim.fail_numbers = {"13900139000"}
    result = gw.send(Message(to=["13800138000", "13900139000"], text="hi"), provider="guodu")
    with Receiver(gw) as receiver:
        answers = sim.push_pending(receiver.url + "/callbacks/guodu")
        assert [a.status for a in answers] == [200]
        by_phone = {e.phone: e for e in receiver.events}
        assert by_phone["13800138000"].status is Status.DELIVERED
        assert by_phone["13900139000"].status is Status.FAILED
        assert {e.message_id for e in receiver.events} == set(result.message_ids)
        assert sim.push_pending(receiver.url + "/callbacks/guodu") == []  # nothing left


def test_simulator_pushes_at_most_250_a_post(gw, sim):
    phones = [f"138{i:08d}" for i in range(600)]
    assert gw.send(Message(to=phones, text="hi"), provider="guodu").ok
    assert sim.deliver_all() == 600
    with Receiver(gw) as receiver:
        answers = sim.push_pending(receiver.url + "/cb")
        assert [a.status for a in answers] == [200, 200, 200]
        sizes = [len(r.json()) for r in receiver.requests]
        assert sizes == [250, 250, 100]
        assert sorted(e.phone for e in receiver.events) == phones


def test_reports_refused_by_the_receiver_are_pushed_again(gw, sim):
    gw.send(Message(to=["13800138000"], text="hi"), provider="guodu")
    with Receiver(gw) as receiver:
        receiver.status = 503
        assert [a.status for a in sim.push_pending(receiver.url)] == [503]
        receiver.status = None
        assert [a.status for a in sim.push_pending(receiver.url)] == [200]
        assert [e.phone for e in receiver.events] == ["13800138000"]


def test_simulator_inbound_push(gw, sim):
    with Receiver(gw) as receiver:
        answer = sim.push_inbound(receiver.url, "13800138000", "退订 T")
        assert answer.status == 200
        (msg,) = receiver.events
        assert isinstance(msg, InboundMessage) and (msg.phone, msg.content) == ("13800138000", "退订 T")


# -- through the core's receiver (verify -> parse -> durable spool), over HTTP ----------------

def test_every_push_shape_reaches_the_core_spool(gw, sim, tmp_path):
    from smsgate.receiving import BackgroundServer, Receiver

    gw.send(Message(to=["13800138000", "13900139000"], text="hi"), provider="guodu")
    receiver = Receiver(gw, spool=str(tmp_path / "spool.sqlite3"))
    try:
        with BackgroundServer(receiver.wsgi_app) as server:
            url = server.url + "/callbacks/guodu"
            assert [a.status for a in sim.push_pending(url)] == [200]
            assert sim.push_inbound(url, "13800138000", "退订").status == 200
            odd = b"<mo><mobile>13700137000</mobile></mo>"
            assert SimulatorServer.push(url, odd, {"Content-Type": "text/xml"}).status == 200
            assert SimulatorServer.push(url, b'[{"status":"x"}]', {"Content-Type": "application/json"}).status == 400
        events = [e.event for e in receiver.spool.events()]
    finally:
        receiver.close()
    reports = [e for e in events if isinstance(e, DeliveryReport)]
    inbound = [e for e in events if isinstance(e, InboundMessage)]
    assert sorted(r.phone for r in reports) == ["13800138000", "13900139000"]
    assert [m.content for m in inbound if not is_unrecognised(m)] == ["退订"]
    (kept,) = [m for m in inbound if is_unrecognised(m)]
    assert push_body(kept) == odd


def test_allow_list_through_the_core_receiver(make_gateway, tmp_path):
    from smsgate.receiving import BackgroundServer, Receiver

    gw = make_gateway(push_allow_ips=["221.179.172.68", "124.251.7.68"])
    receiver = Receiver(gw, spool=str(tmp_path / "spool.sqlite3"))
    try:
        with BackgroundServer(receiver.wsgi_app) as server:  # the push comes from 127.0.0.1
            assert SimulatorServer.push(server.url + "/callbacks/guodu", b"[]").status == 401
    finally:
        receiver.close()


def test_secret_prefix_through_the_core_receiver(make_gateway, sim, tmp_path):
    from smsgate.receiving import BackgroundServer, Receiver

    gw = make_gateway(push_path_secret="Zk3vQ9")
    gw.send(Message(to=["13800138000"], text="hi"), provider="guodu")
    receiver = Receiver(gw, spool=str(tmp_path / "spool.sqlite3"), prefix="/callbacks/Zk3vQ9")
    try:
        with BackgroundServer(receiver.wsgi_app) as server:
            assert SimulatorServer.push(server.url + "/callbacks/guodu", b"[]").status == 404  # not routed
            assert [a.status for a in sim.push_pending(server.url + "/callbacks/Zk3vQ9/guodu")] == [200]
        assert len(receiver.spool.events()) == 1
    finally:
        receiver.close()
    plain = Receiver(gw, spool=str(tmp_path / "plain.sqlite3"))  # mounted without the secret prefix
    try:
        assert plain.handle_path("POST", "/callbacks/guodu", {}, b"[]").status == 401
    finally:
        plain.close()


@pytest.mark.parametrize("body, native", [
    (json.dumps(reports(3)).encode(), True),
    (DOC_EXAMPLE, True),  # its trailing ";" and line break are taken off before the parse
    (b'[{"msgId":"1","mobile":"13800138000","status":0,"fee":0.05,"big":100000000000000000000000}]', True),
    (b'[{"msgId":"1","mobile":"13800138000","status":0,"fee":NaN}]', False),
    (b'[{"msgId":"1","mobile":"13800138000","status":0,"fee":[1e999]}]', False),
    (b'[{"msgId":"1","mobile":"13800138000","status":0,"fee":-Infinity}]', False),
])
def test_report_pushes_say_whether_their_values_are_json_native(gw, body, native):
    """json_native lets the spool hand the payloads to orjson without looking at each value:
    never for a body holding a NaN or an infinity, which orjson would write as null."""
    assert push(gw, body).json_native is native


def test_a_report_push_is_stored_as_the_standard_encoder_stores_it_whatever_it_holds(gw, tmp_path):
    from smsgate import wire
    from smsgate.receiving import Receiver

    bodies = [json.dumps(reports(3)).encode(),
              b'[{"msgId":"7","mobile":"13800138007","status":0,"fee":NaN,"n":[1e999,-0.0,0.1]}]',
              b'[{"msgId":"8","mobile":"13800138008","status":0,"big":100000000000000000000000,"t":"\\ud83d"}]']
    receiver = Receiver(gw, spool=str(tmp_path / "spool.sqlite3"))
    try:
        for body in bodies:
            assert receiver.handle_path("POST", "/callbacks/guodu", {}, body).status == 200
        stored = receiver.spool._book.execute("SELECT payload FROM events ORDER BY id").fetchall()
        events = [e for body in bodies for e in push(gw, body).events]
    finally:
        receiver.close()
    assert len(stored) == len(events) == 5
    for (payload,), event in zip(stored, events):
        expected = wire.json_text(_plain(event), default=str)
        assert repr(json.loads(payload)) == repr(json.loads(expected))  # NaN stays NaN, not null


def _plain(event):
    from smsgate.receiving.store import plain_event

    return plain_event(event, "report")


def test_a_json_native_push_goes_to_orjson_without_the_walk_over_its_values(gw, tmp_path, monkeypatch):
    from smsgate import wire
    from smsgate.receiving import Receiver

    monkeypatch.setattr(wire, "_orjson_module", pytest.importorskip("orjson"))
    walked = []
    walk = wire._orjson_writes
    monkeypatch.setattr(wire, "_orjson_writes", lambda value, depth=0: walked.append(value) or walk(value, depth))
    receiver = Receiver(gw, spool=str(tmp_path / "spool.sqlite3"))
    try:
        assert receiver.handle_path("POST", "/callbacks/guodu", {}, json.dumps(reports(3)).encode()).status == 200
        assert walked == []
        nan = b'[{"msgId":"7","mobile":"13800138007","status":0,"fee":NaN}]'
        assert receiver.handle_path("POST", "/callbacks/guodu", {}, nan).status == 200
        assert walked  # a NaN: every value is looked at (and the NaN goes to the standard encoder)
    finally:
        receiver.close()


@pytest.mark.parametrize("body", [
    json.dumps(reports(250, failed_every=5), ensure_ascii=False).encode("utf-8"),
    DOC_EXAMPLE, b"\xef\xbb\xbf" + json.dumps(reports(2)).encode(), b"  \r\n" + json.dumps(reports(2)).encode() + b" ;\n",
    b'[{"msgId":"1","mobile":"13800138000","status":0,"big":100000000000000000000000,"f":-0.0}]',
    b'[{"msgId":"12345678901234567890","mobile":"13800138000","status":"0"}]',
    b'[{"msgId":"1","mobile":"13800138000","status":0,"fee":NaN,"t":"\\ud83d"}]',
    b'[{"msgId":"1","mobile":"13800138000","status":0,"msg":"\xff\xfe"}]',  # not UTF-8: read as replaced text
    b'[{"mobile":"13800138000","content":"TD","extra":1.5}]', b'{"phone":"13800138000","content":"\\u9000"}',
])
def test_a_push_reads_the_same_with_or_without_orjson(gw, body, monkeypatch):
    from smsgate import wire

    def read():
        result = push(gw, body)
        return repr([(type(e).__name__, e, e.raw) for e in result.events]), result.json_native

    monkeypatch.setattr(wire, "_orjson_module", pytest.importorskip("orjson"))
    fast = read()
    monkeypatch.setattr(wire, "_orjson_module", None)
    assert fast == read()
