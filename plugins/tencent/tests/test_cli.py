"""The CLI against the simulator, run as a user types it: a send with one number refused by the
vendor, then the reports and inbound pulls."""

from __future__ import annotations

import json
import subprocess
import sys

from smsgate_tencent.simulator import DEMO_TEMPLATE


def write_config(path, sim):
    path.write_text("[providers.tencent]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in sim.demo_config().items()),
                    encoding="utf-8")
    return str(path)


def smsgate(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smsgate.cli", *args], capture_output=True, text=True,
                          encoding="utf-8", timeout=120)


def test_send_then_pull_through_the_cli(sim, tmp_path):
    config = write_config(tmp_path / "smsgate.toml", sim)
    sim.blocked_phones.add("13900139000")
    proc = smsgate("send", "--config", config, "--provider", "tencent", "--to", "13800138000,13900139000",
                   "--template", DEMO_TEMPLATE, "--params", '["4370"]', "--json")
    out = json.loads(proc.stdout)
    assert out["accepted"] == ["13800138000"] and out["message_ids"] == [sim.sent[0].serial]
    assert out["rejected"] == [{"phone": "13900139000", "code": "FailedOperation.PhoneNumberInBlacklist",
                                "reason": "[FailedOperation.PhoneNumberInBlacklist] 手机号在免打扰名单库中"}]
    assert "Traceback" not in proc.stderr
    sim.deliver_all()
    sim.add_reply("13800138000", "收到")
    proc = smsgate("reports", "--config", config, "--provider", "tencent")
    assert proc.returncode == 0, proc.stderr
    assert sim.sent[0].serial in proc.stdout
    proc = smsgate("inbound", "--config", config, "--provider", "tencent")
    assert proc.returncode == 0, proc.stderr
    assert "收到" in proc.stdout
