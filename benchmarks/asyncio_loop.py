"""Event-loop latency while AsyncGateway sends: a ticker coroutine sleeps 5 ms again and again and
records how late it wakes, first on an idle loop (baseline), then while N one-recipient sends
are awaited at once against the loopback simulator in its own process. Prints both and, last,
``asyncio sends=<n> lag_p99_ms=<m> idle_p99_ms=<m> lag_max_ms=<m> sends_per_s=<r>``.

    python benchmarks/asyncio_loop.py [--n 500] [--workers 16]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from pipeline import app_logging, start_simulator  # noqa: E402

from smsgate import AsyncGateway, Message  # noqa: E402

TICK = 0.005


async def ticker(stop: asyncio.Event, lags: list[float]) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        await asyncio.sleep(TICK)
        lags.append(time.perf_counter() - t0 - TICK)


def p99(values: list[float]) -> float:
    # "inclusive": the default ("exclusive") extrapolates past the largest value when there are
    # fewer than 99 samples, as a slow loop's few ticks are, and printed a p99 above the max
    return statistics.quantiles(values, n=100, method="inclusive")[98] * 1000 if len(values) >= 2 else 0.0


async def measure(url: str, n: int, workers: int) -> tuple[list[float], list[float], float]:
    idle: list[float] = []
    stop = asyncio.Event()
    task = asyncio.ensure_future(ticker(stop, idle))
    await asyncio.sleep(1.0)
    stop.set()
    await task
    config = {"providers": {"loopback": {"base_url": url, "api_key": "demo-key", "api_secret": "demo-secret"}}}
    busy: list[float] = []
    async with AsyncGateway(config, max_workers=workers) as gw:
        stop = asyncio.Event()
        task = asyncio.ensure_future(ticker(stop, busy))
        t0 = time.perf_counter()
        results = await asyncio.gather(*(gw.send(Message(to=[f"138{i:08d}"], template_id="LB", params=["1"]))
                                         for i in range(n)))
        elapsed = time.perf_counter() - t0
        stop.set()
        await task
    assert all(r.ok for r in results), "a send was not accepted"
    return idle, busy, n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--workers", type=int, default=16)
    args = ap.parse_args()
    app_logging()
    proc, url = start_simulator()
    try:
        idle, busy, rate = asyncio.run(measure(url, args.n, args.workers))
    finally:
        proc.stdin.close()
        proc.wait()
    print(f"idle loop: {len(idle)} ticks, p99 lag {p99(idle):.2f} ms")
    print(f"during {args.n} awaited sends: {len(busy)} ticks, p99 lag {p99(busy):.2f} ms, "
          f"max {max(busy) * 1000:.2f} ms, {rate:.0f} sends/s")
    print(f"asyncio sends={args.n} lag_p99_ms={p99(busy):.2f} idle_p99_ms={p99(idle):.2f} "
          f"lag_max_ms={max(busy) * 1000:.2f} sends_per_s={rate:.0f}")


if __name__ == "__main__":
    main()
