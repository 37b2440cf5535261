"""cmas's pull budget (注3: one pull per 5 s, read as one budget for both pulls) kept across
processes through the real Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import time

AT_CLI = ("import sys, time; from smsgate.cli import main; at = float(sys.argv[1]); "
          "time.sleep(max(0.0, at - time.time())); sys.exit(main(sys.argv[2:]))")


def test_a_report_pull_and_an_inbound_pull_in_two_processes_keep_5_s_apart(sim, tmp_path, redis_url,
                                                                             service_run_id):
    config = tmp_path / "smsgate.toml"
    config.write_text("[providers.cmas]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in sim.demo_config().items())
                      + f"[limits]\nstore = {json.dumps(redis_url)}\nprefix = {json.dumps(service_run_id + ':cmas:')}\n",
                      encoding="utf-8")
    at = time.time() + 5.0  # both start together, once their interpreters are up
    procs = [subprocess.Popen([sys.executable, "-c", AT_CLI, str(at), command, "--config", str(config),
                               "--provider", "cmas"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for command in ("reports", "inbound")]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    assert [rc for rc, _, _ in results] == [0, 0], results  # the simulator refused neither (TooFrequent)
    stamps = sorted(r.received_at for r in sim.requests if r.path.split("?")[0].endswith(("/sms/report", "/sms/deliver")))
    assert len(stamps) == 2
    assert stamps[1] - stamps[0] >= 5.0
