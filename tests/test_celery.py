"""Celery on the real RabbitMQ: a send task safe to redeliver, and received events forwarded.

Real ``celery worker`` processes run the task; one is killed with SIGKILL mid-run, and afterwards
every message has exactly one record in the ledger and the simulator saw no phone twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

pytest.importorskip("celery", reason="the celery extra is not installed")

from smsgate import Gateway, Message, Outcome  # noqa: E402
from smsgate.integrations.celery import (CeleryForwarder, enqueue, message_from_json,  # noqa: E402
                                         message_to_json)
from smsgate.testing.loopback import LoopbackSimulator  # noqa: E402

APP = """
from celery import Celery
from smsgate.integrations.celery import configure, register_send_task

app = Celery("smsgate_test", broker={broker!r}, backend="rpc://")
configure(app)
app.conf.task_default_queue = {queue!r}
app.conf.broker_connection_retry_on_startup = True
send_sms = register_send_task(app, {config!r})
"""


class CountingSimulator(LoopbackSimulator):
    """The loopback vendor, a little slow (so a kill lands mid-send), counting each phone."""

    def __init__(self) -> None:
        super().__init__()
        self.phones: list[str] = []
        self._phones_lock = threading.Lock()

    def handle(self, request):
        if request.path.endswith("/send"):
            time.sleep(0.002)
            with self._phones_lock:
                self.phones.extend(request.json()["phones"])
        return super().handle(request)


def write_app(tmp_path, amqp_url, queue, sim) -> str:
    ledger = tmp_path / "ledger.sqlite3"
    config = tmp_path / "smsgate.toml"
    config.write_text(textwrap.dedent(f"""
        [ledger]
        url = "sqlite:///{ledger}"
        [providers.loopback]
        base_url = "{sim.url}"
        api_key = "demo-key"
        api_secret = "demo-secret"
    """))
    (tmp_path / "sms_app.py").write_text(APP.format(broker=amqp_url, queue=queue, config=str(config)))
    return str(config)


def start_worker(tmp_path, name: str, queue: str) -> subprocess.Popen:
    # the threads pool runs tasks inside the worker process, so SIGKILL takes the worker whole
    # (the solo pool was measured to stall for seconds between tasks with acks_late on RabbitMQ)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    log = open(tmp_path / f"{name}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "celery", "-A", "sms_app", "worker", "--pool", "threads", "--concurrency", "1",
                             "-Q", queue, "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
                             "--without-heartbeat", "--loglevel", "WARNING"],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)


def load_app(tmp_path):
    import importlib

    sys.path.insert(0, str(tmp_path))
    try:
        sys.modules.pop("sms_app", None)
        return importlib.import_module("sms_app")
    finally:
        sys.path.remove(str(tmp_path))


def stop(workers):
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
    for w in workers:
        try:
            w.wait(20)
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait()


def purge(app, queue):
    with app.connection_for_write() as conn:
        conn.default_channel.queue_delete(queue)


def test_message_json_round_trip():
    import datetime as dt

    for message in (Message(to=["13800138000"], template_id="T", params={"code": "1"}, key="k",
                            send_at=dt.datetime(2030, 1, 1, 9, tzinfo=dt.timezone.utc)),
                    Message.personalised({"13800138000": ["1"], "13900139000": ["2"]}, template_id="T"),
                    Message(to=["13800138000"], text="hi")):
        assert message_from_json(json.loads(json.dumps(message_to_json(message)))) == message


def test_worker_killed_mid_run_sends_no_phone_twice_and_loses_no_message(tmp_path, amqp_url, service_run_id):
    n = 2000
    queue = f"{service_run_id}-crash"
    sim = CountingSimulator().start()
    config = write_app(tmp_path, amqp_url, queue, sim)
    mod = load_app(tmp_path)
    workers = [start_worker(tmp_path, "w1", queue), start_worker(tmp_path, "w2", queue)]
    try:
        phones = [f"138{i:08d}" for i in range(n)]
        results = [enqueue(mod.send_sms, Message(to=[p], template_id="LB_CODE", params=["1"]), provider="loopback")
                   for p in phones]
        deadline = time.monotonic() + 120
        while len(sim.phones) < n // 4 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(sim.phones) >= n // 4, "the workers did not get going"
        workers[0].send_signal(signal.SIGKILL)  # mid-run: it may hold a task between send and settle
        workers[0].wait()
        # wait on the simulator first: AsyncResult.get polls busily and would starve the
        # simulator's threads (in this process) of the GIL; one phone may never arrive (the task
        # the kill cut off before its request), so n - 1 is enough to start collecting
        deadline = time.monotonic() + 300
        while len(sim.phones) < n - 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        answers = [r.get(timeout=300) for r in results]
    finally:
        stop(workers)
        purge(mod.app, queue)
        sim.stop()

    # the simulator received no phone twice, whatever the redeliveries
    assert len(sim.phones) == len(set(sim.phones))
    outcomes = [a["recipients"][0]["outcome"] for a in answers]
    assert set(outcomes) <= {Outcome.ACCEPTED.value, Outcome.UNKNOWN.value}
    # only a task cut off between its request and its settle may be unknown: at most the one the
    # killed worker was running
    assert outcomes.count(Outcome.UNKNOWN.value) <= 1
    assert set(sim.phones) >= {a["recipients"][0]["phone"] for a in answers
                               if a["recipients"][0]["outcome"] == Outcome.ACCEPTED.value}
    # every message has exactly one record in the ledger, under the key enqueue gave it
    with Gateway(config) as gw:
        for r, phone in zip(results, phones):
            record = gw.status(r.id)
            assert record is not None, f"no ledger record for {phone}"
            assert [row.phone for row in record.latest().values()] == [phone]


def test_redelivered_task_answers_from_the_ledger(tmp_path, amqp_url, service_run_id):
    queue = f"{service_run_id}-redeliver"
    sim = CountingSimulator().start()
    write_app(tmp_path, amqp_url, queue, sim)
    mod = load_app(tmp_path)
    workers = [start_worker(tmp_path, "w1", queue)]
    try:
        message = Message(to=["13800138000"], template_id="LB_CODE", params=["1"], key="order-1")
        first = enqueue(mod.send_sms, message, provider="loopback").get(timeout=60)
        # the same task delivered again (as after a lost ack): the ledger answers, nothing is sent
        again = mod.send_sms.apply_async(kwargs={"message": message_to_json(message), "provider": "loopback"})
        second = again.get(timeout=60)
    finally:
        stop(workers)
        purge(mod.app, queue)
        sim.stop()
    assert sim.phones == ["13800138000"]
    assert first["replayed"] is False and second["replayed"] is True
    assert first["recipients"] == second["recipients"]


def test_a_worker_without_a_ledger_refuses_to_send(tmp_path):
    from celery import Celery

    from smsgate import ConfigError
    from smsgate.integrations.celery import register_send_task

    app = Celery("t", broker="memory://")
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    task = register_send_task(app, {"providers": {"loopback": {}}})
    with pytest.raises(ConfigError, match="ledger"):
        enqueue(task, Message(to=["13800138000"], template_id="T", params=["1"]), provider="loopback")


def test_receiver_forwards_each_event_after_the_broker_confirmed(tmp_path, amqp_url, service_run_id):
    from celery import Celery

    from smsgate import Receiver
    from smsgate.integrations.celery import configure

    queue = f"{service_run_id}-events"
    app = Celery("fwd", broker=amqp_url)
    configure(app)
    sim = LoopbackSimulator().start()
    gw = Gateway({"providers": {"loopback": sim.demo_config()}})
    receiver = Receiver(gw, spool=tmp_path / "spool.sqlite3")
    receiver.add_handler(CeleryForwarder(app, queue=queue, origin="host-a"), name="celery", batch=True)
    try:
        with receiver:
            from smsgate.receiving import BackgroundServer

            with BackgroundServer(receiver.wsgi_app) as server:
                gw.send(Message(to=["13800138000", "13900139000"], template_id="LB_CODE", params=["1"]))
                answer = sim.push_reports(f"{server.url}/callbacks/loopback", time.time())
                assert answer.status == 200
                assert receiver.drain(30)
        bodies = []
        with app.connection_for_read() as conn:
            channel = conn.default_channel
            for _ in range(50):
                msg = channel.basic_get(queue, no_ack=True)
                if msg is None:
                    if len(bodies) >= 2:
                        break
                    time.sleep(0.1)
                    continue
                bodies.append(json.loads(msg.body))
    finally:
        with app.connection_for_write() as conn:
            conn.default_channel.queue_delete(queue)
        sim.stop()
    events = [b[0][0] for b in bodies]  # celery protocol 2: [args, kwargs, embed]
    assert sorted(e["phone"] for e in events) == ["13800138000", "13900139000"]
    assert {e["origin"] for e in events} == {"host-a"}
    assert all(e["kind"] == "report" and e["status"] == "delivered" for e in events)
