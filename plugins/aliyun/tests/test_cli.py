"""``smsgate send`` and ``smsgate reports`` against the simulator, as a user types them
(a subprocess: the CLI configures logging for its own process)."""

from __future__ import annotations

import datetime as dt
import json

from smsgate.testing import run_cli as smsgate
from smsgate.testing import write_config
from smsgate_aliyun.simulator import DEMO_TEMPLATE


def test_send_then_look_up_the_report_by_phone(sim, tmp_path):
    config = write_config(tmp_path / "smsgate.toml", "aliyun", sim.demo_config())
    proc = smsgate("send", "--config", config, "--provider", "aliyun", "--to", "13800138000,13900139000",
                   "--template", DEMO_TEMPLATE, "--params", '{"code":"1234"}', "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["ok"] is True and out["message_ids"] == [sim.records[0].biz_id]
    sim.deliver_all()
    today = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d")
    proc = smsgate("reports", "--config", config, "--provider", "aliyun", "--phones", "13900139000",
                   "--message-ids", out["message_ids"][0], "--since", today, "--json")
    assert proc.returncode == 0, proc.stderr
    (report,) = json.loads(proc.stdout)
    assert (report["phone"], report["status"], report["message_id"]) == \
        ("13900139000", "delivered", out["message_ids"][0])


def test_a_bad_since_is_a_usage_error(sim, tmp_path):
    config = write_config(tmp_path / "smsgate.toml", "aliyun", sim.demo_config())
    proc = smsgate("reports", "--config", config, "--provider", "aliyun", "--phones", "13900139000",
                   "--since", "yesterday")
    assert proc.returncode == 2 and "--since" in proc.stderr and "Traceback" not in proc.stderr
    assert not sim.requests
