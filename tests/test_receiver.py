"""The receiver: verify -> parse -> spool -> answer, over WSGI (real HTTP) and ASGI (direct calls).

Uses the built-in loopback provider (signed pushes: HMAC, 15-minute window, nonce), so it does not
depend on the vendor plugins. No timed assertions: waits are for conditions, with generous limits.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time

import pytest

from smsgate import Gateway, hookimpl
from smsgate.receiving import BackgroundServer, Receiver
from smsgate.default_plugins.loopback import signature
from smsgate.models import DeliveryReport, Status
from smsgate.receiving import MemoryReplayStore
from smsgate.testing import SimulatorServer

SECRET = "test-secret"
NOW = 1_726_631_416.0


def config():
    return {"providers": {"loopback": {"base_url": "http://127.0.0.1:9", "api_key": "k", "api_secret": SECRET}}}


def report(msg_id="LB1", phone="13800138000", status="DELIVERED"):
    return {"msgId": msg_id, "phone": phone, "status": status, "time": "2024-09-18 11:50:16"}


def signed(reports, ts=NOW, nonce="n-1", secret=SECRET):
    body = json.dumps({"reports": reports}).encode()
    ts = str(int(ts))
    headers = {"Content-Type": "application/json", "X-Timestamp": ts, "X-Nonce": nonce,
               "X-Signature": signature(secret, ts, nonce, body)}
    return body, headers


@pytest.fixture
def make_receiver(tmp_path):
    made = []

    def make(clock=lambda: NOW, **kwargs):
        kwargs.setdefault("spool", tmp_path / "spool.sqlite3")
        rc = Receiver(Gateway(config(), clock=clock), poll_interval=0.05, **kwargs)
        made.append(rc)
        return rc

    yield make
    for rc in made:
        rc.close()


@pytest.fixture
def served(make_receiver):
    """(receiver, url, collected reports) with a collecting handler, over real HTTP."""
    rc = make_receiver()
    got: list = []
    rc.on_report(got.append, name="collect")
    with BackgroundServer(rc.wsgi_app) as srv:
        yield rc, srv.url + "/callbacks/loopback", got


def push(url, body, headers):
    return SimulatorServer.push(url, body, headers)


def test_signed_push_is_stored_answered_and_handled(served):
    rc, url, got = served
    resp = push(url, *signed([report("LB1"), report("LB2", status="FAILED")]))
    assert resp.status == 200 and resp.json() == {"code": "OK"}
    assert rc.drain()
    assert sorted((r.message_id, r.status) for r in got) == [("LB1", Status.DELIVERED), ("LB2", Status.FAILED)]
    assert all(isinstance(r, DeliveryReport) for r in got)


@pytest.mark.parametrize("case", ["forged", "stale_past", "stale_future", "no_headers"])
def test_refused_pushes_are_401_and_not_dispatched(served, case):
    rc, url, got = served
    body, headers = signed([report()])
    if case == "forged":
        body, headers = signed([report()], secret="someone-else")
    elif case == "stale_past":
        body, headers = signed([report()], ts=NOW - 16 * 60)
    elif case == "stale_future":
        body, headers = signed([report()], ts=NOW + 16 * 60)
    else:
        headers = {"Content-Type": "application/json"}
    resp = push(url, body, headers)
    assert resp.status == 401
    assert rc.spool.counts()["events"] == 0
    assert rc.drain() and got == []


def test_identical_retry_of_a_stored_push_gets_the_vendor_answer_and_is_handled_once(served):
    # our 2xx was lost on the way: the vendor pushes the same request again (same nonce)
    rc, url, got = served
    body, headers = signed([report("R1"), report("R2")], nonce="once")
    assert push(url, body, headers).status == 200
    again = push(url, body, headers)
    assert again.status == 200 and again.json() == {"code": "OK"}
    assert rc.drain()
    assert sorted(r.message_id for r in got) == ["R1", "R2"]
    assert rc.spool.counts()["events"] == 2


def test_replayed_nonce_with_new_events_is_refused(served):
    rc, url, got = served
    assert push(url, *signed([report("R1")], nonce="once")).status == 200
    # correctly signed, same nonce, but events that were never stored: a replay, refused
    assert push(url, *signed([report("R1"), report("NEW")], nonce="once")).status == 401
    # forged (wrong secret) with the used nonce and the stored events: refused
    assert push(url, *signed([report("R1")], nonce="once", secret="someone-else")).status == 401
    assert rc.drain()
    assert [r.message_id for r in got] == ["R1"]
    assert rc.spool.counts()["events"] == 1


def test_identical_retry_outside_the_window_is_refused(make_receiver):
    from smsgate.models import CallbackRequest

    now = [NOW]
    rc = make_receiver(clock=lambda: now[0])
    body, headers = signed([report("W1")], nonce="w")
    req = CallbackRequest(headers=headers, body=body)
    assert rc.handle("loopback", req).status == 200
    now[0] += 16 * 60
    assert rc.handle("loopback", req).status == 401


def test_within_window_is_accepted(served):
    rc, url, got = served
    assert push(url, *signed([report()], ts=NOW - 14 * 60, nonce="a")).status == 200
    assert push(url, *signed([report("LB9")], ts=NOW + 14 * 60, nonce="b")).status == 200


def test_duplicate_push_with_fresh_nonce_is_handled_once(served):
    rc, url, got = served
    for i in range(3):
        assert push(url, *signed([report("LB1"), report("LB1", phone="13900139000")], nonce=f"n{i}")).status == 200
    assert rc.drain()
    assert len(got) == 2
    assert rc.spool.counts()["events"] == 2


def test_malformed_body_is_400_and_nothing_runs(served):
    rc, url, got = served
    for body in (b"not json", b"{}", b'{"reports": 5}', b"\xff\xfe"):
        ts, nonce = str(int(NOW)), f"m{len(body)}{body[:1]!r}"
        headers = {"X-Timestamp": ts, "X-Nonce": nonce, "X-Signature": signature(SECRET, ts, nonce, body)}
        assert push(url, body, headers).status == 400, body
    assert rc.spool.counts()["events"] == 0
    assert rc.drain() and got == []


def test_unknown_provider_wrong_path_and_method(served):
    rc, url, got = served
    base = url.rsplit("/callbacks/", 1)[0]
    assert push(base + "/callbacks/nosuch", b"{}", {}).status == 404
    assert push(base + "/elsewhere/loopback", b"{}", {}).status == 404
    import urllib.error
    import urllib.request

    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(url, timeout=10)
    assert err.value.code == 405
    err.value.close()


def test_installed_but_unconfigured_provider_is_404(tmp_path):
    from smsgate.default_plugins.loopback import LoopbackConfig
    from smsgate.models import CallbackRequest

    # only cmas-like config: the loopback plugin is installed but not configured. A push signed
    # with the loopback's public default secret must not be verified, stored or dispatched.
    rc = Receiver(Gateway({"providers": {}}), spool=tmp_path / "s.sqlite3", plugin_hooks=False)
    got: list = []
    rc.on_report(got.append, name="collect")
    try:
        default_secret = LoopbackConfig.__attrs_attrs__.api_secret.default
        body, headers = signed([report("FORGED")], ts=time.time(), secret=default_secret)
        resp = rc.handle("loopback", CallbackRequest(headers=headers, body=body))
        assert resp.status == 404
        resp = rc.handle("nosuch", CallbackRequest(headers=headers, body=body))
        assert resp.status == 404
        assert rc.drain()
        assert got == [] and rc.spool.counts()["events"] == 0
    finally:
        rc.close()


@pytest.mark.parametrize("body", [b"[" * 200_000 + b"]" * 200_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000],
                         ids=["array", "object"])
def test_deeply_nested_json_is_400_not_500(make_receiver, body):
    from smsgate.models import CallbackRequest

    rc = make_receiver()
    ts = str(int(NOW))
    headers = {"X-Timestamp": ts, "X-Nonce": "deep", "X-Signature": signature(SECRET, ts, "deep", body)}
    resp = rc.handle("loopback", CallbackRequest(headers=headers, body=body))
    assert resp.status == 400
    assert rc.spool.counts()["events"] == 0


def test_overflow_in_a_plugin_is_400_not_500(make_receiver, monkeypatch):
    from smsgate.models import CallbackRequest

    rc = make_receiver()

    def overflow(*args, **kwargs):
        raise OverflowError("timestamp out of range for platform time_t")

    monkeypatch.setattr(rc.gateway, "handle_callback", overflow)
    body, headers = signed([report()])
    assert rc.handle("loopback", CallbackRequest(headers=headers, body=body)).status == 400


def test_slow_handler_does_not_delay_the_answer(make_receiver):
    rc = make_receiver()
    release = threading.Event()
    entered = threading.Event()
    done: list = []

    @rc.on_report(name="slow")
    def slow(r):
        entered.set()
        release.wait(30)
        done.append(r)

    with BackgroundServer(rc.wsgi_app) as srv:
        url = srv.url + "/callbacks/loopback"
        assert push(url, *signed([report("A")], nonce="1")).status == 200
        assert entered.wait(30)
        # the handler is blocked; further pushes are still answered
        assert push(url, *signed([report("B")], nonce="2")).status == 200
        assert push(url, *signed([report("C")], nonce="3")).status == 200
        assert done == []
        release.set()
        assert rc.drain()
    assert sorted(r.message_id for r in done) == ["A", "B", "C"]


def test_failing_handler_retries_and_others_are_unaffected(make_receiver):
    rc = make_receiver()
    calls: list = []
    good: list = []

    @rc.on_report(name="flaky", retry_base=0.01, retry_cap=0.05)
    def flaky(r):
        calls.append(r.message_id)
        if len(calls) < 3:
            raise RuntimeError("database down")

    rc.on_report(good.append, name="good")
    with BackgroundServer(rc.wsgi_app) as srv:
        assert push(srv.url + "/callbacks/loopback", *signed([report("X")])).status == 200
        deadline = time.monotonic() + 30
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert rc.drain()
    assert calls == ["X", "X", "X"]
    assert [r.message_id for r in good] == ["X"]
    assert rc.spool.counts()["handlers"]["flaky"] == {"pending": 0, "leased": 0, "dead": 0}


def test_handler_exception_never_fails_the_answer(make_receiver):
    rc = make_receiver()
    rc.on_report(lambda r: 1 / 0, name="broken", retry_base=60)
    with BackgroundServer(rc.wsgi_app) as srv:
        for i in range(3):
            assert push(srv.url + "/callbacks/loopback", *signed([report(f"Z{i}")], nonce=str(i))).status == 200
    assert rc.spool.counts()["events"] == 3


def test_spool_unwritable_gives_503_and_the_retry_is_accepted(served):
    rc, url, got = served
    conn = rc.spool._writer
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count={pages}")  # the disk is full from now on
    body, headers = signed([report(f"F{i}") for i in range(200)], nonce="full")
    resp = push(url, body, headers)
    assert resp.status == 503
    assert rc.spool.counts()["events"] == 0
    conn.execute("PRAGMA max_page_count=1073741823")
    # the vendor pushes the same request again (same nonce): it must not be refused as a replay
    resp = push(url, body, headers)
    assert resp.status == 200
    assert rc.drain()
    assert len(got) == 200


def test_spool_in_missing_directory_fails_at_start(tmp_path):
    from smsgate import ConfigError

    with pytest.raises(ConfigError, match="spool"):
        Receiver(Gateway(config()), spool=tmp_path / "missing" / "spool.sqlite3")


def test_events_jsonl_fields(make_receiver, tmp_path):
    path = tmp_path / "events.jsonl"
    rc = make_receiver(events_jsonl=path)
    with BackgroundServer(rc.wsgi_app) as srv:
        assert push(srv.url + "/callbacks/loopback", *signed([report("J1", status="FAILED")])).status == 200
        assert rc.drain()
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 1
    line = lines[0]
    assert line["provider"] == "loopback" and line["kind"] == "report"
    assert line["message_id"] == "J1" and line["phone"] == "13800138000" and line["status"] == "failed"
    assert line["raw"] == report("J1", status="FAILED")
    assert "content" in line and "received_at" in line and line["raw_status"] == "FAILED"


def test_plugin_hooks_receive_reports(make_receiver):
    seen = []

    class Sink:
        @hookimpl
        def on_report(self, report, event_id):
            seen.append((event_id, report.message_id))

    gw = Gateway(config(), clock=lambda: NOW)
    gw.plugins.register(Sink())
    rc = make_receiver()
    rc.close()
    rc2 = Receiver(gw, spool=rc.spool.path, poll_interval=0.05)
    try:
        with BackgroundServer(rc2.wsgi_app) as srv:
            assert push(srv.url + "/callbacks/loopback", *signed([report("H1")])).status == 200
            assert rc2.drain()
    finally:
        rc2.close()
    assert [m for _, m in seen] == ["H1"]


def test_plugin_registered_after_the_receiver_gets_later_events(make_receiver):
    from smsgate.models import CallbackRequest, InboundMessage

    reports, inbound = [], []

    class Reports:
        @hookimpl
        def on_report(self, report, event_id):
            reports.append(report.message_id)

    class Inbound:
        @hookimpl
        def on_inbound(self, message, event_id):
            inbound.append(message.content)

    rc = make_receiver()
    rc.start()
    rc.gateway.plugins.register(Reports())  # as hooks.md shows, after the Receiver exists
    body, headers = signed([report("LATE1")], nonce="late")
    assert rc.handle("loopback", CallbackRequest(headers=headers, body=body)).status == 200
    assert rc.drain()
    assert reports == ["LATE1"]
    # which implementations run is decided per event: a plugin for another kind joins later
    rc.gateway.plugins.register(Inbound())
    rc.spool.put([InboundMessage(provider="loopback", phone="13800138000", content="TD")], source="pull")
    assert rc.drain()
    assert inbound == ["TD"] and reports == ["LATE1"]


def test_shared_sqlite_replay_store(make_receiver, tmp_path):
    store_path = tmp_path / "replay.sqlite3"
    a = make_receiver(spool=tmp_path / "a.sqlite3", replay_store=f"sqlite:{store_path}")
    b = make_receiver(spool=tmp_path / "b.sqlite3", replay_store=f"sqlite:{store_path}")
    body, headers = signed([report()], nonce="shared")
    from smsgate.models import CallbackRequest

    req = CallbackRequest(headers=headers, body=body)
    assert a.handle("loopback", req).status == 200
    assert b.handle("loopback", req).status == 401  # the other worker saw this nonce


# -- ASGI, driven directly -------------------------------------------------------------------------

async def asgi_call(app, method, path, body=b"", headers=(), chunks=1, root_path=""):
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "path": path, "raw_path": path.encode(), "root_path": root_path, "query_string": b"",
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers], "client": ("127.0.0.1", 5000),
             "server": ("127.0.0.1", 8000), "scheme": "http"}
    size = max(1, len(body) // chunks + 1)
    parts = [body[i:i + size] for i in range(0, len(body), size)] or [b""]
    incoming = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]
    sent = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body_out = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], dict(start["headers"]), body_out


async def asgi_lifespan(app, *events):
    queue = [{"type": f"lifespan.{e}"} for e in events]
    sent = []

    async def receive():
        return queue.pop(0)

    async def send(message):
        sent.append(message["type"])

    await app({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    return sent


def test_asgi_app(make_receiver):
    rc = make_receiver()
    got = []
    rc.on_report(got.append, name="collect")
    app = rc.asgi_app

    async def scenario():
        assert await asgi_lifespan(app, "startup", "shutdown") == ["lifespan.startup.complete",
                                                                  "lifespan.shutdown.complete"]
        body, headers = signed([report("AS1"), report("AS2")], nonce="asgi")
        status, hdrs, out = await asgi_call(app, "POST", "/callbacks/loopback", body, headers.items(), chunks=3)
        assert status == 200 and json.loads(out) == {"code": "OK"}
        assert hdrs[b"content-length"] == str(len(out)).encode()
        status, _, _ = await asgi_call(app, "POST", "/callbacks/loopback", body, headers.items())
        assert status == 200  # the vendor's retry of a stored push: answered again, not stored again
        body_r, headers_r = signed([report("AS9")], nonce="asgi")
        status, _, _ = await asgi_call(app, "POST", "/callbacks/loopback", body_r, headers_r.items())
        assert status == 401  # the nonce replayed with new events
        status, _, _ = await asgi_call(app, "POST", "/callbacks/nosuch", b"{}")
        assert status == 404
        body2, headers2 = signed([report("AS3")], nonce="asgi2")
        status, _, _ = await asgi_call(app, "POST", "/sms/callbacks/loopback", body2, headers2.items(),
                                       root_path="/sms")  # mounted under /sms (Starlette style)
        assert status == 200
        status, _, _ = await asgi_call(app, "POST", "/callbacks/loopback", b"x" * (rc.max_body + 10), chunks=4)
        assert status == 413

    asyncio.run(scenario())
    assert rc.drain()
    assert sorted(r.message_id for r in got) == ["AS1", "AS2", "AS3"]


def test_asgi_under_uvicorn(make_receiver):
    uvicorn = pytest.importorskip("uvicorn")
    rc = make_receiver()
    got = []
    rc.on_report(got.append, name="collect")
    config = uvicorn.Config(rc.asgi_app, host="127.0.0.1", port=0, log_level="error", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        port = server.servers[0].sockets[0].getsockname()[1]
        url = f"http://127.0.0.1:{port}/callbacks/loopback"
        assert push(url, *signed([report("U1")], nonce="u1")).status == 200
        assert push(url, *signed([report("U2")], nonce="u1")).status == 401
        assert push(url, b"junk", {}).status == 401
        assert rc.drain()
    finally:
        server.should_exit = True
        thread.join(30)
    assert [r.message_id for r in got] == ["U1"]


def test_memory_replay_store_expiry():
    now = [0.0]
    store = MemoryReplayStore(clock=lambda: now[0], sweep_every=2)
    assert store.add("a", 10) is True
    assert store.add("a", 10) is False
    now[0] = 11
    assert store.add("a", 10) is True
    store.discard("a")
    assert store.add("a", 10) is True


def test_sqlite_replay_store_across_processes(tmp_path):
    import subprocess
    import sys

    from smsgate.receiving import SqliteReplayStore

    path = str(tmp_path / "r.sqlite3")
    SqliteReplayStore(path).close()
    # plain child interpreters (not a multiprocessing pool, whose workers must import this test
    # module and wait forever when they cannot): each tries the ten keys in its own order
    child = ("import sys\n"
             "from smsgate.receiving import SqliteReplayStore\n"
             "store = SqliteReplayStore(sys.argv[1])\n"
             "print(sum(bool(store.add(key, 900)) for key in sys.argv[2:]))\n"
             "store.close()\n")
    keys = [f"k{i}" for i in range(10)]
    procs = [subprocess.Popen([sys.executable, "-c", child, path, *(keys[n:] + keys[:n])],
                              stdout=subprocess.PIPE, text=True) for n in (0, 3, 5, 8)]
    admitted = [int(p.communicate(timeout=60)[0]) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    assert sum(admitted) == 10  # each of the 10 keys admitted exactly once across the 4 processes


def test_redis_replay_store_uses_set_nx():
    from smsgate.receiving import RedisReplayStore

    class FakeRedis:
        def __init__(self):
            self.data = {}

        def set(self, key, value, nx=False, px=None):
            assert nx and px == 900_000
            if key in self.data:
                return None
            self.data[key] = value
            return True

        def delete(self, key):
            self.data.pop(key, None)

    store = RedisReplayStore(FakeRedis())
    assert store.add("juse:n1", 900) is True
    assert store.add("juse:n1", 900) is False
    store.discard("juse:n1")
    assert store.add("juse:n1", 900) is True


def test_spool_file_is_wal(make_receiver):
    rc = make_receiver()
    conn = sqlite3.connect(rc.spool.path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


def test_plugin_registered_after_the_receiver_gets_events_stored_since_it_was_built(make_receiver):
    got = []

    class Reports:
        @hookimpl
        def on_report(self, report, event_id):
            got.append((event_id, report.message_id))

    rc = make_receiver()
    rc.spool.put([DeliveryReport(provider="loopback", message_id="EARLY", phone="13800138000",
                                 status=Status.DELIVERED)])
    rc.gateway.plugins.register(Reports())
    assert rc.drain()
    assert [m for _, m in got] == ["EARLY"]


def test_receiver_closes_the_replay_store_it_created(make_receiver, tmp_path):
    rc = make_receiver(replay_store=f"sqlite:{tmp_path / 'replay.sqlite3'}")
    store = rc.replay_store
    assert store.add("k", 60)
    rc.close()
    with pytest.raises(sqlite3.ProgrammingError):  # its connection is closed
        store.add("k2", 60)


def test_receiver_leaves_a_replay_store_it_was_given_open(make_receiver, tmp_path):
    from smsgate.receiving import SqliteReplayStore

    store = SqliteReplayStore(tmp_path / "replay.sqlite3")
    try:
        make_receiver(replay_store=store).close()
        assert store.add("k", 60)
    finally:
        store.close()


def test_sqlite_replay_store_reopens_after_fork(tmp_path):
    """gunicorn --preload: the store was created in the parent, used in the forked worker, maybe
    while a thread of the parent was inside add() (holding its lock)."""
    import os
    import signal

    from smsgate.receiving import SqliteReplayStore

    store = SqliteReplayStore(tmp_path / "replay.sqlite3")
    try:
        assert store.add("parent", 900)
        with store._lock:  # a request thread of the parent is mid-add at the moment of the fork
            pid = os.fork()
            if pid == 0:  # the child: a preloaded worker
                code = 1
                try:
                    signal.alarm(20)  # safety limit: a lock copied in the held state would hang here
                    fresh, again = store.add("child", 900), store.add("parent", 900)
                    code = 0 if (fresh, again) == (True, False) else 2
                finally:
                    os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert store.add("child", 900) is False  # the child's add is in the shared file
    finally:
        store.close()
