"""One Gateway.send of a million recipients, per vendor: CPU seconds and peak memory.

The vendor's answer is supplied in-process by a wrapper plugin's ``transmit`` (the vendor's own
simulator answers the first request; that answer is replayed for every later one), so what is
measured is the library's work only: normalising the phones, planning the requests, building and
signing each, parsing each answer, merging the outcomes, and (``--ledger``) the SQLite send
ledger writing every request before it leaves and after. Each vendor runs in a child process of
its own, so the peak resident memory (``ru_maxrss``) is that send's, with the input list of
phone strings and the imports included. CPU is ``time.process_time`` of the send alone.

    python benchmarks/bulk.py [--count 1000000] [--vendors opass,guodu,juse] [--ledger] [--shuffled]

The phones are in ascending order, as a list read with ORDER BY would be; ``--shuffled`` sends them
in a random order (the same one every run) instead.

Prints ``bulk <vendor> n=<count> cpu_s=<s> peak_mb=<m>`` per vendor (``bulk+ledger`` with the
ledger). Goals (issue #18): <= 2 s and <= 200 MB without the ledger, <= 4 s with it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
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


def one_send(vendor: str, count: int, ledger_url: str | None, shuffled: bool = False) -> dict[str, Any]:
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

    config = {**sim.demo_config(), "max_concurrency": 1}
    gw = Gateway({"providers": {vendor: config}}, ledger=ledger_url)
    gw.plugins.register(CannedVendor())
    demo = sim.demo_message()
    from smsgate import Message

    gw.send(Message(to=demo.to, text=demo.text, template_id=demo.template_id, params=demo.params,
                    sign_name=demo.sign_name), vendor)  # warm up: imports, the canned answer
    phones = [f"13{i:09d}" for i in range(count)]
    if shuffled:
        import random

        random.Random(18).shuffle(phones)
    message = Message(to=phones, text=demo.text, template_id=demo.template_id, params=demo.params,
                      sign_name=demo.sign_name, key="bulk" if ledger_url else None)
    if os.environ.get("BULK_NO_GC"):  # what the cyclic collector's passes over a million live objects cost
        import gc

        gc.disable()
    cpu = time.process_time()
    result = gw.send(message, vendor)
    cpu = time.process_time() - cpu
    accepted = len(result.accepted)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    sim.stop()
    assert accepted == count, (accepted, result.recipients[0])
    return {"cpu_s": cpu, "peak_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--vendors", default="opass,guodu,juse")
    parser.add_argument("--ledger", action="store_true", help="also each vendor with the SQLite send ledger")
    parser.add_argument("--shuffled", action="store_true", help="the phones in a random order, not ascending")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_send(*json.loads(args.child))))
        return
    tmp = tempfile.mkdtemp(prefix="smsgate-bulk-")
    for vendor in args.vendors.split(","):
        for ledger_url in ([None, f"sqlite:///{tmp}/{vendor}.sqlite3"] if args.ledger else [None]):
            out = subprocess.run([sys.executable, os.path.abspath(__file__), "--child",
                                  json.dumps([vendor, args.count, ledger_url, args.shuffled])],
                                 capture_output=True, text=True)
            if out.returncode:
                sys.exit(f"{vendor}: {out.stderr.strip()[-2000:]}")
            stats = json.loads(out.stdout.strip().splitlines()[-1])
            name = ("bulk+ledger" if ledger_url else "bulk") + ("/shuffled" if args.shuffled else "")
            print(f"{name} {vendor} n={args.count} cpu_s={stats['cpu_s']:.3f} peak_mb={stats['peak_mb']:.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
