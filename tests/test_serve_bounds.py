"""What one client can hold of ``smsgate serve``: idle connections, large bodies, the port.

``smsgate serve`` runs as a real subprocess. No timed assertions (the machine is shared and noisy):
each test checks *that* something happens, with generous limits; the 1-second figure for a push
answered while 200 idle connections are open is measured by ``benchmarks/serve_bounds.py``.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time

import pytest

from smsgate.default_plugins.loopback import signature
from smsgate.testing import SimulatorServer

SECRET = "bounds-secret"
MiB = 1024 * 1024


def write_config(tmp_path, receiver=""):
    path = tmp_path / "smsgate.toml"
    path.write_text(f'[providers.loopback]\nbase_url = "http://127.0.0.1:9"\napi_secret = "{SECRET}"\n'
                    f'[receiver]\nspool = "{tmp_path / "spool.sqlite3"}"\n{receiver}', encoding="utf-8")
    return path


def signed_push(msg_id: str, nonce: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"reports": [{"msgId": msg_id, "phone": "13800138000", "status": "DELIVERED",
                                    "time": "t"}]}).encode()
    ts = str(int(time.time()))
    return body, {"Content-Type": "application/json", "X-Timestamp": ts, "X-Nonce": nonce,
                  "X-Signature": signature(SECRET, ts, nonce, body)}


def host_port(url: str) -> tuple[str, int]:
    host, port = url.split("//", 1)[1].rsplit(":", 1)
    return host, int(port)


def test_valid_push_is_answered_while_200_idle_connections_are_open(tmp_path, start_serve):
    serve = start_serve(["--config", write_config(tmp_path)])
    idle = []
    try:
        for _ in range(200):
            sock = socket.create_connection(host_port(serve.url), timeout=30)
            idle.append(sock)
        idle[0].sendall(b"POST /callbacks/loopback HTTP/1.1\r\nHost: x\r\n")  # a slow client, headers unfinished
        answer = SimulatorServer.push(serve.url + "/callbacks/loopback", *signed_push("IDLE1", "idle-1"),
                                      timeout=60)
        assert answer.status == 200
    finally:
        for sock in idle:
            sock.close()


def test_idle_connections_are_closed_by_the_server(tmp_path, start_serve):
    serve = start_serve(["--config", write_config(tmp_path, "idle_timeout = 1\n")])
    sock = socket.create_connection(host_port(serve.url), timeout=60)
    try:
        # the server closes the silent connection itself (recv returns b"" at its end)
        assert sock.recv(1) == b""
    finally:
        sock.close()


def _send_large(url: str, head: bytes, body_chunks) -> tuple[int, bytes]:
    """Send ``head`` then the chunks until the server stops taking them; (bytes sent, answer)."""
    sock = socket.create_connection(host_port(url), timeout=60)
    sent = 0
    try:
        sock.sendall(head)
        for chunk in body_chunks:
            try:
                sock.sendall(chunk)
            except OSError:  # the server answered and closed: it stopped reading
                break
            sent += len(chunk)
        answer = b""
        try:
            while True:
                part = sock.recv(65536)
                if not part:
                    break
                answer += part
        except OSError:
            pass
        return sent, answer
    finally:
        sock.close()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_100_mib_body_is_413_having_read_at_most_the_limit(tmp_path, start_serve, chunked):
    serve = start_serve(["--config", write_config(tmp_path)])
    total = 100 * MiB
    block = b"x" * MiB
    if chunked:
        head = b"POST /callbacks/loopback HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        chunks = (b"%x\r\n" % len(block) + block + b"\r\n" for _ in range(total // MiB))
    else:
        head = b"POST /callbacks/loopback HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total
        chunks = (block for _ in range(total // MiB))
    sent, answer = _send_large(serve.url, head, chunks)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # what the server took is the 4 MiB limit plus what the kernel's socket buffers hold, far from 100 MiB
    assert sent < 40 * MiB, sent
    # and it still serves
    assert SimulatorServer.push(serve.url + "/callbacks/loopback", *signed_push("AFTER", "after-1")).status == 200


def test_a_port_in_use_is_one_line_and_exit_2(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "smsgate.cli", "serve", "--config", str(write_config(tmp_path)),
                               "--port", str(port)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "already in use" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("setting,words", [("idle_timeout = inf", "idle_timeout"),
                                           ("connection_limit = 0", "connection_limit"),
                                           ('max_body = "4M"', "max_body"),
                                           ("threads = 0", "threads"),
                                           ('handlers = "child"', "handlers")])
def test_bounds_in_the_config_are_checked(tmp_path, setting, words):
    proc = subprocess.run([sys.executable, "-m", "smsgate.cli", "serve", "--config",
                           str(write_config(tmp_path, setting + "\n")), "--port", "0"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and words in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts threads in /proc")
def test_request_threads_come_from_the_config_and_the_command_line_wins(tmp_path, start_serve):
    import os

    def threads(args):
        serve = start_serve([*args, "--server", "waitress"])
        # waitress starts its request threads with the server, before serve says where it listens
        count = len(os.listdir(f"/proc/{serve.pid}/task"))
        serve.proc.kill()
        serve.reap()
        return count

    base = threads(["--config", write_config(tmp_path, "threads = 2\n")])
    assert threads(["--config", write_config(tmp_path, "threads = 9\n")]) == base + 7
    assert threads(["--config", write_config(tmp_path, "threads = 9\n"), "--threads", "4"]) == base + 2
    assert threads(["--config", write_config(tmp_path)]) == base + 4  # the default, 6
