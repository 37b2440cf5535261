"""Limits shared by processes through the real Redis: several `smsgate` processes against one
loopback simulator (running in this test's process, so it sees every request that arrives)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from smsgate.testing import LoopbackSimulator

PHONE = "13800138000"

# waits until a given Unix time, then runs the CLI: the processes start together, not one by one
AT_CLI = ("import sys, time; from smsgate.cli import main; at = float(sys.argv[1]); "
          "time.sleep(max(0.0, at - time.time())); sys.exit(main(sys.argv[2:]))")

# waits until a given time, then sends N codes to fresh phones from 2 threads; prints the outcomes
AT_SENDS = """
import collections, json, sys, threading, time
from smsgate import Gateway, Message
config, at, first, n = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
gw = Gateway(config)
outcomes = collections.Counter()
def work(phones):
    for p in phones:
        r = gw.send(Message(to=[p], template_id="LB_CODE", params=["1234"]))
        outcomes[r.recipients[0].outcome.value] += 1
phones = [f"139{first + i:08d}" for i in range(n)]
threads = [threading.Thread(target=work, args=(phones[k::2],)) for k in range(2)]
time.sleep(max(0.0, at - time.time()))
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(outcomes))
"""


@pytest.fixture
def sim():
    with LoopbackSimulator() as s:
        yield s


def write_config(tmp_path, sim, limits: str, provider: str = "", extra: str = "") -> str:
    path = tmp_path / "smsgate.toml"
    path.write_text("[providers.loopback]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in sim.demo_config().items())
                    + provider + "\n[limits]\n" + limits + extra, encoding="utf-8")
    return str(path)


def redis_limits(redis_url, prefix, per_phone="") -> str:
    return f"store = {json.dumps(redis_url)}\nprefix = {json.dumps(prefix)}\n" + per_phone


def run_together(argvs, timeout=120):
    procs = [subprocess.Popen([sys.executable, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              encoding="utf-8") for argv in argvs]
    return [(p.wait(timeout=timeout), p.stdout.read(), p.stderr.read()) for p in procs]


def sends(sim):
    return [r for r in sim.requests if r.path.endswith("/send")]


def test_four_processes_sending_one_phone_in_one_second_reach_the_vendor_once(sim, tmp_path, redis_url,
                                                                              service_run_id):
    config = write_config(tmp_path, sim, redis_limits(redis_url, f"{service_run_id}:once:", 'per_phone = ["1/minute"]\n'))
    at = time.time() + 5.0  # after every interpreter has started, even on a loaded machine
    results = run_together([["-c", AT_CLI, str(at), "send", "--config", config, "--to", PHONE, "--template",
                             "LB_CODE", "--params", '["1234"]', "--json"] for _ in range(4)])
    codes = sorted(rc for rc, _, _ in results)
    assert codes == [0, 1, 1, 1], results
    refused = [json.loads(out)["rejected"][0] for rc, out, _ in results if rc == 1]
    assert {r["code"] for r in refused} == {"RATE_LIMITED"}
    assert len(sends(sim)) == 1
    stamps = [r.received_at for r in sim.requests]
    assert max(stamps) - min(stamps) < 1.0  # they did send within one second


def test_done_when_two_login_sends_within_a_minute_one_accepted_one_rate_limited(sim, tmp_path, redis_url,
                                                                                 service_run_id):
    config = write_config(tmp_path, sim, redis_limits(redis_url, f"{service_run_id}:login:"),
                          extra='\n[templates.login]\nper_phone = ["1/minute", "5/hour", "10/day"]\n')
    argv = ["-m", "smsgate.cli", "send", "--config", config, "--to", PHONE, "--template", "login"]
    first = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=60)
    second = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert second.returncode == 1, second.stderr
    assert "rejected\t[RATE_LIMITED] over its per-phone quota (1/minute, 5/hour, 10/day for 'login')" in second.stdout
    assert len(sends(sim)) == 1


def test_a_rate_over_four_processes_never_lets_the_vendor_see_more_in_any_second(sim, tmp_path, redis_url,
                                                                                   service_run_id):
    """50/second shared by 4 processes (2 sending threads each), 160 sends: the simulator never
    sees more than 50 requests in any window of 1 s less 200 ms. The 200 ms is the tolerance: a
    slot is counted just before its request is built, signed and sent, the simulator stamps the
    request once it has read it, and on a loaded 2-core machine (load average above 10 while the
    suite runs) that delay differs from one request to the next by up to ~100 ms. Counting per
    process (4 x 50) or in fixed windows (up to 100 across a boundary) would fail it."""
    config = write_config(tmp_path, sim, redis_limits(redis_url, f"{service_run_id}:rate:") + "rate_wait = 60\n",
                          provider='rate = "50/second"\n')
    at = time.time() + 5.0
    results = run_together([["-c", AT_SENDS, config, str(at), str(k * 1000), "40"] for k in range(4)])
    assert all(rc == 0 for rc, _, _ in results), results
    assert sum(json.loads(out.splitlines()[-1])["accepted"] for _, out, _ in results) == 160
    stamps = sorted(r.received_at for r in sends(sim))
    assert len(stamps) == 160
    window, tolerance = 1.0, 0.2
    busiest = max(sum(1 for t in stamps[i:] if t < start + window - tolerance) for i, start in enumerate(stamps))
    assert busiest <= 50, busiest
    assert stamps[-1] - stamps[0] >= 2.0  # 160 at 50/s: the limit did hold them back


def test_a_store_that_is_down_is_one_clear_line_and_nothing_is_sent(sim, tmp_path):
    config = write_config(tmp_path, sim, 'store = "redis://127.0.0.1:9/0"\nper_phone = ["1/minute"]\n')
    proc = subprocess.run([sys.executable, "-m", "smsgate.cli", "send", "--config", config, "--to", PHONE,
                           "--template", "LB_CODE"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.startswith("smsgate: error: per-phone quotas cannot be checked"), proc.stderr
    assert "fail_open" in proc.stderr and "Traceback" not in proc.stderr
    assert sim.requests == []
