"""The handler process of ``smsgate serve``: a child running ``smsgate work`` on the same spool.

The receiving process then only verifies, parses, stores and answers; the handlers (the events
file, ``--handler`` functions, the send ledger's matching, the plugin hooks) run in the child, on
a GIL of their own (pulls, ``--poll``, stay with the pushes). They share nothing but the spool file, which several
processes may share (leases, a cursor per handler, dead owners released).

What the parent promises:

- no push is answered before the child has registered its handlers in the spool (a handler new
  to this spool takes the events stored after its registration, so it must come first);
- the child dies with the parent: it stops when the pipe on its stdin closes, which the kernel
  does when the parent exits for any reason, SIGKILL included;
- a child that dies is logged (``smsgate.serve.handler_process_exited``) and started again, after
  1 s, doubling up to 30 s while it keeps dying; meanwhile ``/healthz`` answers 503 and events are
  stored for it. Its leases are released when the new one starts (the dead pid owns them);
- a child that cannot start the first time stops ``smsgate serve`` (its own error line is on
  stderr already);
- on shutdown the child finishes the handler calls in flight and gives back the rows it leased.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO, Any

from ..errors import ConfigError
from ..log import get_logger

log = get_logger("smsgate.serve")

#: the first line ``smsgate work --supervised`` writes on its stdout: ``ready {"handlers": [...]}`` once
#: its handlers are registered and running, or ``failed "<why>"`` when it cannot start
READY = "ready"
FAILED = "failed"


class HandlerProcess:
    """Starts ``smsgate work`` with ``work_args`` as a child, keeps it running, stops it."""

    #: seconds to wait after the child died before starting it again (doubled while it keeps dying)
    RESTART_DELAY = (1.0, 30.0)
    #: a child that ran this long before dying is restarted after the shortest delay again
    STABLE_AFTER = 60.0

    def __init__(self, work_args: Sequence[str], *, verbose: int = 0, stop_timeout: float = 60.0):
        self.argv = [sys.executable, "-m", "smsgate.cli", *(["-" + "v" * verbose] if verbose else []),
                     "work", "--supervised", *work_args]
        self.stop_timeout = stop_timeout
        self.handlers: list[str] = []
        self.restarts = 0
        self._proc: subprocess.Popen[str] | None = None
        self._state = "not started"
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        self._failure: str | None = None  # why the last child could not start, as it said

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None else None

    def status(self) -> str:
        """"running", or why the handlers are not running now (what ``/healthz`` reports)."""
        with self._lock:
            return self._state

    def start(self) -> "HandlerProcess":
        """Start the child and wait until its handlers are registered and running; ConfigError
        when it exits before that (its reason is on stderr: it shares ours)."""
        code = self._spawn()
        if code is not None:
            raise ConfigError(self._failure or f"the handler process (smsgate work) exited with status {code} "
                              "before it started; see its error above")
        self._watcher = threading.Thread(target=self._watch, name="smsgate-handler-process", daemon=True)
        self._watcher.start()
        return self

    def _spawn(self) -> int | None:
        """Start one child and wait for its ready line: None once ready, else its exit status."""
        proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        with self._lock:
            self._proc = proc
            self._state = "starting"
        assert proc.stdout is not None
        self._failure = None
        line = proc.stdout.readline()  # empty: it exited (or closed stdout) before it was ready
        if not line.startswith(READY):
            if line.startswith(FAILED):
                try:
                    self._failure = str(json.loads(line[len(FAILED):]))
                except ValueError:
                    self._failure = line[len(FAILED):].strip()
            _close(proc.stdin)
            code = proc.wait()
            with self._lock:
                self._state = f"not running ({_exit_text(code)} while starting)"
            return code
        try:
            self.handlers = list(json.loads(line[len(READY):] or "{}").get("handlers", []))
        except ValueError:
            self.handlers = []
        with self._lock:
            self._state = "running"
        return None

    def _watch(self) -> None:
        delay = self.RESTART_DELAY[0]
        started = time.monotonic()
        while True:
            proc = self._proc
            assert proc is not None
            code = proc.wait()  # reaped here, so a dead child's pid no longer holds its leases
            if self._stopping.is_set():
                return
            if time.monotonic() - started >= self.STABLE_AFTER:
                delay = self.RESTART_DELAY[0]
            with self._lock:
                self._state = f"not running ({_exit_text(code)}); restarting in {delay:g} s"
            log.error("smsgate.serve.handler_process_exited", pid=proc.pid, status=_exit_text(code), restart_in=delay)
            if self._stopping.wait(delay):
                return
            while True:
                started = time.monotonic()
                try:
                    failed = self._spawn()
                except OSError as exc:
                    failed = -1
                    self._failure = str(exc)
                if failed is None:
                    break
                delay = min(self.RESTART_DELAY[1], delay * 2)
                with self._lock:
                    self._state = f"not running ({_exit_text(failed)} while starting); restarting in {delay:g} s"
                log.error("smsgate.serve.handler_process_exited", status=_exit_text(failed), restart_in=delay,
                          **({"error": self._failure} if self._failure else {}))
                if self._stopping.wait(delay):
                    return
            self.restarts += 1
            log.warning("smsgate.serve.handler_process_restarted", pid=self.pid, restarts=self.restarts)
            if self._stopping.is_set():  # stop() came while it started: it stops this one too
                return

    def stop(self) -> None:
        """Ask the child to stop (it finishes the handler calls in flight and gives back its
        leases), wait for it, and kill it after ``stop_timeout`` seconds (its leases are then
        released by whoever opens the spool next)."""
        self._stopping.set()
        proc = self._proc
        if proc is not None:
            self._end(proc)
        if self._watcher is not None:
            self._watcher.join()  # it returns once it sees the stop, at the latest when a child it is starting is ready
        if self._proc is not None and self._proc is not proc:  # started while we stopped the other
            self._end(self._proc)
        with self._lock:
            self._state = "stopped"

    def _end(self, proc: subprocess.Popen[str]) -> None:
        _close(proc.stdin)  # the child stops when its stdin closes
        try:
            proc.wait(self.stop_timeout)
        except subprocess.TimeoutExpired:
            log.warning("smsgate.serve.handler_process_killed", pid=proc.pid, after_s=self.stop_timeout)
            proc.kill()
            proc.wait()
        _close(proc.stdout)


def _exit_text(code: int) -> str:
    """How a child ended, in words: "exited with status 2", "killed by SIGKILL"."""
    if code >= 0:
        return f"exited with status {code}"
    import signal

    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def _close(stream: IO[Any] | None) -> None:
    if stream is None:
        return
    try:
        stream.close()
    except OSError:  # a broken pipe: the child is gone already
        pass
