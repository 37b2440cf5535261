"""``smsgate serve`` runs the handlers in a child process (``smsgate work``) on the same spool:
the handlers run in another pid, a killed child is started again and its events are still
handled, the child dies with the parent, SIGTERM stops both, and a child that cannot start
stops serve with one line. Real subprocesses; every wait is for a condition, with a generous
limit (no timed assertions)."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from smsgate.default_plugins.loopback import signature
from smsgate.receiving import Dispatcher, Spool
from smsgate.receiving.dispatcher import Handler
from smsgate.receiving.sinks import JsonlSink
from smsgate.testing import SimulatorServer

SECRET = "handler-process-secret"

HANDLER = '''
import os

def record(report):
    if os.environ.get("HP_TEST_PRINT"):
        print("x" * 100_000)  # more than a pipe holds
    with open(os.environ["HP_TEST_HANDLED"], "a", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()} {report.message_id}\\n")
'''


@pytest.fixture
def setup(tmp_path):
    (tmp_path / "smsgate.toml").write_text(
        f'[providers.loopback]\nbase_url = "http://127.0.0.1:9"\napi_secret = "{SECRET}"\n', encoding="utf-8")
    (tmp_path / "hp_handler.py").write_text(HANDLER, encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    env["HP_TEST_HANDLED"] = str(tmp_path / "handled.txt")
    args = ["--config", tmp_path / "smsgate.toml", "--spool", tmp_path / "spool.sqlite3",
            "--events-jsonl", tmp_path / "events.jsonl", "--handler", "hp_handler:record"]
    return args, env


def push(url, batch_no, per_push=3):
    reports = [{"msgId": f"M{batch_no:04d}-{j}", "phone": "13800138000", "status": "DELIVERED", "time": "t"}
               for j in range(per_push)]
    body = json.dumps({"reports": reports}).encode()
    ts, nonce = str(int(time.time())), f"n-{batch_no}-{time.monotonic_ns()}"
    headers = {"Content-Type": "application/json", "X-Timestamp": ts, "X-Nonce": nonce,
               "X-Signature": signature(SECRET, ts, nonce, body)}
    assert SimulatorServer.push(url + "/callbacks/loopback", body, headers, timeout=30).status == 200
    return {r["msgId"] for r in reports}


def handled(tmp_path):
    """{message id: [pids that handled it]} from the test handler's file."""
    seen: dict[str, list[int]] = {}
    path = tmp_path / "handled.txt"
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            pid, mid = line.split()
            seen.setdefault(mid, []).append(int(pid))
    return seen


def events_file(tmp_path):
    path = tmp_path / "events.jsonl"
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def wait_for(condition, limit=60.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def child_pid(serve):
    """The handler process's pid, from serve's last line about it."""
    for line in reversed(serve.stderr):
        m = re.search(r"run in process (\d+)|handler_process_restarted pid=(\d+)", line)
        if m:
            return int(m.group(1) or m.group(2))
    raise AssertionError("no handler process line:\n" + "".join(serve.stderr))


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def parent_of(pid):
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])


def health(url):
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")


def test_handlers_run_in_a_child_process_and_sigterm_stops_both(tmp_path, setup, start_serve):
    args, env = setup
    serve = start_serve(args, env)
    child = child_pid(serve)
    assert child != serve.pid and parent_of(child) == serve.pid
    assert health(serve.url) == (200, {"ok": True, "spool": "writable", "dispatcher": "running"})
    ids = push(serve.url, 1) | push(serve.url, 2)
    assert wait_for(lambda: set(handled(tmp_path)) == ids and len(events_file(tmp_path)) == len(ids))
    assert {pid for pids in handled(tmp_path).values() for pid in pids} == {child}
    serve.send_signal(signal.SIGTERM)
    assert serve.reap() == 0
    assert not alive(child)
    with Spool(tmp_path / "spool.sqlite3") as spool:
        counts = spool.counts()
    assert all(h["leased"] == 0 and h["pending"] == 0 for h in counts["handlers"].values()), counts
    assert "Traceback" not in "".join(serve.stderr)


def test_a_killed_child_is_started_again_and_nothing_is_lost(tmp_path, setup, start_serve):
    args, env = setup
    serve = start_serve(args, env)
    first = child_pid(serve)
    ids = push(serve.url, 1)
    assert wait_for(lambda: set(handled(tmp_path)) >= ids)
    os.kill(first, signal.SIGKILL)
    # pushes keep being answered while there is no handler process; /healthz says so
    ids |= push(serve.url, 2)
    assert wait_for(lambda: "handler_process_restarted" in "".join(serve.stderr))
    second = child_pid(serve)
    assert second != first and parent_of(second) == serve.pid
    ids |= push(serve.url, 3)
    assert wait_for(lambda: set(handled(tmp_path)) == ids and len(events_file(tmp_path)) == len(ids))
    assert health(serve.url)[0] == 200
    assert sorted(e["message_id"] for e in events_file(tmp_path)) == sorted(ids)  # each once
    assert any(second in pids for pids in handled(tmp_path).values())
    assert "handler_process_exited" in "".join(serve.stderr)
    serve.send_signal(signal.SIGTERM)
    assert serve.reap() == 0
    assert not alive(second)


def test_the_child_dies_with_the_parent(tmp_path, setup, start_serve):
    args, env = setup
    serve = start_serve(args, env)
    child = child_pid(serve)
    ids = push(serve.url, 1)
    serve.proc.kill()
    serve.reap()
    assert wait_for(lambda: not alive(child))
    # what it had taken it handled or gave back: a new serve handles the rest, each event once in the file
    serve = start_serve(args, env)
    ids |= push(serve.url, 2)
    assert wait_for(lambda: set(handled(tmp_path)) == ids and len(events_file(tmp_path)) == len(ids))
    assert sorted(e["message_id"] for e in events_file(tmp_path)) == sorted(ids)
    serve.send_signal(signal.SIGTERM)
    assert serve.reap() == 0


def test_a_child_that_cannot_start_stops_serve_with_one_line(tmp_path, setup):
    args, env = setup
    args = [*args[:-1], "hp_handler:no_such_function"]
    proc = subprocess.run([sys.executable, "-m", "smsgate.cli", "serve", "--port", "0", *map(str, args)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("smsgate: error: cannot load handler 'hp_handler:no_such_function'"), \
        proc.stderr


def handled_by_serve_itself(tmp_path, serve):
    """A push to ``serve`` is handled in the serving process, with no child; then serve stops."""
    ids = push(serve.url, 1)
    assert wait_for(lambda: set(handled(tmp_path)) == ids)
    assert {pid for pids in handled(tmp_path).values() for pid in pids} == {serve.pid}
    assert not any("run in process" in line for line in serve.stderr)
    serve.send_signal(signal.SIGTERM)
    assert serve.reap() == 0


def test_no_handler_process_runs_them_in_the_serving_process(tmp_path, setup, start_serve):
    args, env = setup
    serve = start_serve([*args, "--no-handler-process"], env)
    handled_by_serve_itself(tmp_path, serve)


def test_the_config_file_says_where_the_handlers_run(tmp_path, setup, start_serve):
    args, env = setup
    config = tmp_path / "smsgate.toml"
    config.write_text(config.read_text(encoding="utf-8") + '[receiver]\nhandlers = "threads"\nthreads = 3\n',
                      encoding="utf-8")
    serve = start_serve(args, env)
    handled_by_serve_itself(tmp_path, serve)
    # the command line still decides over the file
    serve = start_serve([*args, "--handler-process"], env)
    assert child_pid(serve) != serve.pid
    serve.send_signal(signal.SIGTERM)
    assert serve.reap() == 0
    # "elsewhere" runs none, so handler options are refused as with --handlers-elsewhere
    config.write_text(config.read_text(encoding="utf-8").replace('"threads"', '"elsewhere"'), encoding="utf-8")
    refused = subprocess.run([sys.executable, "-m", "smsgate.cli", "serve", "--port", "0", *map(str, args)],
                             env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and refused.stderr.splitlines() == [
        'smsgate: error: [receiver] handlers = "elsewhere" runs no handler: give --events-jsonl and --handler '
        'to smsgate work'], refused.stderr


def test_smsgate_work_handles_what_another_process_stores(tmp_path, setup):
    args, env = setup
    with Spool(tmp_path / "spool.sqlite3"):
        pass
    proc = subprocess.Popen([sys.executable, "-m", "smsgate.cli", "work", *map(str, args)], env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        line = proc.stderr.readline()
        assert "handling events of spool" in line and "hp_handler:record" in line, line
        threading.Thread(target=proc.stderr.read, daemon=True).start()
        from smsgate import DeliveryReport, Status

        with Spool(tmp_path / "spool.sqlite3") as spool:
            spool.put([DeliveryReport(provider="loopback", message_id="W1", phone="13800138000",
                                      status=Status.DELIVERED)])
        assert wait_for(lambda: set(handled(tmp_path)) == {"W1"})
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0


def test_dispatcher_watch_wakes_workers_for_another_process_puts(tmp_path):
    """With a poll interval far beyond the wait, only the watch can find the other connection's put."""
    from smsgate import DeliveryReport, Status

    seen = []
    with Spool(tmp_path / "s.sqlite3") as spool, Spool(tmp_path / "s.sqlite3") as other:
        dispatcher = Dispatcher(spool, [Handler(name="h", fn=seen.append)], poll_interval=3600, watch_interval=0.02)
        dispatcher.start()
        try:
            assert wait_for(lambda: dispatcher.alive())
            time.sleep(0.1)  # the workers are asleep on the condition now
            other.put([DeliveryReport(provider="loopback", message_id="X", phone="13800138000",
                                      status=Status.DELIVERED)])
            assert wait_for(lambda: len(seen) == 1, limit=30)
        finally:
            dispatcher.stop()


def test_events_file_has_one_writer_at_a_time(tmp_path):
    sink = JsonlSink(tmp_path / "events.jsonl")
    with open(tmp_path / "events.jsonl", "ab") as fh:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        sink.close()
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # free once it is closed


def test_handlers_elsewhere_leaves_them_to_smsgate_work(tmp_path, setup, start_serve):
    args, env = setup
    handler_args = args[4:]  # --events-jsonl ... --handler ...
    assert handler_args[0] == "--events-jsonl"
    refused = subprocess.run([sys.executable, "-m", "smsgate.cli", "serve", "--port", "0", "--handlers-elsewhere",
                              *map(str, args)], env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1, refused.stderr
    work = subprocess.Popen([sys.executable, "-m", "smsgate.cli", "work", *map(str, args)], env=env,
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        assert "handling events of spool" in work.stderr.readline()
        threading.Thread(target=work.stderr.read, daemon=True).start()
        serve = start_serve([*args[:4], "--handlers-elsewhere"], env)
        ids = push(serve.url, 1)
        assert wait_for(lambda: set(handled(tmp_path)) == ids and len(events_file(tmp_path)) == len(ids))
        assert {pid for pids in handled(tmp_path).values() for pid in pids} == {work.pid}
        serve.send_signal(signal.SIGTERM)
        assert serve.reap() == 0
    finally:
        work.send_signal(signal.SIGTERM)
        assert work.wait(60) == 0


def test_what_a_handler_prints_does_not_block_it(tmp_path, setup, start_serve):
    args, env = setup
    env["HP_TEST_PRINT"] = "1"
    serve = start_serve(args, env)
    ids = push(serve.url, 1) | push(serve.url, 2)
    assert wait_for(lambda: set(handled(tmp_path)) == ids)
    serve.send_signal(signal.SIGTERM)
    assert serve.reap() == 0
