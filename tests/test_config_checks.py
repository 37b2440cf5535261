"""Everything configured is checked when the Gateway (or Receiver) is built, and by `smsgate check`:
unknown keys with "did you mean", every problem at once, allowed values of choice fields, a missing
file named as such, and messages without Python syntax."""

from __future__ import annotations

import json
import os

import pytest

from smsgate import ConfigError, Gateway, Message, Receiver
from smsgate.cli import main


def write(tmp_path, text, name="smsgate.toml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_names_a_top_level_typo_and_exits_2(tmp_path, capsys):
    path = write(tmp_path, 'default_provder = "loopback"\n[providers.loopback]\napi_key = "k"\n')
    code, out, err = run(capsys, "check", "--config", path)
    assert code == 2 and out == ""
    assert "unknown top-level key 'default_provder' (did you mean 'default_provider'?)" in err
    assert "Traceback" not in err


def test_singular_providers_table_is_an_error_not_ignored(tmp_path):
    path = write(tmp_path, '[provider.loopback]\napi_key = "k"\n')
    with pytest.raises(ConfigError, match=r"unknown top-level key 'provider' \(did you mean 'providers'\?\)"):
        Gateway(path)


def test_receiver_key_typo_fails_when_the_receiver_is_built(tmp_path):
    path = write(tmp_path, '[receiver]\nspoool = "x.sqlite3"\n[providers.loopback]\n')
    with pytest.raises(ConfigError, match=r"\[receiver\] unknown key 'spoool' \(did you mean 'spool'\?\)"):
        Receiver(path)
    assert not (tmp_path / "smsgate-spool.sqlite3").exists()


@pytest.fixture
def vendor_plugins(monkeypatch):
    monkeypatch.setenv("SMSGATE_PLUGINS", "opass,juse")


def test_every_problem_is_reported_at_once(tmp_path, vendor_plugins):
    path = write(tmp_path, """
        default_provder = "opass"
        [receiver]
        synchronous = "OFF"
        [providers.opass]
        sign_method = "SHA256"
        access_key = 5
        bogus = 1
        [providers.lb]
        provider = "loopback"
        max_concurrency = "four"
    """.replace("\n        ", "\n"))
    pytest.importorskip("smsgate_opass")
    with pytest.raises(ConfigError) as err:
        Gateway(path, environ={})
    fields = sorted(p.field or "" for p in err.value.problems)
    assert fields == ["access_key", "api_key", "bogus", "default_provder", "max_concurrency", "sign_method",
                      "synchronous"], str(err.value)
    text = str(err.value)
    assert text.startswith(f"{path}: 7 problems:\n")
    assert "allowed values are FULL, NORMAL, EXTRA" in text  # a choice field lists its values
    assert "HmacSHA256" in text and "SHA256\"" not in text
    assert "must be an integer, not a string" in text  # words, not Python type names


def test_choice_field_lists_allowed_values_via_cli(tmp_path, capsys, vendor_plugins):
    pytest.importorskip("smsgate_opass")
    path = write(tmp_path, '[providers.opass]\napi_key = "a"\naccess_key = "b"\nsign_method = "SHA256"\n')
    code, _, err = run(capsys, "check", "--config", path)
    assert code == 2
    assert err.count("\n") == 1 and "sign_method" in err and "HmacSHA256, HmacSHA384" in err


def test_missing_config_file_is_named_as_such(tmp_path, capsys):
    missing = str(tmp_path / "typo.toml")
    with pytest.raises(ConfigError, match="config file not found: .*typo.toml"):
        Gateway(missing)
    code, _, err = run(capsys, "send", "--config", missing, "--to", "13800138000", "--content", "x")
    assert code == 2 and "config file not found" in err


def test_without_any_config_the_error_says_so(monkeypatch, tmp_path, capsys, vendor_plugins):
    pytest.importorskip("smsgate_juse")
    monkeypatch.delenv("SMSGATE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    gw = Gateway(environ={})
    with pytest.raises(ConfigError, match="no config file given") as err:
        gw.send(Message(to=["13800138000"], template_id="T"), provider="juse")
    assert "not configured" in str(err.value)
    with pytest.raises(ConfigError, match="no provider chosen and no config file given"):
        gw.send(Message(to=["13800138000"], template_id="T"))
    code, _, err_text = run(capsys, "check")
    assert code == 2 and "no config file given" in err_text


def test_several_providers_and_none_chosen_names_them_without_python_syntax(tmp_path, capsys):
    path = write(tmp_path, '[providers.a]\nprovider = "loopback"\n[providers.b]\nprovider = "loopback"\n')
    code, _, err = run(capsys, "send", "--config", path, "--to", "13800138000", "--content", "x")
    assert code == 2
    assert "no provider chosen: name one of a, b or set default_provider" in err
    assert "provider=" not in err and "..." not in err


def test_default_provider_must_exist(tmp_path):
    path = write(tmp_path, 'default_provider = "lopback"\n[providers.loopback]\n')
    with pytest.raises(ConfigError, match=r"default_provider 'lopback'.*did you mean 'loopback'"):
        Gateway(path)


def test_check_shows_what_it_found_without_secrets(tmp_path, capsys, monkeypatch):
    path = write(tmp_path, 'default_provider = "lb"\n[providers.lb]\nprovider = "loopback"\n'
                           'base_url = "http://user:pw-9x8@127.0.0.1:9/api"\napi_secret = "s3cret-77"\n'
                           f'[receiver]\nspool = "{tmp_path / "spool.sqlite3"}"\n')
    monkeypatch.setenv("SMSGATE_LB_API_KEY", "from-env")
    code, out, err = run(capsys, "check", "--config", path)
    assert code == 0, err
    assert "provider lb: plugin loopback" in out and 'api_key = "from-env"' in out
    assert 'api_secret = "(set)"' in out and "(from the environment: SMSGATE_LB_API_KEY)" in out
    assert f"spool: {tmp_path / 'spool.sqlite3'} (created on first use)" in out
    assert "ok: the configuration is valid" in out
    assert "s3cret-77" not in out and "pw-9x8" not in out
    code, out, _ = run(capsys, "check", "--config", path, "--json")
    report = json.loads(out)
    assert report["ok"] and report["default_provider"] == "lb"
    assert report["providers"][0]["values"]["base_url"] == "http://127.0.0.1:9/api"


def receiver_config(tmp_path, **receiver):
    lines = "".join(f"{k} = {json.dumps(str(v))}\n" for k, v in receiver.items())
    return write(tmp_path, f"[providers.loopback]\n[receiver]\n{lines}")


def snapshot(directory):
    return {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in directory.iterdir()}


def test_check_reads_the_spool_and_replay_store_without_creating_or_changing_anything(tmp_path, capsys):
    from smsgate.receiving.replay import SqliteReplayStore
    from smsgate.receiving.store import Spool

    files = tmp_path / "files"
    files.mkdir()
    Spool(files / "spool.sqlite3").close()
    SqliteReplayStore(files / "replay.sqlite3").close()
    path = receiver_config(tmp_path, spool=files / "spool.sqlite3", replay_store=f"sqlite:{files / 'replay.sqlite3'}",
                           events_jsonl=files / "events.jsonl")
    before = snapshot(files)
    code, out, err = run(capsys, "check", "--config", path)
    assert code == 0, err
    assert f"spool: {files / 'spool.sqlite3'} (writable)" in out
    assert f"replay store: {files / 'replay.sqlite3'} (writable)" in out
    assert f"events file: {files / 'events.jsonl'} (created on first use)" in out
    assert snapshot(files) == before  # no -wal or -shm left behind, nothing written
    code, out, _ = run(capsys, "check", "--config", path, "--json")
    assert [f["what"] for f in json.loads(out)["files"]] == ["spool", "replay store", "events file"]


def test_check_reads_a_spool_in_use(tmp_path, capsys):
    from smsgate.receiving.store import Spool

    spool = Spool(tmp_path / "spool.sqlite3")  # open, as under a running serve: its -wal and -shm exist
    try:
        code, out, err = run(capsys, "check", "--config", receiver_config(tmp_path, spool=spool.path))
    finally:
        spool.close()
    assert code == 0, err
    assert f"spool: {spool.path} (writable)" in out


def test_check_names_each_problem_of_the_receiver_files_on_one_line(tmp_path, capsys):
    from smsgate.receiving.replay import SqliteReplayStore

    SqliteReplayStore(tmp_path / "replay.sqlite3").close()
    (tmp_path / "junk.db").write_bytes(b"not a database, " * 20)
    path = receiver_config(tmp_path, spool=tmp_path / "replay.sqlite3", replay_store=f"sqlite:{tmp_path / 'junk.db'}",
                           events_jsonl=tmp_path / "missing" / "events.jsonl")
    code, out, err = run(capsys, "check", "--config", path)
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert lines[0].endswith("3 problems:") and len(lines) == 4, err
    assert f"[receiver] spool {tmp_path / 'replay.sqlite3'}: is not a spool: it holds other tables (replay_keys)" in err
    assert f"[receiver] replay_store {tmp_path / 'junk.db'}: cannot be read as SQLite" in err
    assert f"[receiver] events_jsonl {tmp_path / 'missing' / 'events.jsonl'}: directory {tmp_path / 'missing'} " \
           "does not exist" in err
    path = receiver_config(tmp_path, spool=tmp_path, replay_store="redis://127.0.0.1:6379/0")
    code, _, err = run(capsys, "check", "--config", path)
    assert code == 2
    assert f"[receiver] spool {tmp_path}: is a directory" in err
    assert "[receiver] replay_store: replay store must be 'memory' or 'sqlite:PATH', not 'redis://" in err
    # reported together with the other problems of the configuration
    write(tmp_path, 'default_provder = "loopback"\n[providers.loopback]\n[receiver]\n'
                    f'spool = "{tmp_path}"\n')
    code, _, err = run(capsys, "check", "--config", str(tmp_path / "smsgate.toml"))
    assert code == 2 and "2 problems" in err and "default_provder" in err and "is a directory" in err


def test_check_names_a_spool_this_user_cannot_write(tmp_path, capsys, monkeypatch):
    from smsgate.receiving.store import Spool

    Spool(tmp_path / "spool.sqlite3").close()
    (tmp_path / "spool.sqlite3").chmod(0o444)
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    if os.geteuid() == 0:  # root may write anything: answer as the permissions do for any other user
        real = os.access
        denied = {str(tmp_path / "spool.sqlite3"), str(locked)}
        monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) in denied and mode & os.W_OK
                            else real(p, mode))
    path = receiver_config(tmp_path, spool=tmp_path / "spool.sqlite3", events_jsonl=locked / "events.jsonl")
    code, _, err = run(capsys, "check", "--config", path)
    monkeypatch.undo()
    assert code == 2
    assert "spool.sqlite3: cannot be written (permissions)" in err
    assert f"cannot be created: directory {locked} is not writable" in err
