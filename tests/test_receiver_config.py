"""Configuration problems of the receiver fail at start with one line (CLI exit 2), never at the
first push and never as an internal error."""

from __future__ import annotations

import pytest

from smsgate import ConfigError, Gateway, cli
from smsgate.receiving import Receiver
from smsgate.models import CallbackRequest


def no_server(*args, **kwargs):
    raise AssertionError("the server must not start with a broken configuration")


@pytest.fixture(autouse=True)
def restore_structlog():
    import structlog

    yield
    structlog.reset_defaults()  # main() configures logging as an application does


@pytest.fixture
def no_serve(monkeypatch):
    monkeypatch.setattr("smsgate.receiving.server.run_server", no_server)


def write(tmp_path, text, name="smsgate.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_broken_provider_config_fails_when_the_receiver_is_built(tmp_path):
    # base_url must be an absolute URL: the loopback plugin's config refuses it
    with pytest.raises(ConfigError, match="base_url"):
        Receiver({"providers": {"loopback": {"base_url": "127.0.0.1:9/api"}}}, spool=tmp_path / "s.sqlite3",
                 plugin_hooks=False)


def test_serve_with_a_broken_provider_config_exits_2_with_one_line(tmp_path, capsys, no_serve):
    config = write(tmp_path, '[providers.loopback]\nbase_url = "127.0.0.1:9/api"\n')
    code = cli.main(["serve", "--config", config, "--spool", str(tmp_path / "s.sqlite3"), "--port", "0"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("smsgate: error:") and "base_url" in err[0]


def test_configured_provider_failing_at_runtime_answers_503(tmp_path, monkeypatch):
    from smsgate.default_plugins.loopback import signature

    gw = Gateway({"providers": {"loopback": {"base_url": "http://127.0.0.1:9", "api_secret": "s"}}})
    rc = Receiver(gw, spool=tmp_path / "s.sqlite3", plugin_hooks=False)
    try:
        def broken(*args, **kwargs):
            raise ConfigError("provider 'loopback': missing key 'api_key'")

        monkeypatch.setattr(gw, "handle_callback", broken)
        body = b'{"reports": []}'
        headers = {"X-Timestamp": "1", "X-Nonce": "n", "X-Signature": signature("s", "1", "n", body)}
        resp = rc.handle("loopback", CallbackRequest(headers=headers, body=body))
        assert resp.status == 503  # the vendor retries; 404 would tell it the URL is wrong
    finally:
        rc.close()


LOOPBACK = '[providers.loopback]\nbase_url = "http://127.0.0.1:9"\n'


@pytest.mark.parametrize("receiver_table, extra_args, names", [
    ('[receiver]\nreplay_store = "redis://x"\n', [], "replay_store"),
    ('[receiver]\nspool = 5\n', ["--no-spool-option"], "[receiver] spool"),
    ('[receiver]\nsynchronous = "OFF"\n', [], "[receiver] synchronous"),
    ('[receiver]\nevents_jsonl = 7\n', [], "[receiver] events_jsonl"),
    ("", ["--events-jsonl", "/nonexistent-dir/e.jsonl"], "--events-jsonl"),
    ("", ["--replay-store", "redis://x"], "--replay-store"),
], ids=["replay-store-redis", "spool-not-a-path", "synchronous-off", "events-jsonl-number", "events-jsonl-missing-dir",
        "replay-store-option"])
def test_bad_receiver_settings_exit_2_naming_the_setting(tmp_path, capsys, no_serve, receiver_table, extra_args,
                                                        names):
    config = write(tmp_path, receiver_table + LOOPBACK)
    argv = ["serve", "--config", config, "--port", "0"]
    if "--no-spool-option" in extra_args:
        extra_args = [a for a in extra_args if a != "--no-spool-option"]
    else:
        argv += ["--spool", str(tmp_path / "s.sqlite3")]
    code = cli.main(argv + extra_args)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("smsgate: error:") and names in err[0], err


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_serve_port_out_of_range_is_a_usage_error(tmp_path, capsys, no_serve, port):
    config = write(tmp_path, LOOPBACK)
    with pytest.raises(SystemExit) as exc:
        cli.main(["serve", "--config", config, "--spool", str(tmp_path / "s.sqlite3"), "--port", port])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--port" in err and "internal error" not in err
