"""A juse message center on 127.0.0.1: ``/api/spi/sendSms`` and ``/api/spi/sendSmsTask``.

It checks what the vendor checks (headers, time window, nonce reuse, the md5 signature rebuilt
from the received body, the AES-encrypted phones) and answers in the document's shape, then pushes
signed ``sms_report``, ``sms_task_report`` and ``sms_deliver`` callbacks to a URL on request.

The signatures (requests and pushes) are built here from the vendor's description, not with the
plugin's ``dialect`` helpers, so a mistake in the plugin's signing shows up as a refused call.
The request sign string's ``params`` part is the body's fields sorted by key, ``key=value``
joined by ``,`` with no spaces, a nested map written ``{key=value,...}`` in the body's key order,
null values left out. Where the description is silent the simulator decides: nulls are left out
inside nested maps too, booleans are ``true``/``false``, and any other value (a list) is written
as its compact JSON text. juse's bodies carry only text and one map of text, so none of this
matters for calls the plugin makes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import uuid
from collections import deque
from typing import Any

import attrs

from smsgate import CHINA_TZ, HttpResponse, Message
from smsgate.testing import SimRequest, SimulatorServer

from . import dialect

DEMO_APP_ID = "adrm"
#: the document's example secret: any base64 AES-128 key works
DEMO_APP_SECRET = "r6duQGOuwDw4QeF/TJi6tw=="
_PHONE = re.compile(r"^1[3-9]\d{9}$")
_PLAN_TIME = "%Y-%m-%d %H:%M:%S"


# -- the vendor's signing, written here on its own (see the module docstring) -------------------

def _sign_value(value: Any) -> str:
    if isinstance(value, dict):  # the body's own key order, as json.loads keeps it
        return "{" + ",".join(f"{k}={_sign_value(v)}" for k, v in value.items() if v is not None) + "}"
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def vendor_sign_params(body: dict[str, Any]) -> str:
    """The ``params`` part of the request sign string, as the message center builds it."""
    return ",".join(f"{key}={_sign_value(body[key])}" for key in sorted(body) if body[key] is not None)


def vendor_request_sign(app_secret: str, path: str, body: dict[str, Any], app_type: str, timestamp: str,
                        nonce: str) -> str:
    """md5 hex of ``app_secret + path + params + app_type + time + nonce``."""
    text = app_secret + path + vendor_sign_params(body) + app_type + timestamp + nonce
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def vendor_callback_sign(app_secret: str, timestamp: str, nonce: str, app_id: str, kind: str) -> str:
    """md5 hex of ``app_secret + time + nonce + appId + type``."""
    return hashlib.md5((app_secret + timestamp + nonce + app_id + kind).encode("utf-8")).hexdigest()


@attrs.define
class SentRecord:
    """One phone of one accepted request (a sendRecordId, as the vendor's reports name it)."""

    record_id: int
    phone: str
    template_id: str
    sign_name: str
    params: dict[str, Any]
    task_id: int | None = None
    plan_time: str | None = None
    status: int = 2  #: 0 waiting, 1 sent, 2 sending, -1 failed
    reported: bool = False


@attrs.define
class SentTask:
    task_id: int
    name: str
    plan_time: str
    record_ids: list[int]
    summarised: bool = False


class JuseSimulator(SimulatorServer):
    def __init__(self, host: str = "127.0.0.1", port: int = 0, app_id: str = DEMO_APP_ID,
                 app_secret: str = DEMO_APP_SECRET, app_key: str = "message", ignore_path: str = "/api",
                 clock: Any = None):
        super().__init__(host, port)
        self.app_id = app_id
        self.app_secret = app_secret
        self.app_key = app_key
        self.ignore_path = ignore_path
        #: the vendor's clock (tests fix it together with the gateway's)
        self.clock = clock or time.time
        self.records: list[SentRecord] = []
        self.tasks: dict[int, SentTask] = {}
        self.pending_reports: list[SentRecord] = []
        self._nonces: dict[str, float] = {}
        self._forced: deque[tuple[int, str]] = deque()
        self._ids = itertools.count(1001)
        self._request_ids = itertools.count(1)
        self._state = threading.Lock()

    # -- harness API -------------------------------------------------------------------------
    def demo_config(self) -> dict[str, Any]:
        return {"base_url": self.url + self.ignore_path, "app_id": self.app_id, "app_secret": self.app_secret,
                "app_key": self.app_key, "ignore_path": self.ignore_path}

    def demo_message(self, operation: Any = None) -> Message:
        return Message(to=["15837390237"], template_id="MSG_2024090901", params={"param1": "888999"},
                       sign_name="登录验证")

    def fail_next(self, code: int, mes: str, times: int = 1) -> None:
        """Answer the next ``times`` well-signed calls with ``code`` and ``mes`` (vendor-side
        failures the document does not spell out: 5xx, rate limits ...)."""
        with self._state:
            for _ in range(times):
                self._forced.append((code, mes))

    def deliver_all(self) -> int:
        """Every accepted, not yet reported phone becomes a sent (sendStatus 1) report kept for a push."""
        with self._state:
            fresh = [r for r in self.records if not r.reported]
            for r in fresh:
                r.status, r.reported = 1, True
            self.pending_reports.extend(fresh)
            return len(fresh)

    # -- answers -----------------------------------------------------------------------------
    def _h(self, suffix: str) -> str:
        return dialect.header_name(self.app_key, suffix)

    def _error(self, code: int, mes: str, request_id: str | None = None) -> HttpResponse:
        # the document's error answer, field for field
        return HttpResponse.of_json({"code": code, "mes": mes, "requestId": request_id, "detail": mes,
                                     "httpStatusHint": 503, "showDetail": False, "ok": False})

    def _ok(self, data: Any, request_id: str) -> HttpResponse:
        return HttpResponse.of_json({"code": 200, "mes": "success", "data": data, "requestId": request_id,
                                     "ok": True})

    def handle(self, request: SimRequest) -> HttpResponse:
        path = request.path.split("?", 1)[0]
        prefix = self.ignore_path.rstrip("/")
        if prefix and not path.startswith(prefix + "/"):
            return HttpResponse(status=404, body=b"404 Not Found")  # nginx: no such location
        path = path[len(prefix):] or "/"  # as the message center sees it behind its nginx
        if path not in ("/spi/sendSms", "/spi/sendSmsTask"):
            return self._error(404, f"接口不存在:{path}")
        if request.method != "POST":
            return self._error(405, f"请求方式不支持:{request.method}")
        values = {}
        for suffix in dialect.HEADER_SUFFIXES:
            value = request.header(self._h(suffix))
            if not value:
                return self._error(400, f"参数错误:{self._h(suffix)} 参数为空")
            values[suffix] = value
        if values["Algorithm"].lower() != dialect.ALGORITHM:
            return self._error(400, f"参数错误:{self._h('Algorithm')} 不支持的算法")
        if values["AppID"] != self.app_id:
            return self._error(400, f"参数错误:{self._h('AppID')} 应用不存在")
        try:
            sent_at = int(values["Time"])
        except ValueError:
            return self._error(400, f"参数错误:{self._h('Time')} 格式错误")
        if abs(self.clock() - sent_at) > dialect.TIME_WINDOW:
            return self._error(400, f"参数错误:{self._h('Time')} 请求已过期")
        try:
            body = json.loads(request.body.decode("utf-8"))  # dicts keep the body's key order
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self._error(400, "参数错误:请求体不是 JSON 对象")
        expected = vendor_request_sign(self.app_secret, path, body, values["AppType"], values["Time"],
                                       values["Nonce"])
        if not hmac.compare_digest(expected.encode("ascii"), values["Sign"].encode("utf-8", "replace")):
            return self._error(400, f"验签失败:{self._h('Sign')} 签名不一致")
        with self._state:
            now = self.clock()
            self._nonces = {n: t for n, t in self._nonces.items() if now - t <= 2 * dialect.TIME_WINDOW}
            if values["Nonce"] in self._nonces:
                return self._error(400, f"参数错误:{self._h('Nonce')} 重复请求")
            self._nonces[values["Nonce"]] = now
            forced = self._forced.popleft() if self._forced else None
        request_id = f"juse-{next(self._request_ids)}"
        if forced is not None:
            return self._error(forced[0], forced[1], request_id)
        if body.get("appId") != values["AppID"]:
            return self._error(400, f"参数错误:appId 与 {self._h('AppID')} 不一致", request_id)
        if path == "/spi/sendSms":
            return self._send_sms(body, request_id)
        return self._send_task(body, request_id)

    def _common(self, body: dict[str, Any], required: tuple[str, ...]) -> str | None:
        for key in required:
            value = body.get(key)
            if key == "params":
                if not isinstance(value, dict):
                    return "参数错误:params 参数为空"
            elif not isinstance(value, str) or not value.strip():
                return f"参数错误:{key} 参数为空"
        return None

    def _phones(self, encrypted: str) -> list[str] | None:
        try:
            plain = dialect.decrypt_phone(self.app_secret, encrypted)
        except (ValueError, UnicodeDecodeError):
            return None
        return plain.split(",")

    def _send_sms(self, body: dict[str, Any], request_id: str) -> HttpResponse:
        problem = self._common(body, ("appId", "templateId", "signName", "phone", "params"))
        if problem:
            return self._error(400, problem, request_id)
        phones = self._phones(body["phone"])
        if phones is None:
            return self._error(400, "参数错误:phone 解密失败", request_id)
        if len(phones) != 1 or not _PHONE.match(phones[0]):
            return self._error(400, "参数错误:phone 手机号码格式错误", request_id)
        with self._state:
            record = SentRecord(record_id=next(self._ids), phone=phones[0], template_id=body["templateId"],
                                sign_name=body["signName"], params=body["params"])
            self.records.append(record)
        return self._ok(record.record_id, request_id)

    def _send_task(self, body: dict[str, Any], request_id: str) -> HttpResponse:
        problem = self._common(body, ("appId", "name", "templateId", "signName", "planTime", "phones", "params"))
        if problem:
            return self._error(400, problem, request_id)
        try:
            dt.datetime.strptime(body["planTime"], _PLAN_TIME)
        except ValueError:
            return self._error(400, "参数错误:planTime 格式应为 yyyy-MM-dd HH:mm:ss", request_id)
        phones = self._phones(body["phones"])
        if phones is None:
            return self._error(400, "参数错误:phones 解密失败", request_id)
        if len(phones) > 1000:
            return self._error(400, "参数错误:phones 最多支持 1000 个号码", request_id)
        if not all(_PHONE.match(p) for p in phones):
            return self._error(400, "参数错误:phones 手机号码格式错误", request_id)
        with self._state:
            task_id = next(self._ids)
            records = [SentRecord(record_id=next(self._ids), phone=p, template_id=body["templateId"],
                                  sign_name=body["signName"], params=body["params"], task_id=task_id,
                                  plan_time=body["planTime"], status=0) for p in phones]
            self.records.extend(records)
            self.tasks[task_id] = SentTask(task_id=task_id, name=body["name"], plan_time=body["planTime"],
                                           record_ids=[r.record_id for r in records])
        return self._ok(task_id, request_id)

    # -- pushes ------------------------------------------------------------------------------
    def _now_text(self) -> str:
        return dt.datetime.fromtimestamp(self.clock(), CHINA_TZ).strftime(_PLAN_TIME)

    def callback_headers(self, kind: str, timestamp: Any = None, nonce: str | None = None,
                         app_id: str | None = None) -> dict[str, str]:
        """The push headers, signed as the vendor signs them."""
        ts = str(int(self.clock()) if timestamp is None else timestamp)
        nonce = nonce or uuid.uuid4().hex
        sign = vendor_callback_sign(self.app_secret, ts, nonce, app_id or self.app_id, kind)
        return {"Content-Type": "application/json;charset=UTF-8", self._h("Time"): ts, self._h("Nonce"): nonce,
                self._h("Sign"): sign}

    def callback_body(self, kind: str, **lists: Any) -> bytes:
        fields = {"appId": self.app_id, "type": kind, "extensions": {}, **lists}
        return json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def push_callback(self, url: str, kind: str, timestamp: Any = None, nonce: str | None = None,
                      **lists: Any) -> HttpResponse:
        """POST one signed push of type ``kind`` carrying ``lists`` (e.g. ``sendSmsRecordDtoList=[...]``)."""
        return self.push(url, self.callback_body(kind, **lists), self.callback_headers(kind, timestamp, nonce))

    @staticmethod
    def _acknowledged(response: HttpResponse) -> bool:
        try:
            return response.status == 200 and str(response.json().get("code")) == "200"
        except (ValueError, AttributeError):
            return False

    def push_pending(self, url: str, per_push: int = 100) -> list[HttpResponse]:
        """POST the kept reports as ``sms_report`` pushes (``per_push`` records each). Reports whose
        push was not answered ``{"code":200}`` stay kept for the next call."""
        with self._state:
            pending, self.pending_reports = self.pending_reports, []
        answers, unacknowledged = [], []
        for start in range(0, len(pending), per_push):
            chunk = pending[start:start + per_push]
            dtos = [{"sendRecordId": r.record_id, "sendStatus": r.status, "reportDate": self._now_text(),
                     "remark": "发送成功" if r.status == 1 else "发送失败"} for r in chunk]
            answer = self.push_callback(url, "sms_report", sendSmsRecordDtoList=dtos)
            answers.append(answer)
            if not self._acknowledged(answer):
                unacknowledged.extend(chunk)
        if unacknowledged:
            with self._state:
                self.pending_reports[:0] = unacknowledged
        return answers

    def push_task_reports(self, url: str) -> list[HttpResponse]:
        """POST one ``sms_task_report`` for every task not yet summarised whose phones all have a
        final status (sent or failed)."""
        with self._state:
            by_id = {r.record_id: r for r in self.records}
            ready = [t for t in self.tasks.values() if not t.summarised
                     and all(by_id[i].status in (1, -1) for i in t.record_ids)]
        answers = []
        for task in ready:
            statuses = [by_id[i].status for i in task.record_ids]
            dto = {"sendTaskId": task.task_id, "totalCount": len(statuses),
                   "sendCount": statuses.count(1), "failCount": statuses.count(-1)}
            answer = self.push_callback(url, "sms_task_report", sendSmsTaskDto=dto)
            answers.append(answer)
            if self._acknowledged(answer):
                task.summarised = True
        return answers

    def push_inbound(self, url: str, phone: str, content: str, add_serial: str = "") -> HttpResponse:
        """POST one ``sms_deliver`` push: ``phone`` sent ``content`` to us."""
        dto = {"content": content, "mobile": phone, "sendTime": self._now_text(), "addSerial": add_serial}
        return self.push_callback(url, "sms_deliver", smsDeliverDtoList=[dto])


__all__ = ["JuseSimulator", "SentRecord", "SentTask"]
