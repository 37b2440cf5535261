"""A Guodu submitJson server on 127.0.0.1, for tests, the demo and the benchmarks.

It checks what the real service checks as far as the document says (account, password, SendTime,
AppendID, phones, URL-encoded content), answers with the document's ResultCodes, keeps what it
accepted, and pushes status-report arrays (at most 250 a POST) to a receiver.
"""

from __future__ import annotations

import datetime as _dt
import hmac
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs

from smsgate.models import CHINA_TZ, HttpResponse, Message, Operation
from smsgate.testing.simulator import SimRequest, SimulatorServer

from . import dialect

SUBMIT_PATH = "/HttpQuickProcess/submitJson"
PUSH_BATCH = 250
_MOBILE = re.compile(r"1[3-9]\d{9}")


@attrs.frozen(kw_only=True)
class SubmittedMessage:
    """One phone of one accepted submission, as the simulator keeps it."""

    msg_id: str
    phone: str
    content: str  #: decoded text
    send_time: str
    append_id: str


class GuoduSimulator(SimulatorServer):
    """Speaks submitJson. Knobs for tests:

    * ``refuse_ip = True``: answer 02, as when this machine's IP is not bound to the account;
    * ``next_codes``: ResultCodes to answer (one each) instead of checking, e.g. ``["-1"]``;
    * ``fail_numbers``: phones whose report says failed (``status`` 1, ``msg`` UNDELIV);
    * ``max_phones``: phones a request (200, the document's note; more is answered 06).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, oper_id: str = "demo",
                 oper_pass: str = "demo-pass", max_phones: int = 200, fail_numbers: Any = (),
                 sp_number: str = "10690013", clock: Callable[[], float] = time.time):
        super().__init__(host, port)
        self.oper_id = oper_id
        self.oper_pass = oper_pass
        self.max_phones = max_phones
        self.fail_numbers = set(fail_numbers)
        self.sp_number = sp_number  # spnumber + account id; with AppendID at most 20 digits
        self.clock = clock
        self.refuse_ip = False
        self.next_codes: list[str] = []
        self.messages: list[SubmittedMessage] = []
        self.pending_reports: list[dict[str, Any]] = []
        self._reported: set[tuple[str, str]] = set()
        self._ids = itertools.count(1)
        self._state = threading.Lock()

    # -- the vendor ------------------------------------------------------------------------
    def _answer(self, code: str, msg_id: str | None = None) -> HttpResponse:
        body: dict[str, str] = {"ResultCode": code}
        if msg_id is not None:
            body["MsgId"] = msg_id
        return HttpResponse.of_json(body)

    def _new_id(self) -> str:
        return f"{int(self.clock()):d}{next(self._ids):06d}"

    def handle(self, request: SimRequest) -> HttpResponse:
        if request.path.split("?")[0].rstrip("/") != SUBMIT_PATH:
            return HttpResponse(status=404, body=b"Not Found")
        if request.method != "POST":  # the document: the method must be POST
            return self._answer("06")
        with self._state:
            if self.next_codes:
                code = self.next_codes.pop(0)
                return self._answer(code, self._new_id() if code in dialect.ACCEPTED_CODES else None)
        if self.refuse_ip:
            return self._answer("02")
        try:
            data = json.loads(request.body.decode("utf-8"))
        except ValueError:
            return self._answer("06")
        if not isinstance(data, dict) or not all(isinstance(data.get(k, ""), str) for k in
                                                 ("OperID", "OperPass", "SendTime", "AppendID", "DesMobile", "Content")):
            return self._answer("06")
        if data.get("OperID", "") != self.oper_id:
            return self._answer("04")
        if not hmac.compare_digest(data.get("OperPass", "").encode(), self.oper_pass.encode()):
            return self._answer("05")
        send_time = data.get("SendTime", "")
        if not dialect.valid_send_time(send_time):
            return self._answer("07")
        append_id = data.get("AppendID", "")
        if append_id and (not append_id.isdigit() or len(self.sp_number) + len(append_id) > dialect.MAX_SENDER_DIGITS):
            return self._answer("10")
        content = data.get("Content", "")
        if content == "":
            return self._answer("08")
        mobiles = data.get("DesMobile", "")
        if mobiles.strip() == "":
            return self._answer("09")
        phones = mobiles.split(",")
        if len(phones) > self.max_phones or not all(_MOBILE.fullmatch(p) for p in phones):
            return self._answer("06")
        # Content must arrive URL-encoded: raw text (a space, Chinese) or a broken escape is refused
        if not dialect.ENCODED_ALPHABET.fullmatch(content):
            return self._answer("06")
        try:
            text = dialect.java_urldecode(content)
        except ValueError:
            return self._answer("06")
        if text.strip() == "":
            return self._answer("08")
        if dialect.java_length(text) > 500:  # the platform is Java: String.length(), UTF-16 units
            return self._answer("06")
        msg_id = self._new_id()
        with self._state:
            for phone in phones:
                self.messages.append(SubmittedMessage(msg_id=msg_id, phone=phone, content=text,
                                                      send_time=send_time, append_id=append_id))
        return self._answer("03" if len(phones) == 1 else "00", msg_id)

    # -- reports and pushes ----------------------------------------------------------------
    def _report_time(self) -> str:
        return _dt.datetime.fromtimestamp(self.clock(), CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")

    def deliver_all(self) -> int:
        """Make a report for every accepted message not yet reported; kept for :meth:`push_pending`."""
        made = 0
        with self._state:
            for m in self.messages:
                key = (m.msg_id, m.phone)
                if key in self._reported:
                    continue
                self._reported.add(key)
                failed = m.phone in self.fail_numbers
                self.pending_reports.append({
                    "msg": "UNDELIV" if failed else "发送成功",
                    "mobile": m.phone,
                    "msgId": m.msg_id,
                    "reportTime": self._report_time(),
                    "status": 1 if failed else 0,
                })
                made += 1
        return made

    def push_pending(self, url: str) -> list[HttpResponse]:
        """POST every kept report to ``url`` as the document's JSON array, at most 250 a POST.
        Reports whose POST was not answered 2xx stay kept for the next call."""
        self.deliver_all()
        with self._state:
            pending, self.pending_reports = self.pending_reports, []
        answers: list[HttpResponse] = []
        kept: list[dict[str, Any]] = []
        for start in range(0, len(pending), PUSH_BATCH):
            chunk = pending[start:start + PUSH_BATCH]
            body = json.dumps(chunk, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            try:
                answer = self.push(url, body, {"Content-Type": "application/json;charset=UTF-8"})
            except OSError:
                answer = HttpResponse(status=0, body=b"unreachable")
            answers.append(answer)
            if not 200 <= answer.status < 300:
                kept.extend(chunk)
        with self._state:
            self.pending_reports = kept + self.pending_reports
        return answers

    def push_inbound(self, url: str, phone: str, content: str) -> HttpResponse:
        """Push an inbound SMS. The document gives no shape for it (only that it never shares a
        POST with reports); this simulator sends a JSON array of ``mobile``/``content`` items."""
        item = {"mobile": phone, "content": content, "appendId": "", "recvTime": self._report_time()}
        body = json.dumps([item], ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return self.push(url, body, {"Content-Type": "application/json;charset=UTF-8"})

    # -- demo ------------------------------------------------------------------------------
    def demo_config(self) -> dict[str, Any]:
        # the simulator pushes from this host: the allow-list is the push protection
        return {"base_url": self.url, "oper_id": self.oper_id, "oper_pass": self.oper_pass,
                "push_allow_ips": ["127.0.0.1", "::1"]}

    def demo_message(self, operation: Any = None) -> Message:
        if operation == Operation.SEND_BATCH:
            return Message.personalised({"13800138000": "【smsgate】您的验证码是 1234",
                                         "13900139000": "【smsgate】您的验证码是 5678"})
        return Message(to=["13800138000", "13900139000"], text="【smsgate】您好 A&B+C 100%")
