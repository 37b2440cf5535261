"""The spool's put of a 250-report push, with report ids in order and in no order.

Each report's dedup key holds its message id, and the ``dedup_key`` index is unique: ids that
arrive in order land each push's keys in a few places of the index, ids in no order land them all
over it, and every index page a commit touches is written to the WAL. This prints the CPU of
``Spool.put`` (verify and parse excluded: the reports are built before the clock starts) for:

- ``ordered``: ten interleaved streams of ids that each grow, as the receiver benchmark's pushes
  (``benchmarks/callbacks.py``) carry them;
- ``random``: 16-digit ids drawn at random, as a vendor whose ids carry no order would send.

Each is ``--pushes`` puts into a fresh spool (``synchronous=FULL``, as ``smsgate serve``), after
``--fill`` puts of the same shape, so the index is not empty. Prints the median thread CPU per
put and the mean user and system parts, and last ``spool_keys ordered_ms=<m> random_ms=<m>``.

    python benchmarks/spool_keys.py [--pushes 300] [--fill 200]
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import statistics
import sys
import tempfile
import time

from smsgate.models import Status
from smsgate.receiving.store import Spool
from smsgate.reporting import DeliveryReport

REPORTS = 250


def push(n: int, order: str, rng: random.Random) -> list[DeliveryReport]:
    """The reports of push ``n``: guodu's shape (``raw`` is the vendor's item)."""
    stream, turn = n % 10, n // 10
    reports = []
    for i in range(REPORTS):
        msg_id = f"G{stream:02d}{turn:05d}{i:03d}" if order == "ordered" else f"{rng.getrandbits(53):016d}"
        phone = f"139{(n * REPORTS + i) % 10**8:08d}"
        raw = {"msg": "发送成功", "mobile": phone, "msgId": msg_id, "reportTime": "2024-09-18 11:50:16", "status": 0}
        reports.append(DeliveryReport(provider="guodu", message_id=msg_id, phone=phone, status=Status.DELIVERED,
                                      raw_status="0", description="发送成功", reported_at="2024-09-18 11:50:16",
                                      raw=raw))
    return reports


def run(order: str, pushes: int, fill: int) -> dict[str, float]:
    rng = random.Random(7)
    with tempfile.TemporaryDirectory(prefix="smsgate-bench-") as tmp:
        spool = Spool(os.path.join(tmp, "spool.sqlite3"))
        try:
            for n in range(fill):
                spool.put(push(n, order, rng), json_native=True)
            batches = [push(fill + n, order, rng) for n in range(pushes)]
            cpu, user, system = [], [], []
            for events in batches:
                before = resource.getrusage(resource.RUSAGE_THREAD)
                t0 = time.thread_time()
                spool.put(events, json_native=True)
                cpu.append(time.thread_time() - t0)
                after = resource.getrusage(resource.RUSAGE_THREAD)
                user.append(after.ru_utime - before.ru_utime)
                system.append(after.ru_stime - before.ru_stime)
        finally:
            spool.close()
    return {"ms": statistics.median(cpu) * 1000, "user_ms": statistics.mean(user) * 1000,
            "sys_ms": statistics.mean(system) * 1000}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=300, help="puts timed, per order")
    parser.add_argument("--fill", type=int, default=200, help="puts before the clock starts, per order")
    args = parser.parse_args(argv)
    if not hasattr(resource, "RUSAGE_THREAD"):
        print("needs RUSAGE_THREAD (Linux)", file=sys.stderr)
        return 2
    results = {}
    for order in ("ordered", "random"):
        results[order] = r = run(order, args.pushes, args.fill)
        print(f"{order:>8}: {r['ms']:.3f} ms CPU per put of {REPORTS} (median; mean user {r['user_ms']:.3f} ms, "
              f"system {r['sys_ms']:.3f} ms)")
    print(f"spool_keys ordered_ms={results['ordered']['ms']:.3f} random_ms={results['random']['ms']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
