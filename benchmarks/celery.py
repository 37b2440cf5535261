"""Sending through Celery vs directly: the same N one-recipient sends, each with its own key,
through a Gateway with a send ledger in this process (2 threads), then through Celery (RabbitMQ
broker, enqueued from 8 threads, 2 worker processes, the same kind of ledger), against the
loopback simulator. Counts what the simulator received: a phone twice is a duplicate, a message
without an answer is lost.
Last line: ``celery/direct=<ratio> duplicates=<n> lost=<n>`` (ratio of throughputs).

    python benchmarks/celery.py [--n 5000] [--ledger sqlite|postgres] [--broker amqp://...]
"""

from __future__ import annotations

import os
import sys

# this file is named like the library it measures: keep its folder off the import path
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import argparse
import logging
import signal
import subprocess
import tempfile
import textwrap
import threading
import time
import uuid

import structlog

from smsgate import Gateway, Message
from smsgate.integrations.celery import enqueue
from smsgate.testing.loopback import LoopbackSimulator

APP = """
from celery import Celery
from smsgate.integrations.celery import configure, register_send_task
app = Celery("smsgate_bench", broker={broker!r}, backend="rpc://")
configure(app)
app.conf.task_default_queue = {queue!r}
send_sms = register_send_task(app, {config!r})
"""


ENQUEUE_THREADS = 8


class CountingSimulator(LoopbackSimulator):
    def __init__(self) -> None:
        super().__init__()
        self.phones: list[str] = []
        self.backend.records = _Discard()
        self.requests = _Discard()

    def handle(self, request):
        if request.path.endswith("/send"):
            self.phones.extend(request.json()["phones"])
        return super().handle(request)


class _Discard(list):
    def append(self, item):
        pass


def write_config(folder: str, url: str, ledger: str, name: str) -> str:
    path = os.path.join(folder, f"{name}.toml")
    with open(path, "w") as fh:
        fh.write(f"[ledger]\n{ledger}\n" + textwrap.dedent(f"""
            [providers.loopback]
            base_url = "{url}"
            api_key = "demo-key"
            api_secret = "demo-secret"
        """))
    return path


def ledger_table(kind: str, folder: str, name: str) -> str:
    if kind == "sqlite":
        return f'url = "sqlite:///{folder}/{name}.sqlite3"'
    return f'url = "postgresql://postgres@127.0.0.1:5432/test"\nschema = "bench_{uuid.uuid4().hex[:8]}_{name}"'


def direct(config: str, phones: list[str]) -> float:
    gw = Gateway(config)
    it = iter(phones)
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                phone = next(it, None)
            if phone is None:
                return
            gw.send(Message(to=[phone], template_id="LB", params=["1"], key=uuid.uuid4().hex))

    t0 = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    gw.close()
    return elapsed


def via_celery(sim: CountingSimulator, folder: str, config: str, broker: str, phones: list[str]) -> tuple[float, int]:
    import importlib

    queue = f"bench-{uuid.uuid4().hex[:8]}"
    with open(os.path.join(folder, "bench_app.py"), "w") as fh:
        fh.write(APP.format(broker=broker, queue=queue, config=config))
    sys.path.insert(0, folder)
    mod = importlib.import_module("bench_app")
    env = {**os.environ, "PYTHONPATH": folder}
    workers = [subprocess.Popen([sys.executable, "-m", "celery", "-A", "bench_app", "worker", "--pool", "threads", "--concurrency", "1",
                                 "-Q", queue, "-n", f"w{i}@%h", "--without-gossip", "--without-mingle",
                                 "--without-heartbeat", "--loglevel", "ERROR"], cwd=folder, env=env)
               for i in range(2)]
    try:
        # wait for both workers, so their start-up is not counted
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            replies = mod.app.control.ping(timeout=1.0)
            if len(replies) >= 2:
                break
        t0 = time.perf_counter()
        # a web app enqueues from many request threads at once; each publish waits for the
        # broker's confirm, so one thread alone would measure the confirm round trip
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(ENQUEUE_THREADS) as pool:
            results = list(pool.map(lambda p: enqueue(mod.send_sms, Message(to=[p], template_id="LB", params=["1"]),
                                                      provider="loopback"), phones))
        print(f"celery: enqueued {len(phones)} in {time.perf_counter() - t0:.2f} s", flush=True)
        # wait on the simulator, not on AsyncResult.get: the rpc result consumer polls busily and
        # would starve the simulator's threads of the GIL in this process
        deadline = time.monotonic() + 600
        while len(sim.phones) < len(phones) and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        lost = 0
        for r in results:
            try:
                r.get(timeout=600)
            except Exception:
                lost += 1
        return elapsed, lost
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            w.wait(30)
        with mod.app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--ledger", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--broker", default="amqp://guest:guest@127.0.0.1:5672//")
    args = ap.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING),
                        cache_logger_on_first_use=True)
    logging.getLogger("celery").setLevel(logging.WARNING)
    sim = CountingSimulator().start()
    with tempfile.TemporaryDirectory() as folder:
        d_phones = [f"138{i:08d}" for i in range(args.n)]
        c_phones = [f"139{i:08d}" for i in range(args.n)]
        d_time = direct(write_config(folder, sim.url, ledger_table(args.ledger, folder, "direct"), "direct"), d_phones)
        c_config = write_config(folder, sim.url, ledger_table(args.ledger, folder, "celery"), "celery")
        c_time, lost = via_celery(sim, folder, c_config, args.broker, c_phones)
    sim.stop()
    duplicates = len(sim.phones) - len(set(sim.phones))
    lost += len(set(c_phones) - set(sim.phones))
    print(f"direct: {args.n} sends in {d_time:.2f} s ({args.n / d_time:.0f}/s), 2 threads, {args.ledger} ledger")
    print(f"celery: {args.n} sends in {c_time:.2f} s ({args.n / c_time:.0f}/s), 2 workers, {args.ledger} ledger")
    print(f"celery/direct={d_time / c_time:.2f} duplicates={duplicates} lost={lost}")


if __name__ == "__main__":
    main()
