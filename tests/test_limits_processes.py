"""Limits shared by processes through the real Redis: several `smsgate` processes against one
loopback simulator (running in this test's process, so it sees every request that arrives)."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys

import pytest

from smsgate.testing import LoopbackSimulator

PHONE = "13800138000"

# Each child says "ready" once it has imported everything (and built what it can), then waits for
# a line on stdin: the test releases them all at once, however long a loaded machine took to start
# them, instead of guessing a start time.
READY_CLI = ("import sys; import redis, smsgate.cli.sending, smsgate.sending.flow, smsgate.sending.limits.redis_store; "
             "from smsgate.cli import main; print('ready', flush=True); sys.stdin.readline(); sys.exit(main(sys.argv[1:]))")

# sends N codes to fresh phones from 2 threads once released; prints the outcomes and, per phone,
# the interval (before, after) of the Redis call that granted its rate slot: the slot's time (the
# Redis server's clock, which is this host's) lies within it
READY_SENDS = """
import collections, json, sys, threading, time
from smsgate import Gateway, Message
config, first, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
gw = Gateway(config)
outcomes = collections.Counter()
slots = {}
current = threading.local()
store = gw.limits.store
acquire = store.acquire
def timed_acquire(*args, **kwargs):
    before = time.time()
    wait = acquire(*args, **kwargs)
    if wait <= 0:
        slots[current.phone] = (before, time.time())
    return wait
store.acquire = timed_acquire
def work(phones):
    for p in phones:
        current.phone = p
        r = gw.send(Message(to=[p], template_id="LB_CODE", params=["1234"]))
        outcomes[r.recipients[0].outcome.value] += 1
phones = [f"139{first + i:08d}" for i in range(n)]
threads = [threading.Thread(target=work, args=(phones[k::2],)) for k in range(2)]
print("ready", flush=True)
sys.stdin.readline()
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"outcomes": outcomes, "slots": slots}))
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


TIMEOUT = 300  # seconds: only a bound on a hung child, never a measure of speed


@contextlib.contextmanager
def ready_children(argvs):
    """Start every child and wait until each says it is ready (stopped at the end if still running)."""
    procs = [subprocess.Popen([sys.executable, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, encoding="utf-8") for argv in argvs]
    try:
        for p in procs:
            line = p.stdout.readline()  # "" if it died first: its stderr says why
            assert line == "ready\n", (line, p.wait(timeout=TIMEOUT), p.stderr.read())
        yield procs
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def release(p):
    p.stdin.write("go\n")
    p.stdin.close()


def outcome(p):
    """(exit code, stdout after "ready", stderr) of a released child."""
    return p.wait(timeout=TIMEOUT), p.stdout.read(), p.stderr.read()


def run_together(argvs):
    """Every child started and ready, then all released at once; their outcomes."""
    with ready_children(argvs) as procs:
        for p in procs:
            release(p)
        return [outcome(p) for p in procs]


def sends(sim):
    return [r for r in sim.requests if r.path.endswith("/send")]


def test_four_processes_sending_one_phone_in_one_second_reach_the_vendor_once(sim, tmp_path, redis_url,
                                                                              service_run_id):
    config = write_config(tmp_path, sim, redis_limits(redis_url, f"{service_run_id}:once:", 'per_phone = ["1/minute"]\n'))
    results = run_together([["-c", READY_CLI, "send", "--config", config, "--to", PHONE, "--template",
                             "LB_CODE", "--params", '["1234"]', "--json"] for _ in range(4)])
    codes = sorted(rc for rc, _, _ in results)
    assert codes == [0, 1, 1, 1], results
    refused = [json.loads(out)["rejected"][0] for rc, out, _ in results if rc == 1]
    assert {r["code"] for r in refused} == {"RATE_LIMITED"}
    assert len(sends(sim)) == 1  # and within the minute: the quota was shared, whatever their order


def test_done_when_two_login_sends_within_a_minute_one_accepted_one_rate_limited(sim, tmp_path, redis_url,
                                                                                 service_run_id):
    config = write_config(tmp_path, sim, redis_limits(redis_url, f"{service_run_id}:login:"),
                          extra='\n[templates.login]\nper_phone = ["1/minute", "5/hour", "10/day"]\n')
    argv = ["-c", READY_CLI, "send", "--config", config, "--to", PHONE, "--template", "login"]
    # both started (and their imports done) before the first sends: the second then follows the
    # first within the minute however slowly this machine starts interpreters
    with ready_children([argv, argv]) as (first, second):
        release(first)
        first_code, _, first_err = outcome(first)
        release(second)
        second_code, second_out, second_err = outcome(second)
    assert first_code == 0, first_err
    assert second_code == 1, second_err
    assert "rejected\t[RATE_LIMITED] over its per-phone quota (1/minute, 5/hour, 10/day for 'login')" in second_out
    assert len(sends(sim)) == 1


def test_a_rate_over_four_processes_never_lets_the_vendor_see_more_in_any_second(sim, tmp_path, redis_url,
                                                                                   service_run_id):
    """50/second shared by 4 processes (2 sending threads each), 160 sends.

    The limiter: any 51 slots it granted span at least 1 s. Each slot's time is known to lie
    within the Redis call that granted it (both clocks are this host's), so the check needs no
    tolerance beyond the server's millisecond. The vendor: the simulator never sees 51 requests
    within 1 s less the spread of the delay from slot to arrival, and that spread is measured in
    this run (each request's arrival against its slot's call) rather than assumed: on a loaded
    2-core machine a process may be descheduled between its slot and its request. Counting per
    process (4 x 50) or in fixed windows (up to 100 across a boundary) fails the first check."""
    config = write_config(tmp_path, sim, redis_limits(redis_url, f"{service_run_id}:rate:") + "rate_wait = 60\n",
                          provider='rate = "50/second"\n')
    results = run_together([["-c", READY_SENDS, config, str(k * 1000), "40"] for k in range(4)])
    assert all(rc == 0 for rc, _, _ in results), results
    reports = [json.loads(out.splitlines()[-1]) for _, out, _ in results]
    assert sum(r["outcomes"]["accepted"] for r in reports) == 160
    slots = {phone: interval for r in reports for phone, interval in r["slots"].items()}
    arrived = {r.json()["phones"][0]: r.received_at for r in sends(sim)}
    assert len(arrived) == 160 and set(arrived) == set(slots)
    eps = 0.002  # the Redis script's clock is in whole milliseconds
    # the limiter: the k-th earliest slot is no earlier than the k-th earliest call's start, the
    # (k+50)-th no later than the (k+50)-th earliest call's end
    starts, ends = sorted(a for a, _ in slots.values()), sorted(b for _, b in slots.values())
    tightest = min(ends[k + 50] - starts[k] for k in range(len(starts) - 50))
    assert tightest >= 1.0 - eps, f"51 slots within {tightest:.3f} s"
    # the vendor, within the measured spread of the slot-to-arrival delay
    spread = max(t - slots[p][0] for p, t in arrived.items()) - min(t - slots[p][1] for p, t in arrived.items())
    stamps = sorted(arrived.values())
    closest = min(stamps[k + 50] - stamps[k] for k in range(len(stamps) - 50))
    assert closest >= 1.0 - spread - eps, f"51 requests within {closest:.3f} s (delay spread {spread:.3f} s)"
    assert ends[-1] - starts[0] >= 3.0 - eps  # 160 at 50/s: the 151st slot is 3 s after the first


def test_a_store_that_is_down_is_one_clear_line_and_nothing_is_sent(sim, tmp_path):
    config = write_config(tmp_path, sim, 'store = "redis://127.0.0.1:9/0"\nper_phone = ["1/minute"]\n')
    proc = subprocess.run([sys.executable, "-m", "smsgate.cli", "send", "--config", config, "--to", PHONE,
                           "--template", "LB_CODE"], capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode == 1
    assert proc.stderr.startswith("smsgate: error: per-phone quotas cannot be checked"), proc.stderr
    assert "fail_open" in proc.stderr and "Traceback" not in proc.stderr
    assert sim.requests == []
