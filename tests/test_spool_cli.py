"""Handlers that were dropped from the app: a warning at start, and `smsgate spool forget-handler`."""

from __future__ import annotations

import json

import pytest
from smsgate.testing import capture_logs

from smsgate import Gateway, cli
from smsgate.receiving import Receiver
from smsgate.models import DeliveryReport, Status
from smsgate.receiving import Spool


def ev(i):
    return DeliveryReport(provider="loopback", message_id=f"M{i}", phone="13800138000", status=Status.DELIVERED)


@pytest.fixture(autouse=True)
def restore_structlog():
    import structlog

    yield
    structlog.reset_defaults()  # cli.main() configures logging as an application does


@pytest.fixture
def old_spool(tmp_path):
    """Day 1 ran with --events-jsonl and handler app:save; both are gone on day 2."""
    path = tmp_path / "spool.sqlite3"
    rc = Receiver(Gateway({"providers": {}}), spool=path, events_jsonl=tmp_path / "e.jsonl", plugin_hooks=False,
                  poll_interval=0.05)
    rc.add_handler(lambda e: None, name="app:save")
    rc.spool.put([ev(0)])
    assert rc.drain()
    rc.close()
    return path


def test_start_warns_about_spool_handlers_nobody_runs(old_spool):
    rc = Receiver(Gateway({"providers": {}}), spool=old_spool, plugin_hooks=False, poll_interval=0.05)
    rc.add_handler(lambda e: None, name="app:new")
    try:
        with capture_logs() as logs:
            rc.start()
        warned = [e for e in logs if e["event"] == "smsgate.spool.handlers_not_running"]
        assert len(warned) == 1 and warned[0]["log_level"] == "warning"
        assert warned[0]["handlers"] == ["app:save", "events-jsonl"]
        assert "forget-handler" in warned[0]["hint"]
    finally:
        rc.close()


def test_forget_handler_from_the_cli_lets_prune_delete_the_events(old_spool, capsys):
    with Spool(old_spool) as spool:
        spool.put([ev(i) for i in range(1, 11)])  # stored while nobody ran the old handlers
        assert spool.prune(0) == 1  # only day 1's handled event: the new ones wait for app:save and events-jsonl
    for name in ("app:save", "events-jsonl"):
        assert cli.main(["spool", "forget-handler", name, "--spool", str(old_spool)]) == 0
    assert cli.main(["spool", "status", "--spool", str(old_spool)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["handlers"] == {} and status["events"] == 10
    with Spool(old_spool) as spool:
        assert spool.prune(0) == 10


def test_forget_an_unknown_handler_is_a_usage_error(old_spool, capsys):
    assert cli.main(["spool", "forget-handler", "nosuch", "--spool", str(old_spool)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nosuch" in err[0] and "app:save" in err[0]


def test_spool_command_refuses_a_missing_file(tmp_path, capsys):
    assert cli.main(["spool", "status", "--spool", str(tmp_path / "nope.sqlite3")]) == 2
    assert not (tmp_path / "nope.sqlite3").exists()
