"""Pipeline overhead: N one-recipient sends through smsgate against the same sends written by hand
with raw urllib3, same pool size, to the loopback simulator running in its own process. Prints
rates and, last, ``pipeline/raw c1=<ratio> c16=<ratio> med_c1=.. med_c16=.. own_cpu_us_c1=..
own_cpu_us_c16=..``.

The raw client does per request what any client of this vendor must: it writes the JSON body,
signs it with a fresh timestamp and nonce (HMAC-SHA256), posts it with ``PoolManager.request`` and
reads the answer's JSON for its code and message id, with the standard library (``json``,
``hmac``), as an application would write it. Its nonces are drawn from the OS in bulk, as smsgate
draws its own, so neither side pays a system call per request the other does not.

The line before the last compares against the baseline used before (``pipeline/prebuilt``): the
same requests built and signed once up front and the answers not read, so it also counts the
vendor dialect's own work (body, signature, reading the answer) as the pipeline's.

    python benchmarks/pipeline.py [--n 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import structlog
import urllib3

from smsgate import Gateway, Message, Operation
from smsgate.sending.transport import Transport

POOL = 16


def app_logging() -> None:
    """Configure logging as an application would: warnings only, loggers cached, as structlog
    recommends for production (every benchmark measures the library under this setup)."""
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
                        cache_logger_on_first_use=True)


def start_simulator() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "smsgate.testing.loopback"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().strip()
    return proc, url


def run_threads(concurrency: int, n: int, work) -> float:
    """Run ``work(i)`` for i in range(n) on ``concurrency`` threads; return requests per second."""
    counter = iter(range(n))
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            work(i)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return n / (time.perf_counter() - start)


def senders(url: str, n: int) -> tuple[Callable[[int], None], Callable[[int], None], Callable[[int], None]]:
    """``(raw, piped, prebuilt)``: each sends request ``i`` of ``n`` to the simulator at ``url``,
    with raw urllib3 written by hand (the body built, signed and the answer read per request),
    through ``Gateway.send``, or with raw urllib3 posting the request built and signed up front."""
    config = {"base_url": url, "api_key": "demo-key", "api_secret": "demo-secret", "max_concurrency": 1}
    gw = Gateway({"providers": {"loopback": config}}, transport=Transport(pool_maxsize=POOL))
    phones = [f"139{i:08d}" for i in range(n)]
    messages = [Message(to=[p], template_id="LB_CODE", params=["1234"]) for p in phones]

    # the same requests, built and signed once up front
    hooks = gw.hooks("loopback")
    prebuilt_requests = []
    for m in messages:
        ctx = gw.context("loopback", Operation.SEND)
        req = hooks.build_request(ctx=ctx, operation=Operation.SEND, payload=m)
        prebuilt_requests.append(hooks.sign(ctx=ctx, operation=Operation.SEND, request=req))
    raw_pool = urllib3.PoolManager(maxsize=POOL, block=False)
    timeout = urllib3.Timeout(connect=5, read=15)
    send_url, api_key, secret = url + "/send", config["api_key"], config["api_secret"].encode()
    nonces: list[str] = []

    def nonce() -> str:
        try:
            return nonces.pop()
        except IndexError:
            digits = os.urandom(16 * 256).hex()
            nonces.extend([digits[i:i + 32] for i in range(0, len(digits), 32)])
            return nonces.pop()

    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # made once, as json.dumps is not

    def body(phone: str) -> bytes:
        return encode({"phones": [phone], "sign": None, "extend": None, "bizId": None, "sendAt": None,
                       "template": "LB_CODE", "params": ["1234"], "text": None}).encode()

    # the hand-written client sends the very bodies and headers the provider builds
    assert body(phones[0]) == prebuilt_requests[0].body
    assert [k for k, _ in prebuilt_requests[0].headers] == \
        ["Content-Type", "X-Api-Key", "X-Timestamp", "X-Nonce", "X-Signature"]

    def raw(i: int) -> None:
        data = body(phones[i])
        ts, once = str(int(time.time())), nonce()
        signature = hmac.new(secret, f"{ts}\n{once}\n".encode() + data, hashlib.sha256).hexdigest()
        resp = raw_pool.request("POST", send_url, body=data, retries=False, timeout=timeout,
                                headers={"Content-Type": "application/json", "X-Api-Key": api_key, "X-Timestamp": ts,
                                         "X-Nonce": once, "X-Signature": signature})
        answer = json.loads(resp.data)
        assert resp.status == 200 and answer["code"] == "OK" and answer["msgId"], resp.data

    def prebuilt(i: int) -> None:
        r = prebuilt_requests[i]
        resp = raw_pool.request("POST", r.url, body=r.body, headers=dict(r.headers), retries=False,
                                timeout=timeout)
        assert resp.status == 200, resp.data

    def piped(i: int) -> None:
        assert gw.send(messages[i]).ok

    return raw, piped, prebuilt


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000, help="sends per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds: the best rate of each and the median of the per-round ratios")
    args = parser.parse_args()
    app_logging()

    proc, url = start_simulator()
    try:
        raw, piped, prebuilt = senders(url, args.n)
        sides = [("raw", raw), ("pipeline", piped), ("prebuilt", prebuilt)]
        # warm up every path (connections, imports)
        for _, fn in sides:
            run_threads(16, 200, fn)
        best: dict[tuple[str, int], float] = {}
        ratios: dict[tuple[str, int], list[float]] = {}  # pipeline/baseline measured in the same round
        cpu: dict[tuple[str, int], list[float]] = {}  # this process's CPU per request, per round
        for round_ in range(args.rounds):
            # each round starts with another side, so no side always runs first or after the same one
            order = sides[round_ % 3:] + sides[:round_ % 3]
            for conc in (1, 16):
                got = {}
                for name, fn in order:
                    before = time.process_time()
                    rate = got[name] = run_threads(conc, args.n, fn)
                    cpu.setdefault((name, conc), []).append((time.process_time() - before) / args.n * 1e6)
                    best[(name, conc)] = max(best.get((name, conc), 0.0), rate)
                for baseline in ("raw", "prebuilt"):
                    ratios.setdefault((baseline, conc), []).append(got["pipeline"] / got[baseline])
        med_cpu = {key: statistics.median(values) for key, values in cpu.items()}
        for conc in (1, 16):
            print(f"c{conc}: raw {best[('raw', conc)]:8.0f} req/s   pipeline {best[('pipeline', conc)]:8.0f} req/s   "
                  f"prebuilt {best[('prebuilt', conc)]:8.0f} req/s   CPU per request raw {med_cpu[('raw', conc)]:.0f} µs, "
                  f"pipeline {med_cpu[('pipeline', conc)]:.0f} µs, prebuilt {med_cpu[('prebuilt', conc)]:.0f} µs "
                  f"(medians over rounds)")

        def line(baseline: str, own: str) -> str:
            r1 = best[("pipeline", 1)] / best[(baseline, 1)]
            r16 = best[("pipeline", 16)] / best[(baseline, 16)]
            # the pipeline's own CPU per request beyond what the baseline spends, measured like the
            # ratio: in each round, the two back to back, and the median of those differences. The
            # machine's other load comes and goes over seconds (at c16 a round's CPU per request can
            # double on every side at once), so a difference within a round is steadier than the
            # difference of two medians taken from different rounds
            beyond = {c: statistics.median(p - b for p, b in zip(cpu[("pipeline", c)], cpu[(baseline, c)]))
                      for c in (1, 16)}
            # best-rate ratios, then the median of the per-round ratios (steadier on a busy machine)
            return (f"pipeline/{baseline} c1={r1:.2f} c16={r16:.2f} med_c1={statistics.median(ratios[(baseline, 1)]):.2f} "
                    f"med_c16={statistics.median(ratios[(baseline, 16)]):.2f} {own}_c1={beyond[1]:.0f} "
                    f"{own}_c16={beyond[16]:.0f}")

        print(line("prebuilt", "beyond_cpu_us"))
        print(line("raw", "own_cpu_us"))
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)

if __name__ == "__main__":
    main()
