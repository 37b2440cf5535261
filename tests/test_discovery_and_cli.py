"""Entry-point discovery, SMSGATE_PLUGINS, broken plugins, cheap import, and the CLI contract."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from smsgate import PluginManager
from smsgate.testing import LoopbackSimulator

GOOD = '''
import attrs
from smsgate import Capabilities, Operation, Provider, ProviderConfig, hookimpl

@attrs.frozen(kw_only=True)
class AcmeConfig(ProviderConfig):
    base_url: str = "http://127.0.0.1:9"

@hookimpl
def smsgate_provider():
    return Provider(name="acme", config_class=AcmeConfig,
                    capabilities=Capabilities(operations={Operation.SEND}, max_recipients={Operation.SEND: 5},
                                              text=True))
'''

BAD = 'raise ImportError("acme_broken needs libfoo, which is not installed")\n'


@pytest.fixture
def site(tmp_path, monkeypatch):
    (tmp_path / "acme_good.py").write_text(GOOD)
    (tmp_path / "acme_broken.py").write_text(BAD)
    dist = tmp_path / "smsgate_acme-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: smsgate-acme\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text("[smsgate]\nacme = acme_good\nacme_broken = acme_broken\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_entry_points_load_and_a_broken_plugin_is_named_and_skipped(site):
    pm = PluginManager(environ={})
    assert "acme" in pm.providers and pm.providers["acme"].version == "1.2.3"
    assert pm.providers["acme"].distribution == "smsgate-acme"
    assert [(b.name, b.distribution) for b in pm.broken] == [("acme_broken", "smsgate-acme")]
    assert "libfoo" in pm.broken[0].error
    assert "loopback" in pm.providers  # the others keep working


def test_smsgate_plugins_limits_what_loads(site):
    pm = PluginManager(environ={"SMSGATE_PLUGINS": "acme"})
    assert "acme" in pm.providers and not pm.broken
    pm = PluginManager(environ={"SMSGATE_PLUGINS": ""})
    assert set(pm.providers) == {"loopback"}


def run_cli(*args, env=None, cwd=None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "smsgate.cli", *args], capture_output=True, text=True,
                          env=full_env, cwd=cwd, timeout=60)


def test_cli_providers_lists_broken_plugins(site):
    env = {"PYTHONPATH": str(site), "SMSGATE_PLUGINS": "acme,acme_broken"}
    out = run_cli("providers", "--json", env=env)
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["acme"]["status"] == "ok" and rows["acme"]["version"] == "1.2.3"
    assert rows["acme_broken"]["status"] == "broken" and "libfoo" in rows["acme_broken"]["error"]
    assert rows["loopback"]["capabilities"]["max_recipients"]["send"] == 100
    text = run_cli("providers", env=env)
    assert "BROKEN" in text.stdout and "Traceback" not in text.stderr


def test_importing_smsgate_is_cheap():
    code = ("import sys, smsgate; heavy = [m for m in ('urllib3', 'structlog', 'cattrs', 'pluggy', 'attrs') "
            "if m in sys.modules]; print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "", out.stdout


@pytest.fixture
def config_file(tmp_path):
    sim = LoopbackSimulator(reject_numbers=["13700137000"]).start()
    path = tmp_path / "smsgate.toml"
    path.write_text(textwrap.dedent(f"""
        [providers.lb]
        provider = "loopback"
        base_url = "{sim.url}"
        api_key = "demo-key"
        api_secret = "demo-secret"
    """))
    yield str(path), sim
    sim.stop()


def test_cli_send_json_prints_one_object_and_exits_0(config_file):
    path, sim = config_file
    out = run_cli("send", "--config", path, "--provider", "lb", "--to", "13800138000,+86 139-0013-9000",
                  "--template", "T1", "--params", '{"code":"1234"}', "--sign-name", "签名", "--extend-code", "01",
                  "--biz-id", "order-9", "--at", "2030-01-02 03:04:05", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)  # stdout holds exactly one JSON object
    assert data["ok"] is True and data["provider"] == "lb"
    assert data["accepted"] == ["13800138000", "13900139000"] and data["message_ids"]
    assert data["rejected"] == [] and data["unknown"] == []
    body = sim.requests[-1].json()
    assert (body["params"], body["sign"], body["extend"], body["bizId"], body["sendAt"]) == (
        {"code": "1234"}, "签名", "01", "order-9", "2030-01-02 03:04:05")


def test_cli_send_exit_1_when_a_recipient_is_rejected(config_file):
    path, _ = config_file
    out = run_cli("send", "--config", path, "--provider", "lb", "--to", "13800138000,13700137000",
                  "--content", "hi", "--json")
    assert out.returncode == 1
    data = json.loads(out.stdout)
    assert data["ok"] is False and data["rejected"][0]["phone"] == "13700137000"
    assert "REJECTED" in data["rejected"][0]["reason"] and data["rejected"][0]["code"] == "REJECTED"


@pytest.mark.parametrize("args,needle", [
    (["--to", "123,13800138000", "--content", "x"], "'123'"),
    (["--to", "13800138000", "--template", "T", "--params", "{bad"], "--params"),
    (["--to", "13800138000", "--template", "T", "--params", "3"], "--params"),
    (["--to", "13800138000", "--content", "x", "--at", "tomorrow"], "--at"),
    (["--to", "13800138000", "--content", "x", "--provider", "nope"], "nope"),
    (["--to", "13800138000"], "--template"),
])
def test_cli_bad_input_is_one_line_exit_2(config_file, args, needle):
    path, _ = config_file
    if "--provider" not in args:
        args = ["--provider", "lb", *args]
    out = run_cli("send", "--config", path, *args)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert needle in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and out.stdout == ""


def test_cli_bad_config_is_exit_2(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[providers.lb]\nprovider = "loopback"\napi_secret = "topsecret"\nbogus = 1\n')
    out = run_cli("send", "--config", str(path), "--provider", "lb", "--to", "13800138000", "--content", "x")
    assert out.returncode == 2 and "bogus" in out.stderr and "topsecret" not in out.stderr
    assert "Traceback" not in out.stderr
    out = run_cli("send", "--config", str(tmp_path / "missing.toml"), "--to", "13800138000", "--content", "x")
    assert out.returncode == 2 and "not found" in out.stderr


def test_cli_unknown_outcome_exit_1_and_logs_on_stderr_masked(config_file):
    path, sim = config_file
    sim.inject("reset_after_read")
    out = run_cli("-v", "send", "--config", path, "--provider", "lb", "--to", "13800138000", "--content", "x",
                  "--json")
    assert out.returncode == 1
    assert json.loads(out.stdout)["unknown"] == ["13800138000"]
    assert "smsgate.send.unknown" in out.stderr and "138****8000" in out.stderr
    assert "13800138000" not in out.stderr and "demo-secret" not in out.stderr


def test_cli_reports_and_balance(config_file):
    path, sim = config_file
    assert run_cli("send", "--config", path, "--provider", "lb", "--to", "13800138000", "--content", "x").returncode == 0
    sim.deliver_all()
    out = run_cli("reports", "--config", path, "--provider", "lb", "--json")
    assert out.returncode == 0, out.stderr
    reports = json.loads(out.stdout)
    assert [(r["phone"], r["status"]) for r in reports] == [("13800138000", "delivered")]
    out = run_cli("balance", "--config", path, "--provider", "lb", "--json")
    assert out.returncode == 0 and json.loads(out.stdout)["amount"] == 999999


def test_cli_demo_runs_loopback():
    out = run_cli("demo", "--json", env={"SMSGATE_PLUGINS": ""})
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [(r["vendor"], r["sent"], r["accepted"], r["delivered"], r["ok"]) for r in rows] == [
        ("loopback", 1, 1, 1, True)]


def test_cli_usage_errors_exit_2():
    assert run_cli().returncode == 2
    out = run_cli("send", "--bogus")
    assert out.returncode == 2 and "Traceback" not in out.stderr


@pytest.fixture
def restore_structlog():
    import structlog

    yield
    structlog.reset_defaults()  # main() configures logging as an application does


def test_cli_in_process_logs_to_the_current_stderr(config_file, capsys, restore_structlog):
    from smsgate.cli import main

    path, sim = config_file
    sim.inject("http_500")
    assert main(["send", "--config", path, "--provider", "lb", "--to", "13800138000", "--content", "x"]) == 1
    first = capsys.readouterr()
    assert "smsgate.send.unknown" in first.err and "138****8000" in first.err
    sim.inject("http_500")
    assert main(["send", "--config", path, "--provider", "lb", "--to", "13800138000", "--content", "x"]) == 1
    assert "smsgate.send.unknown" in capsys.readouterr().err


def test_cli_demo_a_vendor_without_delivery_reports_is_ok_with_delivered_none():
    pytest.importorskip("smsgate_acme.plugin")  # the tutorial plugin (installed by the test command)
    out = run_cli("demo", "--json", env={"SMSGATE_PLUGINS": "acme"})
    assert out.returncode == 0, out.stdout + out.stderr
    rows = {r["vendor"]: r for r in json.loads(out.stdout)}
    assert rows["acme"]["ok"] is True and rows["acme"]["delivered"] is None
    assert rows["acme"]["accepted"] == rows["acme"]["sent"] == 2
