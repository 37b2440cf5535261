"""Receiver benchmark: how fast does ``smsgate serve`` answer vendor pushes while handlers are slow?

Starts ``smsgate serve`` (waitress, the durable spool with synchronous=FULL, an events file) as a
subprocess on 127.0.0.1, with a handler that sleeps 2 s per call; the handlers run in serve's
handler process (``--no-handler-process``: in threads of the receiving process). Then N concurrent connections
(default 20, keep-alive) push, each in turn: guodu report arrays of 250 reports (the documented
maximum) and juse signed ``sms_report`` pushes (fresh time and nonce each). Every answer's latency
is measured at the client. Then it waits until the handlers have handled everything.

Prints p50/p99/max answer latency, pushes, events in (acknowledged), events handled, events
stored per second, and CPU:

- ``cpu_ms_per_push``: CPU of ``Receiver.handle`` for one guodu push of 250 reports (verify,
  parse, dedup keys, encode, commit to the spool), measured in this process with
  ``time.thread_time`` around each call, median of ``--cpu-pushes`` pushes (the same config and
  handlers as the server; the handler threads run meanwhile but are not counted);
  ``cpu_ms_per_push_with_handlers`` adds what the handler threads spent on those events (process
  CPU until every event is handled, per push); ``juse_cpu_ms_per_push`` is the same as the first
  for a signed 10-report juse push;
- ``server_cpu_ms_per_event_k``: the CPU of ``smsgate serve`` and its handler process
  (``/proc/<pid>/stat``: every thread, waitress included) over the push phase, per 1,000 events
  stored; ``receiving_cpu_ms_per_event_k`` the same for the receiving process alone (without
  the handler process), the one whose GIL the answers wait for.

Goals (issue 18): cpu_ms_per_push <= 2, p99 <= 100 ms with 20 connections on 2 vCPUs, >= 60,000
events stored per second, events handled == events in. The last line repeats the headline figures:
``callbacks cpu_ms_per_push=<ms> p99_ms=<ms> events_per_s=<n>``.

    python benchmarks/callbacks.py [--connections 20] [--pushes 10] [--cpu-pushes 200] [--json]
    python benchmarks/callbacks.py --stages 80     # CPU per stage of a guodu push, no server
    python benchmarks/callbacks.py --stages 80 --stdlib-json   # the same without orjson

Needs the guodu and juse plugins installed (``pip install -e plugins/guodu -e plugins/juse``) and
waitress (``pip install -e '.[serve]'``); orjson (``'.[speedups]'``) is used when installed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

# -- the handler smsgate serve loads (--handler callbacks:slow_handler) ---------------------------
try:
    from smsgate.receiving import handler_options
except ImportError:  # pragma: no cover
    def handler_options(**_):
        return lambda f: f


@handler_options(batch=True, batch_size=500, workers=16)
def slow_handler(items):
    """Sleeps 2 s per call (a slow database, a slow webhook), then counts what it handled."""
    time.sleep(float(os.environ.get("BENCH_HANDLER_SLEEP", "2")))
    with open(os.environ["BENCH_HANDLED_FILE"], "a", encoding="utf-8") as fh:
        fh.write(f"{len(items)}\n")


# -- the benchmark ------------------------------------------------------------------------------------
GUODU = {"oper_id": "bench", "oper_pass": "bench-pass", "base_url": "http://127.0.0.1:9",
         "push_allow_ips": ["127.0.0.1"]}  # guodu signs no push: the allow-list protects it


def guodu_body(conn_no: int, push_no: int, size: int = 250) -> bytes:
    items = [{"msg": "发送成功", "mobile": f"139{conn_no:02d}{push_no:03d}{i:03d}"[:11],
              "msgId": f"G{conn_no:02d}{push_no:04d}", "reportTime": "2024-09-18 11:50:16", "status": 0}
             for i in range(size)]
    return json.dumps(items, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def juse_push(sim, conn_no: int, push_no: int, size: int = 10) -> tuple[bytes, dict[str, str]]:
    dtos = [{"sendRecordId": f"J{conn_no:02d}{push_no:04d}{i:03d}", "sendStatus": 1,
             "reportDate": "2024-09-18 11:50:16", "remark": "发送成功"} for i in range(size)]
    body = sim.callback_body("sms_report", sendSmsRecordDtoList=dtos)
    return body, sim.callback_headers("sms_report", timestamp=int(time.time()), nonce=uuid.uuid4().hex)


def proc_cpu_seconds(pid: int, children: bool = True) -> float:
    """User + system CPU of process ``pid`` (every thread) and of its live children (the handler
    process) from /proc; NaN where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    spent = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    if children:
        try:
            with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
                spent += sum(proc_cpu_seconds(int(child), False) for child in fh.read().split())
        except OSError:
            pass
    return spent


def in_process_cpu(cfg: str, tmp: str, juse: object, pushes: int, juse_records: int) -> dict[str, float]:
    """CPU of ``Receiver.handle`` per push, measured in this process (see the module docstring)."""
    from smsgate import CallbackRequest, Gateway
    from smsgate.receiving import Receiver

    receiver = Receiver(Gateway(cfg), spool=os.path.join(tmp, "cpu-spool.sqlite3"),
                        events_jsonl=os.path.join(tmp, "cpu-events.jsonl"))
    receiver.add_handler(slow_handler, name="callbacks.slow_handler")
    headers = [("Content-Type", "application/json;charset=UTF-8")]

    def guodu(n: int) -> CallbackRequest:
        return CallbackRequest(method="POST", path="/callbacks/guodu", headers=headers,
                               body=guodu_body(90 + n % 10, n // 10), remote_addr="127.0.0.1")

    def timed(provider: str, request: CallbackRequest) -> float:
        t0 = time.thread_time()
        answer = receiver.handle(provider, request)
        spent = time.thread_time() - t0
        if answer.status != 200:
            raise RuntimeError(f"in-process {provider} push answered {answer.status}: {answer.body[:200]!r}")
        return spent

    try:
        timed("guodu", guodu(pushes))  # warm-up: first push starts the handler threads, builds converters
        receiver.drain(60)
        requests = [guodu(n) for n in range(pushes)]
        process0 = time.process_time()
        guodu_cpu = [timed("guodu", r) for r in requests]
        if not receiver.drain(600):
            raise RuntimeError("in-process handlers did not finish")
        with_handlers = (time.process_time() - process0) / pushes
        juse_cpu = []
        for n in range(pushes):
            body, jheaders = juse_push(juse, 90 + n % 10, 1000 + n, juse_records)
            juse_cpu.append(timed("juse", CallbackRequest(method="POST", path="/callbacks/juse",
                                                           headers=list(jheaders.items()), body=body,
                                                           remote_addr="127.0.0.1")))
        receiver.drain(600)
    finally:
        receiver.close()
    return {"cpu_ms_per_push": round(statistics.median(guodu_cpu) * 1000, 3),
            "cpu_ms_per_push_with_handlers": round(with_handlers * 1000, 3),
            "juse_cpu_ms_per_push": round(statistics.median(juse_cpu) * 1000, 3)}


def stages(cfg: str, tmp: str, pushes: int) -> dict[str, float]:
    """CPU of each stage of a guodu push of 250 reports, and of the handlers' work on it, in one
    thread (``time.thread_time``, median over ``pushes``): what ``--stages`` prints."""
    from smsgate import CallbackRequest, Gateway
    from smsgate.receiving import Receiver, store

    receiver = Receiver(Gateway(cfg), spool=os.path.join(tmp, "stages-spool.sqlite3"),
                        events_jsonl=os.path.join(tmp, "stages-events.jsonl"))
    receiver.add_handler(slow_handler, name="callbacks.slow_handler")
    spool, dispatcher, gateway = receiver.spool, receiver.dispatcher, receiver.gateway
    spent: dict[str, list[float]] = {}

    def timed(stage: str, fn):
        t0 = time.thread_time()
        value = fn()
        spent.setdefault(stage, []).append(time.thread_time() - t0)
        return value

    try:
        for n in range(pushes):  # the handler threads are not started: the loop below runs them
            request = CallbackRequest(method="POST", path="/callbacks/guodu", body=guodu_body(n % 100, n // 100),
                                      remote_addr="127.0.0.1")
            result = timed("verify + parse", lambda: gateway.handle_callback("guodu", request))
            events, native = list(result.events), result.json_native  # as Receiver.handle passes them
            timed("dedup keys", lambda: store.push_keys(events))
            timed("encode payloads", lambda: store.encode_events([(e, "report") for e in events], native))
            timed("put (keys, payloads, commit)", lambda: spool.put(events, json_native=native))
        for handler in dispatcher.handlers.values():
            while True:
                batch = timed(f"claim {handler.name}", lambda: spool.claim(handler.name, dispatcher.owner, 250))
                if not batch:
                    break
                timed(f"call {handler.name}", lambda: handler.fn(batch))
                timed(f"complete {handler.name}", lambda: spool.complete(handler.name, [i.id for i in batch]))
    finally:
        receiver.close()
    return {stage: round(statistics.median(values) * 1000, 3) for stage, values in spent.items()}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--pushes", type=int, default=10, help="guodu pushes per connection (and as many juse)")
    parser.add_argument("--juse-records", type=int, default=10, help="reports per juse push")
    parser.add_argument("--handler-sleep", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=None,
                        help="smsgate serve --threads (default: serve's own default)")
    parser.add_argument("--no-handler-process", action="store_true",
                        help="smsgate serve --no-handler-process: the handlers run in the receiving process")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="pushes per second over all connections (0: each connection pushes as fast as "
                             "it is answered, i.e. saturation)")
    parser.add_argument("--cpu-pushes", type=int, default=200,
                        help="guodu (and juse) pushes for the in-process CPU measurement (0: skip it)")
    parser.add_argument("--stages", type=int, default=0, metavar="N",
                        help="only measure the CPU of each stage over N guodu pushes in this process, and exit")
    parser.add_argument("--stdlib-json", action="store_true",
                        help="measure this process's pushes (--stages, the cpu_ms figures) with the standard "
                             "library's JSON even where orjson (smsgate[speedups]) is installed; the server "
                             "still uses orjson")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.stdlib_json:
        from smsgate import wire

        wire._orjson_module = None

    try:
        from smsgate_juse.simulator import JuseSimulator
        import smsgate_guodu.plugin  # noqa: F401
    except ImportError as exc:
        print(f"needs the juse and guodu plugins: {exc}", file=sys.stderr)
        return 2
    juse = JuseSimulator()  # used only to sign pushes as the vendor does; its server is not started

    tmp = tempfile.mkdtemp(prefix="smsgate-bench-")
    cfg = os.path.join(tmp, "smsgate.toml")
    with open(cfg, "w", encoding="utf-8") as fh:
        fh.write("[providers.guodu]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in GUODU.items()))
        fh.write(f'[providers.juse]\nbase_url = "http://127.0.0.1:9/api"\napp_id = "{juse.app_id}"\n'
                 f'app_secret = "{juse.app_secret}"\n')
    handled_file = os.path.join(tmp, "handled.txt")
    if args.stages:
        os.environ["BENCH_HANDLED_FILE"] = os.path.join(tmp, "stages-handled.txt")
        os.environ["BENCH_HANDLER_SLEEP"] = "0"
        for stage, ms in stages(cfg, tmp, args.stages).items():
            print(f"{stage:>40}: {ms} ms")
        return 0
    cpu: dict[str, float] = {}
    if args.cpu_pushes:
        os.environ["BENCH_HANDLED_FILE"] = os.path.join(tmp, "cpu-handled.txt")
        os.environ["BENCH_HANDLER_SLEEP"] = "0"  # the in-process run counts CPU, not the handler's sleep
        cpu = in_process_cpu(cfg, tmp, juse, args.cpu_pushes, args.juse_records)
    env = dict(os.environ, BENCH_HANDLED_FILE=handled_file, BENCH_HANDLER_SLEEP=str(args.handler_sleep),
               PYTHONPATH=os.pathsep.join(filter(None, [os.path.dirname(os.path.abspath(__file__)),
                                                        os.environ.get("PYTHONPATH")])))
    env.pop("SMSGATE_PLUGINS", None)
    spool = os.path.join(tmp, "spool.sqlite3")
    proc = subprocess.Popen([sys.executable, "-m", "smsgate.cli", "serve", "--config", cfg, "--port", "0",
                             *(["--threads", str(args.threads)] if args.threads else []), "--spool", spool,
                             "--events-jsonl", os.path.join(tmp, "events.jsonl"),
                             "--handler", "callbacks:slow_handler",
                             *(["--no-handler-process"] if args.no_handler_process else [])],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True)
    host = port = None
    server_kind = "waitress"
    for line in proc.stderr:
        if "no_waitress" in line:
            server_kind = "wsgiref (waitress not installed)"
        m = re.search(r"receiving on http://([\d.]+):(\d+)", line)
        if m:
            host, port = m.group(1), int(m.group(2))
            break
    if port is None:
        print("smsgate serve did not start", file=sys.stderr)
        return 1
    threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()

    # bodies built before the clock starts (juse ones are signed at send time: fresh time and nonce)
    guodu_bodies = {(c, p): guodu_body(c, p) for c in range(args.connections) for p in range(args.pushes)}
    latencies: dict[str, list[float]] = {"guodu": [], "juse": []}
    events_in = {"guodu": 0, "juse": 0}
    failures: list[str] = []
    lock = threading.Lock()
    start_gate = threading.Barrier(args.connections)

    def connection(c: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=30)
        start_gate.wait()
        # paced mode: connection c pushes on its own schedule, spread evenly over the connections
        period = args.connections / args.rate if args.rate else 0.0
        next_at = time.perf_counter() + (c * period / args.connections if period else 0.0)
        for p in range(args.pushes):
            for vendor in ("guodu", "juse"):
                if period:
                    delay = next_at - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                    next_at += period
                if vendor == "guodu":
                    body, headers, n = guodu_bodies[(c, p)], {"Content-Type": "application/json;charset=UTF-8"}, 250
                else:
                    body, headers = juse_push(juse, c, p, args.juse_records)
                    n = args.juse_records
                t0 = time.perf_counter()
                conn.request("POST", f"/callbacks/{vendor}", body=body, headers=headers)
                resp = conn.getresponse()
                resp.read()
                elapsed = time.perf_counter() - t0
                with lock:
                    latencies[vendor].append(elapsed)
                    if resp.status == 200:
                        events_in[vendor] += n
                    else:
                        failures.append(f"{vendor} HTTP {resp.status}")
        conn.close()

    threads = [threading.Thread(target=connection, args=(c,)) for c in range(args.connections)]
    t_start = time.perf_counter()
    server_cpu0 = proc_cpu_seconds(proc.pid)
    receiving_cpu0 = proc_cpu_seconds(proc.pid, children=False)
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    push_seconds = time.perf_counter() - t_start
    server_cpu = proc_cpu_seconds(proc.pid) - server_cpu0
    receiving_cpu = proc_cpu_seconds(proc.pid, children=False) - receiving_cpu0

    total_in = sum(events_in.values())
    deadline = time.monotonic() + 600
    handled = 0
    while time.monotonic() < deadline:
        if os.path.exists(handled_file):
            with open(handled_file, encoding="utf-8") as fh:
                handled = sum(int(x) for x in fh.read().split())
        if handled >= total_in:
            break
        time.sleep(0.2)
    drain_seconds = time.perf_counter() - t_start
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)

    import sqlite3

    with sqlite3.connect(spool) as db:
        stored = db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    all_lat = latencies["guodu"] + latencies["juse"]
    result = {
        "server": server_kind, "connections": args.connections, "threads": args.threads or "default",
        "rate": args.rate or "saturation",
        "pushes": len(all_lat), "failed_pushes": len(failures),
        "events_in": total_in, "events_stored": stored, "events_handled": handled,
        "handler_sleep_s": args.handler_sleep,
        "p50_ms": round(percentile(all_lat, 0.50) * 1000, 1), "p99_ms": round(percentile(all_lat, 0.99) * 1000, 1),
        "max_ms": round(max(all_lat) * 1000, 1),
        "guodu_p50_ms": round(percentile(latencies["guodu"], 0.50) * 1000, 1),
        "guodu_p99_ms": round(percentile(latencies["guodu"], 0.99) * 1000, 1),
        "juse_p50_ms": round(percentile(latencies["juse"], 0.50) * 1000, 1),
        "juse_p99_ms": round(percentile(latencies["juse"], 0.99) * 1000, 1),
        "answers_over_1s": sum(1 for x in all_lat if x > 1.0),
        "push_phase_s": round(push_seconds, 2), "events_per_s": round(total_in / push_seconds),
        "all_handled_after_s": round(drain_seconds, 2),
        "server_cpu_s": round(server_cpu, 2),
        "server_cpu_ms_per_event_k": round(server_cpu * 1000 / max(1, total_in) * 1000, 1),
        "receiving_cpu_ms_per_event_k": round(receiving_cpu * 1000 / max(1, total_in) * 1000, 1),
        **cpu,
        "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2), "python": sys.version.split()[0],
    }
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:>22}: {v}")
        goal = (result["p99_ms"] <= 100 and result["events_per_s"] >= 60000 and handled == total_in
                and not failures and cpu.get("cpu_ms_per_push", 0) <= 2)
        print(f"{'goals met':>22}: {'yes' if goal else 'NO'} (cpu_ms_per_push <= 2, p99 <= 100 ms, "
              f">= 60,000 events/s, events handled == events in)")
        print(f"callbacks cpu_ms_per_push={cpu.get('cpu_ms_per_push', 'n/a')} p99_ms={result['p99_ms']} "
              f"events_per_s={result['events_per_s']}")
    if failures:
        print("failures: " + ", ".join(sorted(set(failures))), file=sys.stderr)
    return 0 if handled == total_in and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
