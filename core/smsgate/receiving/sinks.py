"""Ready-made spool handlers: the JSON-lines events file."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from ..log import get_logger
from ..wire import json_utf8_each
from .store import SpooledEvent, plain_fields, plain_fields_each

log = get_logger("smsgate.spool")


class JsonlSink:
    """Appends each event as one JSON line, exactly once per spool event id, even across a kill -9.

    On open it reads the ids already in the file (and cuts off a line torn by a crash), so a
    handler call repeated after a restart does not write the event twice. Use it as a batch
    handler with one worker (``Receiver(events_jsonl=...)`` does this).
    """

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self.written: set[int] = set()
        self._fh = open(self.path, "ab")
        try:
            _lock_file(self._fh, self.path)
            self._recover()
        except BaseException:
            self._fh.close()
            raise

    def _recover(self) -> None:
        good = 0
        with open(self.path, "rb") as fh:
            for line in fh:
                if not line.endswith(b"\n"):
                    break  # torn by a crash mid-write
                try:
                    eid = json.loads(line).get("event_id")
                except ValueError:
                    break
                if isinstance(eid, int):
                    self.written.add(eid)
                good += len(line)
        if good != os.path.getsize(self.path):
            with open(self.path, "r+b") as fh:
                fh.truncate(good)
            log.warning("smsgate.events_jsonl.truncated", path=self.path, kept_bytes=good)

    def __call__(self, items: list[SpooledEvent]) -> None:
        with self._lock:
            written = self.written
            new = [item for item in items if item.id not in written]
            if not new:
                return
            # compact JSON, with or without orjson; a line holding a lone surrogate is escaped ASCII
            data = bytearray()
            for line in json_utf8_each(map(_line, new, plain_fields_each(new)), default=str):
                data += line
                data += b"\n"
            self._fh.write(data)
            self._fh.flush()
            os.fsync(self._fh.fileno())
            written.update(i.id for i in items)

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def _lock_file(fh: Any, path: str) -> None:
    """Hold an exclusive lock on the events file while it is open (released when it is closed or
    the process dies): one writer at a time, so a process that takes over (a restarted handler
    process while the one before still finishes its last call) reads the ids and cuts a torn line
    only once the other stopped writing."""
    try:
        import fcntl
    except ImportError:  # not on POSIX: one writer is the deployment's business (docs/receiving.md)
        return
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log.warning("smsgate.events_jsonl.waiting", path=path, reason="another process is writing it")
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)


_last_iso: tuple[float, str] = (-1.0, "")


def _iso(ts: float) -> str:
    global _last_iso
    last = _last_iso
    if last[0] == ts:  # the events of one push share their spooling time
        return last[1]
    import datetime as dt

    from ..models import CHINA_TZ

    text = dt.datetime.fromtimestamp(ts, CHINA_TZ).isoformat(timespec="milliseconds")
    _last_iso = (ts, text)
    return text


def event_line(item: SpooledEvent) -> dict[str, Any]:
    """The JSON-lines form of a spooled event (``--events-jsonl``)."""
    return _line(item, plain_fields(item))


def _line(item: SpooledEvent, e: dict[str, Any]) -> dict[str, Any]:
    """The line of ``item`` whose stored fields are ``e`` (no model built for the line)."""
    get = e.get
    kind = item.kind
    if kind == "report":
        return {"event_id": item.id, "provider": item.provider, "kind": kind, "source": item.source,
                "message_id": get("message_id"), "phone": get("phone"), "status": get("status"), "content": None,
                "received_at": _iso(item.spooled_at), "raw_status": get("raw_status"),
                "description": get("description"), "reported_at": get("reported_at"), "biz_id": get("biz_id"),
                "raw": get("raw")}
    line: dict[str, Any] = {"event_id": item.id, "provider": item.provider, "kind": kind,
                            "source": item.source, "message_id": None, "phone": None, "status": None,
                            "content": None, "received_at": _iso(item.spooled_at)}
    if kind == "inbound":
        line.update(phone=get("phone"), content=get("content"), service_code=get("service_code"),
                    sent_at=get("received_at"))
    else:
        line.update(message_id=get("task_id"), task_id=get("task_id"), total=get("total"), sent=get("sent"),
                    failed=get("failed"))
    line["raw"] = get("raw")
    return line
