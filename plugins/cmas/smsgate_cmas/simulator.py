"""A loopback 云MAS: decodes the base64 bodies, checks account and mac the way the platform does,
answers with the document's ``rspcod``s, keeps reports and inbound SMS for the pulls, and refuses
a second pull of the same kind within 5 seconds.

Where the document is silent the simulator decides (and ``docs/vendors/cmas.md`` says so):

* a pull inside the 5-second window gets HTTP 429 with ``{"rspcod":"TooFrequent",...}``;
* a pull with a wrong account gets ``{"rspcod":"InvalidUsrOrPwd",...}`` instead of a list;
* an empty or malformed ``sign`` is ``IllegalSignId``, a well-formed code the account does not
  own is ``NoSignId``;
* answers are plain JSON (only requests are base64);
* a many-to-many submit with 1000 numbers or more gets ``TooManyMobiles``. The document limits
  such a request to fewer than 1000 numbers but names no rspcod for it: it documents
  ``TooManyMobiles`` only for more than 5000. The rspcod is the simulator's own pick, not the
  platform's known answer.

With ``tls=(certfile, keyfile)`` it serves HTTPS (the real platform's only scheme).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from smsgate import HttpResponse, Message, Operation
from smsgate.testing import SimRequest, SimulatorServer

_MOBILE = re.compile(r"1[3-9]\d{9}")
_SIGN = re.compile(r"[0-9A-Za-z]+")
_MAX_MOBILES = 5000
_MAX_PERSONAL = 999  # "号码数量小于1000个"
_PAGE = 1000  # a pull returns 0-1000 items


def _md5(*parts: str) -> str:
    return hashlib.md5("".join(parts).encode("utf-8")).hexdigest()


class CmasSimulator(SimulatorServer):
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, ec_name: str = "smsgate演示企业",
                 ap_id: str = "demo", secret_key: str = "Demo#Secret1", signs: Any = ("d8Kx3Qa9",),
                 tls: tuple[str, str] | None = None, clock: Callable[[], float] | None = None,
                 pull_interval: float = 5.0):
        super().__init__(host, port)
        self.ec_name = ec_name
        self.ap_id = ap_id
        self.secret_key = secret_key
        self.signs = list(signs)
        self.tls = tls
        #: the simulator's own clock for the pull window (tests replace it to stay untimed)
        self.clock = clock or time.monotonic
        self.pull_interval = pull_interval
        #: 注3 read cautiously: one 5 s window for both pulls together (False: one window each)
        self.shared_pull_window = True
        #: every accepted SMS: dicts with mgsGroup, mobile, content / templateId + params, sign, addSerial
        self.accepted: list[dict[str, Any]] = []
        #: every answer given, in order (beside ``requests``)
        self.answers: list[HttpResponse] = []
        self.pending_reports: list[dict[str, Any]] = []
        self.pending_inbound: list[dict[str, Any]] = []
        self._reported: set[tuple[str, str]] = set()
        self._last_pull: dict[str, float] = {}
        self._groups = itertools.count(1)
        self._state = threading.Lock()

    # -- lifecycle: optional TLS ---------------------------------------------------------
    def start(self) -> "CmasSimulator":
        super().start()
        if self.tls is not None:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            assert self._server is not None
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        return self

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"

    # -- the vendor ----------------------------------------------------------------------
    @staticmethod
    def _answer(rspcod: str, group: str = "", status: int = 200) -> HttpResponse:
        return HttpResponse.of_json({"rspcod": rspcod, "mgsGroup": group, "success": rspcod == "success"},
                                    status=status)

    def handle(self, request: SimRequest) -> HttpResponse:
        response = self._route(request)
        with self._state:
            self.answers.append(response)
        return response

    def _route(self, request: SimRequest) -> HttpResponse:
        path = request.path.split("?", 1)[0].rstrip("/")
        if request.method != "POST":
            return HttpResponse(status=405, body=b"POST only")
        try:
            raw = base64.b64decode(request.body.strip(), validate=True)
            data = json.loads(raw.decode("utf-8"))
        except (binascii.Error, ValueError):
            return self._answer("InvalidMessage")
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            return self._answer("InvalidMessage")
        if path == "/sms/submit":
            return self._submit(data)
        if path == "/sms/tmpsubmit":
            return self._tmpsubmit(data)
        if path in ("/sms/report", "/sms/deliver"):
            return self._pull(path, data)
        return HttpResponse(status=404, body=b"no such path")

    def _account_ok(self, data: dict[str, str]) -> bool:
        return data.get("ecName") == self.ec_name and data.get("apId") == self.ap_id

    def _sign_error(self, sign: str) -> str | None:
        if not _SIGN.fullmatch(sign):
            return "IllegalSignId"
        if sign not in self.signs:
            return "NoSignId"
        return None

    def _check(self, data: dict[str, str], fields: tuple[str, ...]) -> str | None:
        """The checks common to both sends; returns a refusing rspcod or None."""
        if any(name not in data for name in fields + ("mac",) if name != "secretKey"):
            return "InvalidMessage"
        if not self._account_ok(data):
            return "InvalidUsrOrPwd"
        values = {**data, "secretKey": self.secret_key}
        expected = _md5(*(values[name] for name in fields))
        if data["mac"] != expected:
            return "IllegalMac"
        return self._sign_error(data["sign"])

    def _mobiles(self, text: str) -> list[str] | None:
        mobiles = text.split(",")
        if not all(_MOBILE.fullmatch(m) for m in mobiles):
            return None
        return mobiles

    def _submit(self, data: dict[str, str]) -> HttpResponse:
        refused = self._check(data, ("ecName", "apId", "secretKey", "mobiles", "content", "sign", "addSerial"))
        if refused:
            return self._answer(refused)
        if data["mobiles"].strip() == "":  # many-to-many
            try:
                personal = json.loads(data["content"])
            except ValueError:
                return self._answer("InvalidMessage")
            if (not isinstance(personal, dict) or not personal
                    or not all(isinstance(v, str) and v for v in personal.values())
                    or not all(_MOBILE.fullmatch(k) for k in personal)):
                return self._answer("InvalidMessage")
            if len(personal) > _MAX_PERSONAL:
                # own choice: the document gives no rspcod for this limit (TooManyMobiles is >5000)
                return self._answer("TooManyMobiles")
            items = list(personal.items())
        else:
            mobiles = self._mobiles(data["mobiles"])
            if mobiles is None or not data["content"]:
                return self._answer("InvalidMessage")
            if len(mobiles) > _MAX_MOBILES:
                return self._answer("TooManyMobiles")
            items = [(m, data["content"]) for m in mobiles]
        group = self._new_group()
        with self._state:
            for mobile, content in items:
                self.accepted.append({"mgsGroup": group, "mobile": mobile, "content": content,
                                      "sign": data["sign"], "addSerial": data["addSerial"]})
        return self._answer("success", group)

    def _tmpsubmit(self, data: dict[str, str]) -> HttpResponse:
        refused = self._check(data, ("ecName", "apId", "secretKey", "templateId", "mobiles", "params", "sign",
                                     "addSerial"))
        if refused:
            return self._answer(refused)
        mobiles = self._mobiles(data["mobiles"])
        try:
            params = json.loads(data["params"])
        except ValueError:
            return self._answer("InvalidMessage")
        if (mobiles is None or not data["templateId"] or not isinstance(params, list) or not params
                or not all(isinstance(p, str) for p in params)):
            return self._answer("InvalidMessage")
        if len(mobiles) > _MAX_MOBILES:
            return self._answer("TooManyMobiles")
        group = self._new_group()
        with self._state:
            for mobile in mobiles:
                self.accepted.append({"mgsGroup": group, "mobile": mobile, "templateId": data["templateId"],
                                      "params": params, "sign": data["sign"], "addSerial": data["addSerial"]})
        return self._answer("success", group)

    def _pull(self, path: str, data: dict[str, str]) -> HttpResponse:
        if not self._account_ok(data) or data.get("secretKey") != self.secret_key:
            return self._answer("InvalidUsrOrPwd")
        with self._state:
            now = self.clock()
            window = "pull" if self.shared_pull_window else path
            last = self._last_pull.get(window)
            if last is not None and now - last < self.pull_interval:
                # undocumented: how the platform refuses; this simulator's choice (see docs)
                return self._answer("TooFrequent", status=429)
            self._last_pull[window] = now
            queue = self.pending_reports if path == "/sms/report" else self.pending_inbound
            page, queue[:] = queue[:_PAGE], queue[_PAGE:]
        return HttpResponse.of_json(page)

    def _new_group(self) -> str:
        # mgsGroup: an opaque batch number; digits like the platform's
        return f"{20240918:08d}{next(self._groups):010d}"

    # -- test and demo helpers -----------------------------------------------------------
    def demo_config(self) -> dict[str, Any]:
        return {"base_url": self.url, "ec_name": self.ec_name, "ap_id": self.ap_id,
                "secret_key": self.secret_key, "sign": self.signs[0]}

    def demo_message(self, operation: Any = None) -> Message:
        if operation == Operation.SEND_BATCH:
            return Message.personalised({"13800138000": "张先生，您的验证码是 1234", "13900139000": "李女士，您的验证码是 5678"})
        return Message(to=["13800138000"], text="验证码 1234")

    def report(self, mobile: str, group: str, status: str = "DELIVRD", error_code: str = "DELIVRD",
               submit_date: str = "20240918113016", receive_date: str = "20240918113020") -> dict[str, Any]:
        """Keep one report for the next pull (any status), and return it."""
        item = {"reportStatus": status, "mobile": mobile, "submitDate": submit_date,
                "receiveDate": receive_date, "errorCode": error_code, "msgGroup": group}
        with self._state:
            self._reported.add((group, mobile))
            self.pending_reports.append(item)
        return item

    def deliver_all(self) -> int:
        """A DELIVRD report, kept for the pull, for every accepted SMS not yet reported."""
        with self._state:
            todo = [(a["mgsGroup"], a["mobile"]) for a in self.accepted
                    if (a["mgsGroup"], a["mobile"]) not in self._reported]
        for group, mobile in todo:
            self.report(mobile, group)
        return len(todo)

    def add_inbound(self, mobile: str, content: str, add_serial: str = "",
                    send_time: str = "2024-09-18 11:30:16") -> dict[str, Any]:
        """Keep one inbound SMS for the next ``/sms/deliver`` pull."""
        item = {"smsContent": content, "mobile": mobile, "sendTime": send_time, "addSerial": add_serial}
        with self._state:
            self.pending_inbound.append(item)
        return item
