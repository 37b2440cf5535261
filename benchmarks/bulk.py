"""One Gateway.send of a million recipients, per vendor: CPU seconds and peak memory.

The vendor's answer is supplied in-process by a wrapper plugin's ``transmit`` (the vendor's own
simulator answers the first request; that answer is replayed for every later one), so what is
measured is the library's work only: normalising the phones, planning the requests, building and
signing each, parsing each answer, merging the outcomes, and (``--ledger``) the SQLite send
ledger writing every request before it leaves and after. A vendor's request rate is lifted to a
million a second: every request still takes its slot from the limiter, but none waits for one
(``--vendor-rate`` keeps the vendor's own rate: opass's ``300/second`` makes its million wait about
2.7 s, and after each wait this machine's virtual CPUs ran the send up to 1.8 times slower per
request, see docs/performance.md). Each vendor runs in a child process of
its own, so the peak resident memory (``ru_maxrss``) is that send's, with the input list of
phone strings and the imports included. CPU is ``time.process_time`` of the send alone.

    python benchmarks/bulk.py [--count 1000000] [--vendors opass,guodu,juse] [--ledger] [--shuffled] [--vendor-rate] [--concurrency N]
    python benchmarks/bulk.py --linearity [--pairs 7] [--count 1000000] [--vendors ...] [--vendor-rate] [--concurrency N]

The provider sends with ``max_concurrency`` 1 (one thread), as the goals are measured;
``--concurrency N`` sends with N threads (the default configuration's is 4), still CPU of the whole
process.

The phones are in ascending order, as a list read with ORDER BY would be; ``--shuffled`` sends them
in a random order (the same one every run) instead. Diagnostics: ``BULK_NO_GC=1`` turns the cyclic
collector off for the send, ``BULK_COLLECTED=1`` runs a full collection after the message is made
(the caller's list and the message's tuple of phones then already walked and in the oldest
generation, as an input made long before the send would be).

Prints ``bulk <vendor> n=<count> cpu_s=<s> peak_mb=<m>`` per vendor (``bulk+ledger`` with the
ledger). Goals (issue #18): <= 2 s and <= 200 MB without the ledger, <= 4 s with it.

``--linearity`` measures the other goal, ten times the recipients for at most ten times the CPU:
``--pairs`` rounds (default 7), each sending ``count / 10`` and then ``count`` recipients through
every vendor (fresh processes, back to back; every other round the larger first, so a load that
rises or falls during a round favours neither), and prints per vendor each round's ratio and
their median::

    linearity <vendor> n=<small>/<count> cpu_s=<median small>/<median count> ratio=<median> min=<r> max=<r> rounds=<r,r,...>

The smaller send takes tens of milliseconds, so one pair alone moves by ±20% on a busy machine;
the median of the per-round ratios is the figure to quote, with its spread.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

VENDORS = {
    "opass": "smsgate_opass.simulator:OpassSimulator",
    "guodu": "smsgate_guodu.simulator:GuoduSimulator",
    "juse": "smsgate_juse.simulator:JuseSimulator",
    "loopback": "smsgate.testing.loopback:LoopbackSimulator",
}


#: the request rate the vendors' own is replaced with (unless --vendor-rate): never waited on
NO_WAIT = "1000000/second"


def one_send(vendor: str, count: int, ledger_url: str | None, shuffled: bool = False,
             vendor_rate: bool = False, concurrency: int = 1) -> dict[str, Any]:
    """Child process: one send of ``count`` recipients through ``vendor``."""
    import resource

    from smsgate import Gateway, hookimpl
    from smsgate.testing.simulator import SimRequest, load_simulator

    logging.basicConfig(level=logging.WARNING)  # an application's usual setting
    sim = load_simulator(VENDORS[vendor])()
    sim.start()  # only for its URL in the config: no request goes over HTTP

    class CannedVendor:
        """The vendor's answer, without the network: the simulator answers once."""

        answer: Any = None

        @hookimpl(tryfirst=True)
        def transmit(self, ctx: Any, request: Any) -> Any:
            if CannedVendor.answer is None:
                path = request.url.split("//", 1)[1].partition("/")[2]
                CannedVendor.answer = sim.handle(SimRequest(
                    method=request.method, path="/" + path, headers=tuple(request.headers),
                    body=request.body or b"", received_at=time.time()))
            return CannedVendor.answer

    config = {**sim.demo_config(), "max_concurrency": concurrency}
    gw = Gateway({"providers": {vendor: config}}, ledger=ledger_url)
    if not vendor_rate and gw.rate(vendor) is not None:  # (a vendor without a rate keeps none)
        gw = Gateway({"providers": {vendor: {**config, "rate": NO_WAIT}}}, ledger=ledger_url)
    gw.plugins.register(CannedVendor())
    demo = sim.demo_message()
    from smsgate import Message

    gw.send(Message(to=demo.to, text=demo.text, template_id=demo.template_id, params=demo.params,
                    sign_name=demo.sign_name), vendor)  # warm up: imports, the canned answer
    # The simulator's server thread polls while it runs, and its CPU is the process's: stopped, so
    # a send that waits on the vendor's rate (opass's million, 3 s) is not charged for it.
    sim.stop()
    phones = [f"13{i:09d}" for i in range(count)]
    if shuffled:
        import random

        random.Random(18).shuffle(phones)
    message = Message(to=phones, text=demo.text, template_id=demo.template_id, params=demo.params,
                      sign_name=demo.sign_name, key="bulk" if ledger_url else None)
    if os.environ.get("BULK_COLLECTED"):  # what the collector's walks of the caller's input cost the send
        gc.collect()
    if os.environ.get("BULK_NO_GC"):  # what the cyclic collector's passes over a million live objects cost
        gc.disable()
    cpu = time.process_time()
    result = gw.send(message, vendor)
    cpu = time.process_time() - cpu
    accepted = len(result.accepted)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    assert accepted == count, (accepted, result.recipients[0])
    return {"cpu_s": cpu, "peak_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--vendors", default="opass,guodu,juse")
    parser.add_argument("--ledger", action="store_true", help="also each vendor with the SQLite send ledger")
    parser.add_argument("--shuffled", action="store_true", help="the phones in a random order, not ascending")
    parser.add_argument("--vendor-rate", action="store_true",
                        help="keep the vendor's own request rate (a send may wait on it), not " + NO_WAIT)
    parser.add_argument("--linearity", action="store_true",
                        help="rounds of count/10 then count recipients; the median ratio of their CPU")
    parser.add_argument("--pairs", type=int, default=7, help="rounds of --linearity")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="the provider's max_concurrency (threads sending requests; default 1, as the goals)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_send(*json.loads(args.child))))
        return
    vendors = args.vendors.split(",")
    if args.linearity:
        linearity(vendors, args.count, args.pairs, args.shuffled, args.vendor_rate, args.concurrency)
        return
    tmp = tempfile.mkdtemp(prefix="smsgate-bulk-")
    for vendor in vendors:
        for ledger_url in ([None, f"sqlite:///{tmp}/{vendor}.sqlite3"] if args.ledger else [None]):
            stats = child(vendor, args.count, ledger_url, args.shuffled, args.vendor_rate, args.concurrency)
            name = ("bulk+ledger" if ledger_url else "bulk") + _variant(args.shuffled, args.vendor_rate,
                                                                         args.concurrency)
            print(f"{name} {vendor} n={args.count} cpu_s={stats['cpu_s']:.3f} peak_mb={stats['peak_mb']:.0f}",
                  flush=True)


def _variant(shuffled: bool, vendor_rate: bool, concurrency: int) -> str:
    return ("/shuffled" if shuffled else "") + ("/vendor-rate" if vendor_rate else "") + \
        (f"/c{concurrency}" if concurrency != 1 else "")


def child(vendor: str, count: int, ledger_url: str | None, shuffled: bool, vendor_rate: bool,
          concurrency: int) -> dict[str, Any]:
    """One send in a fresh process (its own peak memory, nothing warm from an earlier send)."""
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child",
                          json.dumps([vendor, count, ledger_url, shuffled, vendor_rate, concurrency])],
                         capture_output=True, text=True)
    if out.returncode:
        sys.exit(f"{vendor}: {out.stderr.strip()[-2000:]}")
    stats: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return stats


def linearity(vendors: list[str], count: int, pairs: int, shuffled: bool, vendor_rate: bool,
              concurrency: int) -> None:
    """``pairs`` rounds of a send of ``count // 10`` and one of ``count`` per vendor; per vendor the
    median of the rounds' CPU ratios, with the smallest, the largest and every round's."""
    small = count // 10
    cpu: dict[str, list[tuple[float, float]]] = {v: [] for v in vendors}
    for round_ in range(pairs):
        for vendor in vendors:
            sizes = (small, count) if round_ % 2 == 0 else (count, small)
            got = {n: child(vendor, n, None, shuffled, vendor_rate, concurrency)["cpu_s"] for n in sizes}
            cpu[vendor].append((got[small], got[count]))
            print(f"round {round_ + 1} {vendor} n={small}/{count} cpu_s={got[small]:.3f}/{got[count]:.3f} "
                  f"ratio={got[count] / got[small]:.2f}", flush=True)
    for vendor in vendors:
        ratios = [big / little for little, big in cpu[vendor]]
        print(f"linearity{_variant(shuffled, vendor_rate, concurrency)} {vendor} n={small}/{count} "
              f"cpu_s={statistics.median(c[0] for c in cpu[vendor]):.3f}/"
              f"{statistics.median(c[1] for c in cpu[vendor]):.3f} ratio={statistics.median(ratios):.2f} "
              f"min={min(ratios):.2f} max={max(ratios):.2f} rounds={','.join(f'{r:.2f}' for r in ratios)}",
              flush=True)


if __name__ == "__main__":
    main()
