"""Stopping ``smsgate serve --poll``: a pull in flight still reaches the spool before it closes.

No timed assertions: the fake pull blocks on events; waits have generous safety limits only.
"""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from smsgate import cli
from smsgate.cli import receiving as cli_receiving
from smsgate.receiving import Receiver
from smsgate.sending.gateway import Gateway
from smsgate.models import DeliveryReport, Operation, Status
from smsgate.receiving import Poller
from smsgate.receiving import Spool

LIMIT = 30.0


def pulled_report(msg_id="P1"):
    return DeliveryReport(provider="loopback", message_id=msg_id, phone="13800138000", status=Status.DELIVERED)


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "smsgate.toml"
    path.write_text('[providers.loopback]\nbase_url = "http://127.0.0.1:9"\napi_secret = "s"\n', encoding="utf-8")
    return path


def test_serve_poll_waits_for_the_pull_in_flight_before_closing_the_spool(config_file, tmp_path, monkeypatch):
    spool_path = tmp_path / "spool.sqlite3"
    entered = threading.Event()    # the vendor has handed the report out; its answer is on the way
    proceed = threading.Event()    # set when shutdown goes past poller.stop()
    seen: dict = {}
    threads: list[threading.Thread] = []

    def slow_pull(self, provider=None, query=None):
        entered.set()
        assert proceed.wait(LIMIT)
        return [pulled_report()]

    monkeypatch.setattr(Gateway, "pull_reports", slow_pull)

    real_start = Poller.start_thread

    def start_thread(self):
        t = real_start(self)
        real_join = t.join

        def join(timeout=None):
            proceed.set()
            return real_join(timeout)

        t.join = join  # type: ignore[method-assign]
        threads.append(t)
        return t

    monkeypatch.setattr(Poller, "start_thread", start_thread)

    real_close = Receiver.close

    def close(self, timeout=10.0):
        seen["poller_alive_at_close"] = any(t.is_alive() for t in threads)
        proceed.set()
        return real_close(self, timeout)

    monkeypatch.setattr(Receiver, "close", close)

    def fake_run_server(app, host, port, threads=16, server="auto", on_bound=None, **limits):
        assert entered.wait(LIMIT)  # SIGTERM arrives while the pull is in flight

    monkeypatch.setattr("smsgate.receiving.server.run_server", fake_run_server)
    errors: list = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))

    args = cli.build_parser().parse_args(["serve", "--config", str(config_file), "--spool", str(spool_path),
                                          "--poll", "--port", "0"])
    assert cli_receiving.cmd_serve(args) == 0
    for t in threads:
        t.join(LIMIT)
    assert seen["poller_alive_at_close"] is False
    assert errors == []
    with Spool(spool_path) as spool:
        assert [e.event.message_id for e in spool.events()] == ["P1"]


def test_poller_thread_keeps_pulled_items_aside_when_the_spool_fails(tmp_path, monkeypatch):
    from smsgate.testing import capture_logs

    gw = Gateway({"providers": {"loopback": {"base_url": "http://127.0.0.1:9"}}})
    spool = Spool(tmp_path / "s.sqlite3")
    spool.close()  # e.g. the disk went away: put raises SpoolError
    monkeypatch.setattr(gw, "pull_reports", lambda provider=None, query=None: [pulled_report()])
    errors: list = []
    monkeypatch.setattr(threading, "excepthook", lambda args: errors.append(args.exc_value))
    poller = Poller(gw, spool, providers=["loopback"])
    assert poller.targets == [("loopback", Operation.PULL_REPORTS)]
    with capture_logs() as logs:
        poller.start_thread()
        deadline = time.monotonic() + LIMIT
        while not os.path.exists(poller.dead_letter) and time.monotonic() < deadline:
            time.sleep(0.05)
        poller.stop()
        assert poller.join(LIMIT)
    assert errors == []  # no traceback, and the thread kept polling until stopped
    assert "smsgate.poll.dead_letter" in [e["event"] for e in logs if e["log_level"] == "error"]
    kept = [json.loads(line) for line in open(poller.dead_letter, encoding="utf-8")]
    assert kept and kept[0]["event"]["message_id"] == pulled_report().message_id


def test_shutdown_timeout_covers_rate_limit_and_timeouts():
    gw = Gateway({"providers": {"loopback": {"base_url": "http://127.0.0.1:9", "connect_timeout": 2.0,
                                             "connect_retries": 1, "read_timeout": 7.0}}})
    poller = Poller(gw, Spool.__new__(Spool), providers=["loopback"])
    window = poller.longest_wait("loopback", Operation.PULL_REPORTS)
    assert poller.shutdown_timeout(margin=1.0) == window + 2.0 * 2 + 7.0 + 1.0
