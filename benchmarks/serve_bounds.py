"""How fast does ``smsgate serve`` answer a valid push while many idle connections are open?

Starts ``smsgate serve`` (waitress, the durable spool) on 127.0.0.1 with the loopback provider.
First it pushes ``--pushes`` signed pushes one after another with no other connection open (the
baseline), then opens ``--idle`` connections that send nothing (or half a request line) and pushes
again while they stay open. Prints the answer time of each phase (median and max) and the ratio.

Goal: every push answered within 1 s while 200 idle connections are open (opass stops pushing
after three answers slower than 1 s).

    python benchmarks/serve_bounds.py [--idle 200] [--pushes 20] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

SECRET = "bench-secret"


def signed_push(n: int) -> tuple[bytes, dict[str, str]]:
    from smsgate.default_plugins.loopback import signature

    body = json.dumps({"reports": [{"msgId": f"B{n}", "phone": "13800138000", "status": "DELIVERED",
                                    "time": "t"}]}).encode()
    ts, nonce = str(int(time.time())), f"bench-{n}-{time.monotonic_ns()}"
    return body, {"Content-Type": "application/json", "X-Timestamp": ts, "X-Nonce": nonce,
                  "X-Signature": signature(SECRET, ts, nonce, body)}


def timed_pushes(url: str, start: int, count: int) -> list[float]:
    from smsgate.testing import SimulatorServer

    took = []
    for n in range(start, start + count):
        body, headers = signed_push(n)
        t0 = time.perf_counter()
        answer = SimulatorServer.push(url, body, headers, timeout=60)
        took.append(time.perf_counter() - t0)
        if answer.status != 200:
            raise SystemExit(f"push {n} answered {answer.status}: {answer.body[:200]!r}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--idle", type=int, default=200, help="idle connections held open (default 200)")
    parser.add_argument("--pushes", type=int, default=20, help="pushes timed in each phase (default 20)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="smsgate-bounds-")
    cfg = os.path.join(tmp, "smsgate.toml")
    with open(cfg, "w", encoding="utf-8") as fh:
        fh.write(f'[providers.loopback]\nbase_url = "http://127.0.0.1:9"\napi_secret = "{SECRET}"\n')
    proc = subprocess.Popen([sys.executable, "-m", "smsgate.cli", "serve", "--config", cfg, "--port", "0",
                             "--spool", os.path.join(tmp, "spool.sqlite3")],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    base = None
    for line in proc.stderr:
        m = re.search(r"receiving on (http://[\d.]+:\d+)", line)
        if m:
            base = m.group(1)
            break
    if base is None:
        raise SystemExit("smsgate serve did not start")
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
    url = base + "/callbacks/loopback"
    host, port = base.split("//", 1)[1].rsplit(":", 1)
    idle: list[socket.socket] = []
    try:
        timed_pushes(url, 0, 3)  # warm up
        baseline = timed_pushes(url, 100, args.pushes)
        for i in range(args.idle):
            sock = socket.create_connection((host, int(port)), timeout=30)
            if i % 2:
                sock.sendall(b"POST /callbacks/loopback HTTP/1.1\r\nHost: x\r\n")  # a slow client
            idle.append(sock)
        loaded = timed_pushes(url, 1000, args.pushes)
    finally:
        for sock in idle:
            sock.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    result = {
        "idle_connections": args.idle,
        "pushes": args.pushes,
        "baseline_median_ms": round(statistics.median(baseline) * 1000, 1),
        "baseline_max_ms": round(max(baseline) * 1000, 1),
        "idle_median_ms": round(statistics.median(loaded) * 1000, 1),
        "idle_max_ms": round(max(loaded) * 1000, 1),
        "ratio_median": round(statistics.median(loaded) / statistics.median(baseline), 2),
        "goal_max_ms": 1000,
        "goal_met": max(loaded) < 1.0,
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:20} {value}")


if __name__ == "__main__":
    main()
