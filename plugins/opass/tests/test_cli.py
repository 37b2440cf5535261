"""The issue's "Done when" command, through the CLI, against the simulator, for each sign method.

Run as a subprocess, exactly as a user types it (the CLI configures logging for its process)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

METHODS = ["HmacMD5", "HmacSHA1", "HmacSHA224", "HmacSHA256", "HmacSHA384", "HmacSHA512"]


def write_config(path, sim, method):
    values = {**sim.demo_config(), "sign_method": method}
    path.write_text("[providers.opass]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in values.items()),
                    encoding="utf-8")
    return str(path)


def smsgate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smsgate.cli", *args], capture_output=True, text=True,
                          encoding="utf-8", timeout=120)


@pytest.mark.parametrize("method", METHODS)
def test_done_when_send_command(sim, tmp_path, method):
    config = write_config(tmp_path / "smsgate.toml", sim, method)
    proc = smsgate("send", "--config", config, "--provider", "opass", "--to", "13800138000,13900139000",
                   "--template", "574277763210051584", "--params", '["张三","02"]', "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["ok"] is True, out
    assert out["message_ids"] == [sim.sent[0].msg_id]
    assert sim.verified[-1]["method"] == method
    assert sim.verified[-1]["fields"]["templateParam"] == '["张三","02"]'


def test_balance_command(sim, tmp_path):
    config = write_config(tmp_path / "smsgate.toml", sim, "HmacSHA256")
    proc = smsgate("balance", "--config", config, "--provider", "opass")
    assert proc.returncode == 0, proc.stderr
    assert "9784" in proc.stdout
