"""The send ledger's cost: the pipeline benchmark's one-recipient sends (each with its own key)
through a Gateway with the SQLite ledger, with the PostgreSQL ledger and with none, in one run,
against the loopback simulator in its own process, at concurrency 1 and 16. Prints rates and,
last, ``ledger/plain sqlite c1=<r> c16=<r> postgres c1=<r> c16=<r>``.

    python benchmarks/ledger.py [--n 2000] [--rounds 3] [--postgres URL]
    python benchmarks/ledger.py --million      # one send of 1,000,000 recipients: CPU s, peak memory
    python benchmarks/ledger.py --postgres-synchronous off   # without waiting for PostgreSQL's flush

PostgreSQL defaults to $SMSGATE_TEST_POSTGRES or postgresql://postgres@127.0.0.1:5432/test; the
tables go in a fresh schema, dropped at the end.
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
import uuid

import structlog

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pipeline import POOL, run_threads, start_simulator  # noqa: E402

from smsgate import Gateway, Message  # noqa: E402
from smsgate.sending.ledger import open_ledger  # noqa: E402
from smsgate.sending.transport import Transport  # noqa: E402

DEFAULT_PG = os.environ.get("SMSGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def quiet() -> None:
    # an application configures logging: warnings only, loggers cached (as in benchmarks/pipeline.py)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
                        cache_logger_on_first_use=True)


def rates(args: argparse.Namespace) -> None:
    quiet()
    proc, url = start_simulator()
    tmp = tempfile.mkdtemp(prefix="smsgate-ledger-bench-")
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    ledgers = {"sqlite": open_ledger(f"sqlite:///{tmp}/ledger.sqlite3"),
               "postgres": open_ledger(args.postgres, schema=schema, synchronous=args.postgres_synchronous)}
    try:
        config = {"base_url": url, "api_key": "demo-key", "api_secret": "demo-secret", "max_concurrency": 1}
        gateways = {"plain": Gateway({"providers": {"loopback": config}}, transport=Transport(pool_maxsize=POOL))}
        for name, ledger in ledgers.items():
            gateways[name] = Gateway({"providers": {"loopback": config}}, transport=Transport(pool_maxsize=POOL),
                                     ledger=ledger)
        phones = [f"139{i:08d}" for i in range(args.n)]
        run = uuid.uuid4().hex[:8]
        counter = iter(range(10**9))

        def work(gw: Gateway, keyed: bool):
            def send(i: int) -> None:
                key = f"{run}-{next(counter)}" if keyed else None
                assert gw.send(Message(to=[phones[i]], template_id="LB_CODE", params=["1234"], key=key)).ok
            return send

        fns = {name: work(gw, name != "plain") for name, gw in gateways.items()}
        for fn in fns.values():  # warm up: connections, imports, tables
            run_threads(16, 200, fn)
        best: dict[tuple[str, int], float] = {}
        cpu: dict[str, float] = {}  # this process's CPU per send at c1, the best round (load moves it least)
        for _ in range(args.rounds):
            for conc in (1, 16):
                for name, fn in fns.items():  # alternating, so drift hits every variant alike
                    started = time.process_time()
                    rate = run_threads(conc, args.n, fn)
                    best[(name, conc)] = max(best.get((name, conc), 0.0), rate)
                    if conc == 1:
                        used = (time.process_time() - started) / args.n
                        cpu[name] = min(cpu.get(name, used), used)
        for conc in (1, 16):
            print(f"c{conc}: " + "   ".join(f"{name} {best[(name, conc)]:7.0f} sends/s" for name in fns))
        print("client CPU per send (c1): " + "   ".join(f"{name} {cpu[name] * 1e6:5.0f} us" for name in fns))
        ratio = {(name, conc): best[(name, conc)] / best[("plain", conc)] for name in ledgers for conc in (1, 16)}
        print(f"ledger/plain sqlite c1={ratio[('sqlite', 1)]:.2f} c16={ratio[('sqlite', 16)]:.2f} "
              f"postgres c1={ratio[('postgres', 1)]:.2f} c16={ratio[('postgres', 16)]:.2f}")
    finally:
        for gw in locals().get("gateways", {}).values():
            gw.close()
        ledgers["postgres"].drop_schema()
        proc.stdin.close()
        proc.wait(timeout=10)


def one_send(url: str, ledger_url: str | None, count: int) -> dict:
    """Child process: one send of ``count`` recipients; its CPU seconds and peak memory."""
    import resource

    quiet()
    config = {"base_url": url, "api_key": "demo-key", "api_secret": "demo-secret", "max_concurrency": 4}
    gw = Gateway({"providers": {"loopback": config}}, ledger=ledger_url)
    phones = [f"13{i:09d}" for i in range(count)]
    cpu, wall = time.process_time(), time.perf_counter()
    result = gw.send(Message(to=phones, template_id="LB_CODE", params=["1234"], key="million" if ledger_url else None))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert len(result.accepted) == count, (len(result.accepted), result.recipients[0])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    rows = None
    if ledger_url:  # counted in SQL: reading a million rows back would be the peak otherwise
        import sqlite3

        from smsgate.sending.ledger.sqlite import sqlite_path

        with sqlite3.connect(sqlite_path(ledger_url)) as db:  # one row per request; phones joined by commas
            rows = db.execute("SELECT COUNT(*), SUM(LENGTH(phones) - LENGTH(REPLACE(phones, ',', '')) + 1) "
                              "FROM ledger_requests WHERE key = 'million' AND outcome = 'accepted'").fetchone()
            own = db.execute("SELECT COUNT(*) FROM ledger_recipients WHERE key = 'million'").fetchone()[0]
        rows = {"requests": rows[0], "accepted": rows[1], "own": own}
    return {"cpu_s": round(cpu, 1), "wall_s": round(wall, 1), "peak_mib": round(peak), "ledger_rows": rows}


def million(args: argparse.Namespace) -> None:
    proc, url = start_simulator()
    tmp = tempfile.mkdtemp(prefix="smsgate-ledger-million-")
    try:
        for name, ledger_url in (("plain", None), ("sqlite", f"sqlite:///{tmp}/ledger.sqlite3")):
            out = subprocess.run([sys.executable, __file__, "--child", json.dumps([url, ledger_url, args.count])],
                                 capture_output=True, text=True, check=True)
            stats = json.loads(out.stdout.strip().splitlines()[-1])
            size = ""
            if ledger_url:
                path = f"{tmp}/ledger.sqlite3"
                size = f", file {sum(os.path.getsize(path + s) for s in ('', '-wal') if os.path.exists(path + s)) / 2**20:.0f} MiB"
            print(f"{name}: {args.count:,} recipients in one send: {stats['cpu_s']} CPU s, {stats['wall_s']} s wall, "
                  f"peak {stats['peak_mib']} MiB{size}" + (
                      ", ledger: {requests:,} request rows ({accepted:,} recipients accepted), {own:,} rows of "
                      "recipients of their own".format(**stats["ledger_rows"]) if ledger_url else ""))
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000, help="sends per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each is kept")
    parser.add_argument("--postgres", default=DEFAULT_PG, help="PostgreSQL URL")
    parser.add_argument("--postgres-synchronous", help="the ledger's synchronous_commit (default: the server's)")
    parser.add_argument("--million", action="store_true", help="one send of --count recipients instead")
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_send(*json.loads(args.child))))
    elif args.million:
        million(args)
    else:
        rates(args)


if __name__ == "__main__":
    main()
