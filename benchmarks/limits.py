"""Per-phone quotas' cost: one-recipient sends through the pipeline with ``per_phone = ["1/minute",
"5/hour", "10/day"]`` on the Redis store and on the memory store, against the same sends without
limits, at concurrency 16, against the loopback simulator in its own process. Every send goes to a
new phone, so each one is checked and counted (one round trip to Redis per send). The variants
run in short interleaved runs, so a shared machine's changing load falls on each alike. Prints
rates and, last, ``limits/plain redis c16=<ratio> memory c16=<ratio>`` (goal: >= 0.8).

    python benchmarks/limits.py [--n 2000] [--rounds 3] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import sys
import time

import structlog

sys.path.insert(0, os.path.dirname(__file__))
from pipeline import POOL, run_threads, start_simulator  # noqa: E402

from smsgate import Gateway, Message  # noqa: E402
from smsgate.sending.transport import Transport  # noqa: E402

PER_PHONE = ["1/minute", "5/hour", "10/day"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000, help="sends per variant and round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (each cut into interleaved runs of 250)")
    parser.add_argument("--redis", default=os.environ.get("SMSGATE_TEST_REDIS", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
                        cache_logger_on_first_use=True)

    proc, url = start_simulator()
    prefix = f"bench{os.getpid()}:"
    provider = {"base_url": url, "api_key": "demo-key", "api_secret": "demo-secret", "max_concurrency": 1}
    transport = Transport(pool_maxsize=POOL)
    gateways = {
        "plain": Gateway({"providers": {"loopback": provider}}, transport=transport),
        "redis": Gateway({"providers": {"loopback": provider},
                          "limits": {"store": args.redis, "prefix": prefix, "per_phone": PER_PHONE}},
                         transport=transport),
        "memory": Gateway({"providers": {"loopback": provider}, "limits": {"per_phone": PER_PHONE}},
                          transport=transport),
    }
    phones = (f"139{i:08d}" for i in itertools.count())  # a new phone for every send, in every run
    try:
        def sender(gw, count):
            batch = [Message(to=[next(phones)], template_id="LB_CODE", params=["1234"]) for _ in range(count)]

            def send(i: int) -> None:
                assert gw.send(batch[i]).ok
            return send

        for gw in gateways.values():  # warm up: connections, imports, the scripts loaded into Redis
            run_threads(16, 200, sender(gw, 200))
        # short runs, interleaved and rotated, summed per variant: load that comes and goes on a
        # shared machine falls on every variant alike
        chunk, runs = 250, args.rounds * max(1, args.n // 250)
        spent = dict.fromkeys(gateways, 0.0)
        cpu = dict.fromkeys(gateways, 0.0)
        names = list(gateways)
        for r in range(runs):
            for name in names[r % 3:] + names[:r % 3]:
                work = sender(gateways[name], chunk)
                started = time.process_time()
                spent[name] += chunk / run_threads(16, chunk, work)
                cpu[name] += time.process_time() - started
        best = {name: runs * chunk / seconds for name, seconds in spent.items()}
        for name, rate in best.items():
            # this process's CPU (every thread) per send: steadier than rates on a shared machine
            print(f"c16: {name:6s} {rate:8.0f} sends/s   client CPU {cpu[name] / (runs * chunk) * 1e6:5.0f} us/send")
        print(f"limits/plain redis c16={best['redis'] / best['plain']:.2f} "
              f"memory c16={best['memory'] / best['plain']:.2f}")
    finally:
        client = gateways["redis"].limits.store.client
        for key in client.scan_iter(prefix + "*", count=1000):
            client.delete(key)
        for gw in gateways.values():
            gw.close()
        proc.stdin.close()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
