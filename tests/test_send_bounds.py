"""A send ends by its deadline and never reads an answer whole, whatever the server does.

The servers here are raw sockets that misbehave on purpose: one drips its answer a byte at a time
(each read is quick, so a per-read timeout never fires), one sends a huge answer. No timed
assertions: each send runs in a thread that must finish within a generous limit (it would hang
for ever, or read hundreds of MB, without the bounds).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import pytest

from smsgate import Gateway, Message, Outcome
from smsgate.testing import capture_logs

LIMIT = 120  # seconds a send may take in these tests before it counts as hanging


class RawServer:
    """Accepts connections and runs ``answer(conn)`` for each, after reading the request head."""

    def __init__(self, answer):
        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.stop = threading.Event()
        self.sent = 0
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                part = conn.recv(65536)
                if not part:
                    return
                data += part
            self.answer(self, conn)
        except OSError:
            pass
        finally:
            conn.close()

    def write(self, conn, data):
        conn.sendall(data)
        self.sent += len(data)

    def close(self):
        self.stop.set()
        self.sock.close()


@pytest.fixture
def raw_server():
    made = []

    def make(answer):
        server = RawServer(answer)
        made.append(server)
        return server

    yield make
    for server in made:
        server.close()


def drip_body(server, conn):
    server.write(conn, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n")
    while not server.stop.is_set():
        server.write(conn, b" ")
        time.sleep(0.2)


def drip_head(server, conn):
    for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
        if server.stop.is_set():
            return
        server.write(conn, bytes([byte]))
        time.sleep(0.2)


def send_in_thread(gw, message):
    out = {}
    thread = threading.Thread(target=lambda: out.setdefault("result", gw.send(message, provider="loopback")))
    thread.start()
    thread.join(LIMIT)
    assert not thread.is_alive(), "the send did not end"
    return out["result"]


def gateway(url, **values):
    return Gateway({"providers": {"loopback": {"base_url": url, "read_timeout": 1.0, "send_timeout": 2.0,
                                               **values}}})


@pytest.mark.parametrize("answer", [drip_body, drip_head], ids=["body", "head"])
def test_a_dripping_server_is_cut_off_at_send_timeout_and_the_send_is_unknown(raw_server, answer):
    server = raw_server(answer)
    result = send_in_thread(gateway(server.url), Message(to=["13800138000"], text="hi"))
    [r] = result.recipients
    assert r.outcome is Outcome.UNKNOWN and "send_timeout" in r.reason.message


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_has_its_own_watchdog(raw_server):
    # the parent's watchdog thread is not copied into a child: the child's first watched exchange
    # starts the child's own, so a dripping server is still cut off there
    server = raw_server(drip_body)
    assert send_in_thread(gateway(server.url), Message(to=["13800138000"], text="hi")).unknown
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if its send ended unknown by its deadline
        try:
            result = send_in_thread(gateway(server.url), Message(to=["13800138001"], text="hi"))
            os._exit(0 if "send_timeout" in result.recipients[0].reason.message else 1)
        finally:
            os._exit(2)
    give_up = time.monotonic() + LIMIT
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > give_up:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail("the child's send did not end")
        time.sleep(0.1)
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_shorter_deadline_is_kept_while_a_longer_one_is_open(raw_server):
    # the watchdog sleeps until the earliest deadline it knows: one that comes earlier must wake it
    server = raw_server(drip_body)
    first = threading.Thread(target=lambda: gateway(server.url, send_timeout=600.0).send(
        Message(to=["13800138000"], text="hi"), provider="loopback"), daemon=True)
    first.start()
    while server.sent == 0:  # the long send's exchange is open (its answer has begun)
        time.sleep(0.05)
    result = send_in_thread(gateway(server.url), Message(to=["13800138001"], text="hi"))
    [r] = result.recipients
    assert r.outcome is Outcome.UNKNOWN and "send_timeout" in r.reason.message
    assert first.is_alive()  # still within its own deadline


def test_requests_queued_past_the_deadline_are_rejected_not_sent(raw_server):
    server = raw_server(drip_body)
    phones = [f"138{i:08d}" for i in range(101)]  # two requests (100 a request), one at a time
    result = send_in_thread(gateway(server.url, max_concurrency=1), Message(to=phones, text="hi"))
    by_outcome = {o: [r for r in result.recipients if r.outcome is o] for o in Outcome}
    assert len(by_outcome[Outcome.UNKNOWN]) == 100  # the request that was open at the deadline
    [late] = by_outcome[Outcome.REJECTED]  # the one that never started
    assert late.reason.code == "DEADLINE" and late.reason.not_sent


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_answer_over_1_mib_is_not_read_whole_and_the_send_is_unknown(raw_server, chunked):
    size = 300 * 1024 * 1024

    def huge(server, conn):
        if chunked:
            server.write(conn, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        else:
            server.write(conn, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        block = b"{" * 65536
        while server.sent < size and not server.stop.is_set():
            server.write(conn, (b"%x\r\n" % len(block) + block + b"\r\n") if chunked else block)

    server = raw_server(huge)
    result = send_in_thread(gateway(server.url, send_timeout=60.0, read_timeout=30.0),
                            Message(to=["13800138000"], text="hi"))
    [r] = result.recipients
    assert r.outcome is Outcome.UNKNOWN and "larger than" in r.reason.message
    assert server.sent < 64 * 1024 * 1024  # the client stopped reading far before 300 MB


def test_a_short_compressed_answer_that_unpacks_over_1_mib_is_not_read_whole(raw_server):
    # its Content-Length is small, so only reading it in pieces finds that it is too large
    import gzip

    body = gzip.compress(b"{" * (2 * 1024 * 1024))

    def packed(server, conn):
        server.write(conn, b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
                     % (len(body), body))

    server = raw_server(packed)
    result = send_in_thread(gateway(server.url), Message(to=["13800138000"], text="hi"))
    [r] = result.recipients
    assert r.outcome is Outcome.UNKNOWN and "larger than" in r.reason.message


def test_a_vendor_error_text_with_a_phone_is_logged_masked(raw_server):
    def error(server, conn):
        body = '{"code":"BUSY","message":"号码13800138000发送失败"}'.encode()
        server.write(conn, b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    server = raw_server(error)
    with capture_logs() as logs:
        result = gateway(server.url).send(Message(to=["13900139000"], text="hi"), provider="loopback")
    assert result.recipients[0].outcome is Outcome.UNKNOWN
    text = repr(logs)
    assert "13800138000" not in text and "138****8000" in text
