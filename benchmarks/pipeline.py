"""Pipeline overhead: N one-recipient sends through smsgate vs the same requests posted with raw
urllib3 (bodies and signatures prebuilt), same pool size, against the loopback simulator running
in its own process. Prints rates and, last, ``pipeline/raw c1=<ratio> c16=<ratio>``.

    python benchmarks/pipeline.py [--n 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
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


def senders(url: str, n: int) -> tuple[Callable[[int], None], Callable[[int], None]]:
    """``(raw, piped)``: each sends request ``i`` of ``n`` to the simulator at ``url``, with raw
    urllib3 (the request built and signed up front) or through ``Gateway.send``."""
    config = {"base_url": url, "api_key": "demo-key", "api_secret": "demo-secret", "max_concurrency": 1}
    gw = Gateway({"providers": {"loopback": config}}, transport=Transport(pool_maxsize=POOL))
    phones = [f"139{i:08d}" for i in range(n)]
    messages = [Message(to=[p], template_id="LB_CODE", params=["1234"]) for p in phones]

    # the same requests, built and signed once up front
    hooks = gw.hooks("loopback")
    prebuilt = []
    for m in messages:
        ctx = gw.context("loopback", Operation.SEND)
        req = hooks.build_request(ctx=ctx, operation=Operation.SEND, payload=m)
        prebuilt.append(hooks.sign(ctx=ctx, operation=Operation.SEND, request=req))
    raw_pool = urllib3.PoolManager(maxsize=POOL, block=False)
    timeout = urllib3.Timeout(connect=5, read=15)

    def raw(i: int) -> None:
        r = prebuilt[i]
        resp = raw_pool.request("POST", r.url, body=r.body, headers=dict(r.headers), retries=False,
                                timeout=timeout)
        assert resp.status == 200, resp.data

    def piped(i: int) -> None:
        assert gw.send(messages[i]).ok

    return raw, piped


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000, help="sends per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds: the best rate of each and the median of the per-round ratios")
    args = parser.parse_args()
    app_logging()

    proc, url = start_simulator()
    try:
        raw, piped = senders(url, args.n)
        # warm up both paths (connections, imports)
        run_threads(16, 200, raw)
        run_threads(16, 200, piped)
        best: dict[tuple[str, int], float] = {}
        ratios: dict[int, list[float]] = {1: [], 16: []}  # pipeline/raw measured back to back, per round
        cpu: dict[tuple[str, int], list[float]] = {}  # this process's CPU per request, per round
        for _ in range(args.rounds):
            for conc in (1, 16):
                got = {}
                for name, fn in (("raw", raw), ("pipeline", piped)):
                    before = time.process_time()
                    rate = got[name] = run_threads(conc, args.n, fn)
                    cpu.setdefault((name, conc), []).append((time.process_time() - before) / args.n * 1e6)
                    best[(name, conc)] = max(best.get((name, conc), 0.0), rate)
                ratios[conc].append(got["pipeline"] / got["raw"])
        for conc in (1, 16):
            print(f"c{conc}: raw {best[('raw', conc)]:8.0f} req/s   pipeline {best[('pipeline', conc)]:8.0f} req/s   "
                  f"CPU per request raw {statistics.median(cpu[('raw', conc)]):.0f} µs, pipeline "
                  f"{statistics.median(cpu[('pipeline', conc)]):.0f} µs (medians over rounds)")
        r1 = best[("pipeline", 1)] / best[("raw", 1)]
        r16 = best[("pipeline", 16)] / best[("raw", 16)]
        own = {c: statistics.median(cpu[("pipeline", c)]) - statistics.median(cpu[("raw", c)]) for c in (1, 16)}
        # best-rate ratios (as before), then the median of the per-round ratios (steadier on a busy
        # machine) and the pipeline's own CPU per request beyond what urllib3 spends
        print(f"pipeline/raw c1={r1:.2f} c16={r16:.2f} med_c1={statistics.median(ratios[1]):.2f} "
              f"med_c16={statistics.median(ratios[16]):.2f} own_cpu_us_c1={own[1]:.0f} own_cpu_us_c16={own[16]:.0f}")
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
