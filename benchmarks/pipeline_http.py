"""Instructions per request over HTTP, for callgrind: ``--k`` one-recipient sends to the loopback
simulator at concurrency 1 (in this thread, no others), with raw urllib3 (``--raw``) or through
``Gateway.send``, after 300 of each to warm up (the same senders as ``benchmarks/pipeline.py``;
``--prebuilt``: raw urllib3 posting requests built and signed up front, its earlier baseline).
The simulator runs in its own process, which valgrind does not follow. ``pipeline_own.py`` answers
before the core transport; this counts the transport too, against what urllib3 spends.

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python benchmarks/pipeline_http.py --k 1000 --none
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python benchmarks/pipeline_http.py --k 1000 --raw
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python benchmarks/pipeline_http.py --k 1000

(second minus first) / 1000 is raw urllib3's instructions per request, (third minus first) / 1000
the pipeline's, and their difference the pipeline's own (``--none`` builds the same requests and
warms up the same way, then sends none). ``--c 16`` sends the k on 16 threads, as
``pipeline.py``'s c16 does (valgrind runs one thread at a time, so this counts the work that
concurrency adds, such as waits for a lock or for the interpreter, not its timing).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline import app_logging, run_threads, senders, start_simulator  # noqa: E402

WARM = 300


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--k", type=int, default=1000, help="requests counted")
    parser.add_argument("--raw", action="store_true", help="raw urllib3 instead of Gateway.send")
    parser.add_argument("--prebuilt", action="store_true", help="raw urllib3 posting requests built up front")
    parser.add_argument("--none", action="store_true", help="send none of the k (the baseline)")
    parser.add_argument("--c", type=int, default=1, help="threads sending the k (1: this thread)")
    args = parser.parse_args()
    app_logging()
    proc, url = start_simulator()
    try:
        raw, piped, prebuilt = senders(url, WARM + args.k)
        for i in range(WARM):
            raw(i)
            piped(i)
            prebuilt(i)
        send = raw if args.raw else prebuilt if args.prebuilt else piped
        if args.c > 1:  # the same threads and request counter in the baseline run, sending none
            run_threads(args.c, 0 if args.none else args.k, lambda i: send(WARM + i))
        else:
            for i in range(WARM, WARM if args.none else WARM + args.k):
                send(i)
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
