"""Receivers on several hosts: each keeps its own spool, and the shared PostgreSQL ledger matches a
report once, whichever host (or both) received it."""

from __future__ import annotations

import json
import time

from smsgate import Gateway, Message, Outcome, Receiver, Status
from smsgate.default_plugins.loopback import signature
from smsgate.receiving import BackgroundServer
from smsgate.sending.ledger import open_ledger
from smsgate.testing import LoopbackSimulator
from smsgate.testing.simulator import Fault


def signed_push(sim, url: str, reports: list, nonce: str):
    body = json.dumps({"reports": reports}).encode()
    ts = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Timestamp": ts, "X-Nonce": nonce,
               "X-Signature": signature(sim.backend.api_secret, ts, nonce, body)}
    return sim.push(url, body, headers)


def test_the_same_report_at_two_hosts_settles_the_shared_ledger_once(tmp_path, postgres_url, service_run_id):
    schema = f"{service_run_id}_hosts"
    ledger = {"url": postgres_url, "schema": schema}
    with LoopbackSimulator() as sim:
        config = {"providers": {"loopback": {**sim.demo_config(), "read_timeout": 0.3}}, "ledger": ledger}
        sim.slow_seconds = 1.0
        sim.inject(Fault.SLOW, path="/send")
        with Gateway(config) as sender:
            sent = sender.send(Message(to=["13800138000"], template_id="LB_CODE", params=["1"], key="otp-1"))
        assert sent.recipients[0].outcome is Outcome.UNKNOWN  # the answer never came
        time.sleep(sim.slow_seconds)  # the vendor took it all the same
        reports = sim.backend.deliver_all()
        assert len(reports) == 1
        hosts = []
        try:
            for name in ("a", "b"):
                receiver = Receiver(Gateway(config), spool=tmp_path / f"spool-{name}.sqlite3").start()
                hosts.append((receiver, BackgroundServer(receiver.wsgi_app).start()))
            for i, (receiver, server) in enumerate(hosts):
                answer = signed_push(sim, f"{server.url}/callbacks/loopback", reports, nonce=f"n{i}")
                assert answer.status == 200
                assert receiver.drain(30)
            with Gateway(config) as reader:
                record = reader.status("otp-1")
        finally:
            for receiver, server in hosts:
                server.stop()
                receiver.close()
            open_ledger(postgres_url, schema=schema).drop_schema()
    (row,) = record.latest().values()
    assert row.outcome == Outcome.ACCEPTED.value or row.outcome is Outcome.ACCEPTED
    assert row.delivery_status in (Status.DELIVERED, Status.DELIVERED.value)
