"""Ready-made spool handlers: the JSON-lines events file."""

from __future__ import annotations

import json
import os
import threading
from typing import Any

from ..log import get_logger
from ..wire import json_text
from .store import SpooledEvent

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
        self._recover()
        self._fh = open(self.path, "ab")

    def _recover(self) -> None:
        if not os.path.exists(self.path):
            return
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
            lines = []
            for item in items:
                if item.id in self.written:
                    continue
                lines.append(json_text(event_line(item), default=str, separators=(", ", ": ")) + "\n")
            if not lines:
                return
            self._fh.write("".join(lines).encode("utf-8"))
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self.written.update(i.id for i in items)

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def _iso(ts: float) -> str:
    import datetime as dt

    from ..models import CHINA_TZ

    return dt.datetime.fromtimestamp(ts, CHINA_TZ).isoformat(timespec="milliseconds")


def event_line(item: SpooledEvent) -> dict[str, Any]:
    """The JSON-lines form of a spooled event (``--events-jsonl``)."""
    e = item.event
    line: dict[str, Any] = {"event_id": item.id, "provider": item.provider, "kind": item.kind,
                            "source": item.source, "message_id": None, "phone": None, "status": None,
                            "content": None, "received_at": _iso(item.spooled_at)}
    if item.kind == "report":
        line.update(message_id=e.message_id, phone=e.phone, status=e.status.value, raw_status=e.raw_status,
                    description=e.description, reported_at=e.reported_at, biz_id=e.biz_id)
    elif item.kind == "inbound":
        line.update(phone=e.phone, content=e.content, service_code=e.service_code, sent_at=e.received_at)
    else:
        line.update(message_id=e.task_id, task_id=e.task_id, total=e.total, sent=e.sent, failed=e.failed)
    line["raw"] = e.raw
    return line
