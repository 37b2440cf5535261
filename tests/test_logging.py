"""Logging as a library should: stdlib loggers under smsgate.*, silent until the app configures
logging, structured fields kept, structlog events for an app that configured structlog, and never
a secret, a signature, a URL's password or a full phone number in any record."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap

import pytest

from smsgate import Gateway, Message
from smsgate.receiving import BackgroundServer, Receiver
from smsgate.testing import LoopbackSimulator

API_KEY = "key-Zq81"
API_SECRET = "secret-Vt93kq"
URL_PASSWORD = "pw-Hx77"
PHONES = ["13800138000", "13912345678"]


@pytest.fixture(autouse=True)
def unconfigured_logging(monkeypatch):
    """As in a fresh process: structlog not configured, smsgate's logger as the library leaves it
    (an in-process CLI test before this one configured it as an application)."""
    import structlog

    import smsgate.log

    structlog.reset_defaults()
    monkeypatch.setattr(smsgate.log, "_stdlib_only", False)
    logger = logging.getLogger("smsgate")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    logger.handlers[:] = [h for h in logger.handlers if isinstance(h, logging.NullHandler)]
    logger.setLevel(logging.NOTSET)
    logger.propagate = True
    yield
    logger.handlers[:], logger.level, logger.propagate = saved
    structlog.reset_defaults()


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def collected():
    handler = Collect()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler.records
    root.removeHandler(handler)
    root.setLevel(old)


def record_text(record: logging.LogRecord) -> str:
    return record.getMessage() + " " + json.dumps(record.__dict__, default=str, ensure_ascii=False)


def test_a_full_send_and_receive_cycle_logs_no_secret_signature_password_or_phone(collected, tmp_path):
    with LoopbackSimulator(api_key=API_KEY, api_secret=API_SECRET, reject_numbers=["13912345678"]) as sim:
        base = sim.url.replace("http://", f"http://user:{URL_PASSWORD}@")
        config = {"providers": {"loopback": {"base_url": base, "api_key": API_KEY, "api_secret": API_SECRET}}}
        gw = Gateway(config)
        result = gw.send(Message(to=PHONES, template_id="LB_CODE", params=["1234"]))
        assert [r.outcome.value for r in result.recipients] == ["accepted", "rejected"]
        signatures = [r.header("X-Signature") for r in sim.requests]
        assert signatures and all(signatures)
        # a failure whose text would carry the URL: nothing listens there
        down = {"providers": {"loopback": {"base_url": f"http://user:{URL_PASSWORD}@127.0.0.1:9",
                                           "api_key": API_KEY, "api_secret": API_SECRET, "connect_retries": 0}}}
        failed = Gateway(down).send(Message(to=PHONES[:1], text="hello"))
        assert failed.rejected and URL_PASSWORD not in json.dumps(failed.to_json_dict())
        rc = Receiver(Gateway(config), spool=tmp_path / "spool.sqlite3", poll_interval=0.05)
        got: list = []
        rc.on_report(got.append, name="collect")
        with BackgroundServer(rc.wsgi_app) as srv:
            import time

            resp = sim.push_reports(srv.url + "/callbacks/loopback", time.time())
            assert resp.status == 200
            assert rc.drain()
        rc.close()
        assert [r.phone for r in got] == ["13800138000"]

    smsgate_records = [r for r in collected if r.name.startswith("smsgate")]
    events = {getattr(r, "event", None) for r in smsgate_records}
    assert {"smsgate.request", "smsgate.send.accepted", "smsgate.send.rejected",
            "smsgate.callback.accepted"} <= events, events
    trace = [r for r in smsgate_records if getattr(r, "event", None) == "smsgate.request"]
    assert trace[0].fields["method"] == "POST" and trace[0].fields["status"] == 200
    assert trace[0].fields["operation"] == "send" and trace[0].fields["duration_ms"] >= 0
    assert "user" not in trace[0].fields["url"] and "X-Signature: ***" in trace[0].fields["headers"]
    assert "header x-signature" in trace[0].fields["signed"]
    for record in collected:  # every record of every logger, not only smsgate's
        text = record_text(record)
        for secret in (API_SECRET, URL_PASSWORD, *signatures):
            assert secret not in text, (secret, text)
        for phone in PHONES:
            assert phone not in text, text


def test_library_is_silent_until_the_app_configures_logging(tmp_path):
    """The issue's check: a script sending through the loopback prints nothing at all, even for
    a warning (a rejected recipient), and does not import structlog's console output."""
    script = textwrap.dedent("""
        from smsgate import Gateway, Message
        gw = Gateway({"providers": {"loopback": {"reject_numbers": ["13900139000"]}}})
        result = gw.send(Message(to=["13800138000", "13900139000"], text="hi"))
        assert len(result.accepted) == 1 and len(result.rejected) == 1
    """)
    env = {k: v for k, v in os.environ.items() if k != "SMSGATE_CONFIG"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and out.stderr == ""


def test_records_keep_their_fields_and_honour_the_app_level(collected):
    logging.getLogger("smsgate").setLevel(logging.WARNING)
    try:
        gw = Gateway({"providers": {"loopback": {"reject_numbers": ["13900139000"]}}})
        gw.send(Message(to=["13800138000", "13900139000"], text="hi"))
    finally:
        logging.getLogger("smsgate").setLevel(logging.NOTSET)
    mine = [r for r in collected if r.name.startswith("smsgate")]
    assert [r.event for r in mine] == ["smsgate.send.rejected"]  # info and debug filtered by the app
    record = mine[0]
    assert record.name == "smsgate.pipeline" and record.levelno == logging.WARNING
    assert record.provider == "loopback" and record.fields["phones"] == ["139****9000"]
    assert record.getMessage().startswith("smsgate.send.rejected provider=loopback")


def test_an_app_that_configured_structlog_gets_structlog_events():
    import structlog

    seen: list[dict] = []

    def keep(logger, method, event_dict):
        seen.append(dict(event_dict, method=method))
        raise structlog.DropEvent

    structlog.configure(processors=[keep])
    gw = Gateway({"providers": {"loopback": {"reject_numbers": ["13900139000"]}}})
    gw.send(Message(to=["13900139000"], text="hi"))
    rejected = [e for e in seen if e["event"] == "smsgate.send.rejected"]
    assert rejected and rejected[0]["provider"] == "loopback" and rejected[0]["phones"] == ["139****9000"]


def test_cli_vv_prints_the_request_trace_to_stderr_without_secrets(tmp_path):
    with LoopbackSimulator(api_key=API_KEY, api_secret=API_SECRET) as sim:
        base = sim.url.replace("http://", f"http://user:{URL_PASSWORD}@")
        path = tmp_path / "smsgate.toml"
        path.write_text(f'[providers.loopback]\nbase_url = "{base}"\napi_key = "{API_KEY}"\n'
                        f'api_secret = "{API_SECRET}"\n')
        out = subprocess.run([sys.executable, "-m", "smsgate.cli", "-vv", "send", "--config", str(path),
                              "--to", PHONES[0], "--content", "hello"], capture_output=True, text=True)
        signature = sim.requests[0].header("X-Signature")
        quiet = subprocess.run([sys.executable, "-m", "smsgate.cli", "send", "--config", str(path),
                                "--to", PHONES[0], "--content", "hello"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "smsgate.request" in out.stderr and "status=200" in out.stderr and "duration_ms=" in out.stderr
    assert "[DEBUG" in out.stderr and "[INFO" in out.stderr
    for secret in (API_SECRET, URL_PASSWORD, signature, PHONES[0]):
        assert secret not in out.stderr
    assert "smsgate" not in out.stdout.replace(PHONES[0], "")  # stdout has the result only
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_structlog_filtering_level_is_respected_before_building_the_trace():
    import structlog

    from smsgate.log import get_logger

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    log = get_logger("smsgate.request")
    assert not log.is_enabled(logging.DEBUG) and log.is_enabled(logging.INFO)
    # configured again, the new level counts (the answer is kept per wrapper class, not per logger)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    assert log.is_enabled(logging.DEBUG)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    assert not log.is_enabled(logging.INFO) and log.is_enabled(logging.WARNING)


def test_cli_main_puts_logging_back_as_it_found_it(capsys):
    import smsgate.log
    from smsgate.cli import main

    logger = logging.getLogger("smsgate")
    before = (list(logger.handlers), logger.level, logger.propagate, smsgate.log._stdlib_only)
    assert main(["-vv", "send", "--to", "13800138000", "--content", "x", "--config", "/nonexistent.toml"]) == 2
    assert "config file not found" in capsys.readouterr().err
    assert (list(logger.handlers), logger.level, logger.propagate, smsgate.log._stdlib_only) == before
