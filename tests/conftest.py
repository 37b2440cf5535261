import contextlib
import re
import signal
import subprocess
import sys
import threading

import pytest


@pytest.fixture(autouse=True)
def _only_builtin_plugins_unless_asked(monkeypatch):
    """Core tests see only the built-in plugins unless a test sets SMSGATE_PLUGINS itself."""
    monkeypatch.setenv("SMSGATE_PLUGINS", "")
    yield


@pytest.fixture
def spool(tmp_path):
    """A spool file of its own for the test."""
    from smsgate.receiving import Spool

    s = Spool(tmp_path / "spool.sqlite3")
    yield s
    s.close()


@pytest.fixture
def push_reports(tmp_path):
    """``push_reports(sim, gateway, name="loopback")``: the loopback simulator pushes every report it
    has to a Receiver of ``gateway`` (over HTTP), which stores and handles them before this returns."""
    import time

    from smsgate.receiving import BackgroundServer, Receiver

    def push(sim, gateway, name="loopback"):
        rc = Receiver(gateway, spool=tmp_path / "push-spool.sqlite3", poll_interval=0.05)
        try:
            with BackgroundServer(rc.wsgi_app) as srv:
                assert sim.push_reports(f"{srv.url}/callbacks/{name}", time.time()).status == 200
                assert rc.drain()
        finally:
            rc.close()

    return push


@contextlib.contextmanager
def _sigint_as_from_a_terminal():
    """Start a child with SIGINT at its default, as a terminal would (Ctrl-C stops it). A shell
    runs background jobs with SIGINT ignored and a child inherits that, so a suite started in
    the background would otherwise test a serve that, rightly, ignores Ctrl-C. A handler set
    here becomes the default in the child when it execs."""
    ignored = threading.current_thread() is threading.main_thread() and \
        signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    if ignored:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        if ignored:
            signal.signal(signal.SIGINT, signal.SIG_IGN)


class ServeProcess:
    """``smsgate serve`` as a real subprocess (the production server when installed)."""

    def __init__(self, args, env=None):
        cmd = [sys.executable, "-m", "smsgate.cli", "serve", "--port", "0", *map(str, args)]
        with _sigint_as_from_a_terminal():
            self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env, text=True)
        self.pid = self.proc.pid
        self.url = None  # http://host:port
        self.stderr: list[str] = []
        for line in self.proc.stderr:  # ends if the process dies before it listens
            self.stderr.append(line)
            m = re.search(r"receiving on (http://[\d.]+:\d+)", line)
            if m:
                self.url = m.group(1)
                break
        assert self.url, "serve did not start:\n" + "".join(self.stderr)
        # keep draining stderr so the child never blocks on a full pipe
        self._drain = threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr), daemon=True)
        self._drain.start()

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def reap(self, timeout=60):
        code = self.proc.wait(timeout)
        self._drain.join(30)
        self.proc.stderr.close()
        return code


@pytest.fixture
def start_serve():
    """``start_serve(args, env=None)`` -> a running :class:`ServeProcess` (stopped after the test)."""
    started = []

    def start(args, env=None):
        serve = ServeProcess(args, env)
        started.append(serve)
        return serve

    yield start
    for serve in started:
        if serve.proc.poll() is None:
            serve.proc.kill()
            serve.reap()
