"""The pipeline's own work per one-recipient send, in process: ``Gateway.send`` through the loopback
provider (its ``build_request`` JSON body, ``sign`` HMAC, ``parse_response``) with the vendor's
answer supplied by a wrapper plugin's ``transmit``, so no network, no simulator and no urllib3
count: what is left is what ``benchmarks/pipeline.py`` reports as ``own_cpu_us_…``, measured
without the noise of sockets and a second process.

    python benchmarks/pipeline_own.py [--n 5000] [--rounds 7]

Prints ``pipeline_own cpu_us=<best round> median_us=<median round>``. For a count that does not
depend on the machine's load, run it under ``valgrind --tool=callgrind`` with ``--n 0`` and with
``--n 2000 --rounds 1`` and divide the difference of the two totals by 2000.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pipeline import app_logging  # noqa: E402

from smsgate import Gateway, Message  # noqa: E402
from smsgate.hookspecs import hookimpl  # noqa: E402
from smsgate.models import HttpResponse  # noqa: E402

#: what the loopback simulator answers a one-recipient send
ANSWER = HttpResponse(status=200, headers=(("Content-Type", "application/json;charset=UTF-8"),
                                           ("Content-Length", "66")),
                      body=b'{"code":"OK","msgId":"LB00000001","rejected":{},"requestId":"lb-1"}')


class Answer:
    """Answers every request in process, before the core transport would send it."""

    @hookimpl(tryfirst=True)
    def transmit(self, ctx, request):
        return ANSWER


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000, help="sends per round")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    app_logging()
    gw = Gateway({"providers": {"loopback": {"base_url": "http://127.0.0.1:9", "api_key": "demo-key",
                                             "api_secret": "demo-secret", "max_concurrency": 1}}})
    gw.plugins.register(Answer(), name="answer")
    messages = [Message(to=[f"139{i:08d}"], template_id="LB_CODE", params=["1234"]) for i in range(max(args.n, 300))]
    for m in messages[:300]:  # warm up
        assert gw.send(m).ok
    per_send = [0.0]
    for _ in range(args.rounds if args.n else 0):
        before = time.process_time()
        for m in messages[:args.n]:
            gw.send(m)
        per_send.append((time.process_time() - before) / args.n * 1e6)
    per_send = per_send[1:] or per_send
    print(f"pipeline_own cpu_us={min(per_send):.1f} median_us={statistics.median(per_send):.1f}")


if __name__ == "__main__":
    main()
