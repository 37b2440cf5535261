"""Pushes through the core's receiver (what `smsgate serve` runs), over HTTP on 127.0.0.1."""

from __future__ import annotations

import json

from smsgate import DeliveryReport, InboundMessage, Message, Status



def test_pushes_through_the_core_receiver(sim, tmp_path, make_gateway):
    from smsgate.receiving import BackgroundServer, Receiver

    gw = make_gateway(sim)
    result = gw.send(Message(to=["13800138000", "13900139000"], template_id="574277763210051584",
                             params=["张三", "02"]))
    assert result.ok
    reports: list = []
    inbound: list = []
    receiver = Receiver(gw, spool=str(tmp_path / "spool.sqlite3"), plugin_hooks=False)
    receiver.add_handler(reports.append, name="reports", kinds=["report"])
    receiver.add_handler(inbound.append, name="inbound", kinds=["inbound"])
    try:
        with BackgroundServer(receiver.wsgi_app) as server:
            url = server.url + "/callbacks/opass"
            sim.deliver_all(statuses={"13900139000": "EXPIRED"})
            answers = sim.push_pending(url)
            assert [a.status for a in answers] == [200]
            assert json.loads(answers[0].body) == {"code": 200, "message": "OK"}
            assert sim.push_inbound(url, "13800138000", "回复TD退订").status == 200
            sim.api_key = "f" * 32  # a push naming another account is refused
            assert sim.push_inbound(url, "13800138000", "forged").status == 401
            assert receiver.drain(timeout=30)
    finally:
        receiver.close()
    assert all(isinstance(r, DeliveryReport) for r in reports)
    assert {(r.phone, r.status) for r in reports} == {("13800138000", Status.DELIVERED),
                                                      ("13900139000", Status.FAILED)}
    assert [(m.phone, m.content) for m in inbound] == [("13800138000", "回复TD退订")]
    assert all(isinstance(m, InboundMessage) for m in inbound)
