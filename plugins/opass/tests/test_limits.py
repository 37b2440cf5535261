"""opass's documented limits, kept across processes through the real Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from smsgate_opass.plugin import CAPABILITIES

AT_CLI = ("import sys, time; from smsgate.cli import main; at = float(sys.argv[1]); "
          "time.sleep(max(0.0, at - time.time())); sys.exit(main(sys.argv[2:]))")


def test_opass_declares_its_documented_request_rate(gateway):
    assert CAPABILITIES.rate == "300/second"  # FAQ: "吞吐量约300/TPS"
    assert (gateway.rate("opass").calls, gateway.rate("opass").per) == (300, 1.0)


def test_done_when_two_balance_processes_never_reach_opass_within_15_s(sim, tmp_path, redis_url, service_run_id):
    """The real rule ("默认限制15秒一次"), the real 15 s: the second process waits for the first's
    answer plus 15 s, so the simulator, which refuses a second balance inside 15 s, answers both."""
    config = tmp_path / "smsgate.toml"
    config.write_text("[providers.opass]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in sim.demo_config().items())
                      + f"[limits]\nstore = {json.dumps(redis_url)}\nprefix = {json.dumps(service_run_id + ':bal:')}\n",
                      encoding="utf-8")
    at = time.time() + 5.0  # both start together, once their interpreters are up
    procs = [subprocess.Popen([sys.executable, "-c", AT_CLI, str(at), "balance", "--config", str(config),
                               "--provider", "opass"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
    assert [rc for rc, _, _ in results] == [0, 0], results
    assert all("9784" in out for _, out, _ in results)
    stamps = sorted(r.received_at for r in sim.requests if r.path == "/sms/residueValue/qry")
    assert len(stamps) == 2
    assert stamps[1] - stamps[0] >= 15.0
