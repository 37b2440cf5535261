"""A loopback opass server: checks the signature as the vendor does and answers with its codes.

What it enforces, from the document:

* headers ``x-api-key``, ``x-sign-method`` (the six HMACs), ``x-nonce`` (digits, at least 10, not
  reused within the window), ``x-timestamp`` (13 digits, within 60 s of its clock), ``x-sign``
  (hex HMAC of the sorted ``key=value&...`` string of the body fields and those four headers);
* ``/message/send``: at most 1000 phones (60008), known template (60001), variable count
  (60003), variable length (60004), variable format (60006), extension code (40006), bid length
  (40004), balance (40002); malformed numbers and blocked numbers come back in ``failPhones``;
* ``/message/sendBatch``: the same, plus phones/params count (60002) and phone JSON (60007);
* the query calls (``/sms/arriveRes/qry``, ``/sms/residueValue/qry``, ``/sms/send/statistics``)
  share ``query_calls_per_minute`` calls a minute (the FAQ's three; 6000 beyond);
* ``/sms/arriveRes/qry``: each report returned once, at most 600 a call, last 6 hours;
* ``/sms/residueValue/qry``: besides, one call per ``balance_interval`` seconds (6000 beyond);
* ``/sms/send/statistics``: ``startDate``/``endDate`` yyyy-MM-dd, ``page`` from 1, ``pageSize``
  1-50 (40004 otherwise); besides, ``statistics_calls_per_minute`` calls a minute (four; 6000
  beyond). Days are counted from what it accepted and the reports it made (China dates).

Pushes: :meth:`push_pending` (reports) and :meth:`push_inbound`, unsigned, as the vendor does.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import uuid
from typing import Any

import attrs

from smsgate import HttpResponse, Message, Operation
from smsgate.testing import SimRequest, SimulatorServer

DEMO_API_KEY = "8767fd835ca3a4eb6f69129d71971760"
DEMO_ACCESS_KEY = "93cbd4468a0e4f1c9d2b824f5131aae0"
DEMO_TEMPLATE = "574277763210051584"

_HASHES = {"HmacMD5": hashlib.md5, "HmacSHA1": hashlib.sha1, "HmacSHA224": hashlib.sha224,
           "HmacSHA256": hashlib.sha256, "HmacSHA384": hashlib.sha384, "HmacSHA512": hashlib.sha512}
_PHONE = re.compile(r"1[3-9]\d{9}")

CLOCK_WINDOW_S = 60.0  #: FAQ: "短信服务端时间戳校准误差是60秒"
MAX_PHONES = 1000
MAX_REPORTS_PER_CALL = 600
REPORT_AGE_S = 6 * 3600  #: "只能查询最近6小时内的回执信息"


@attrs.frozen
class Template:
    """A template the simulated account owns: how many variables, how long each may be."""

    code: str
    variables: int
    max_length: int = 30
    max_recipients: int | None = None  #: a per-send recipient limit set on the template (40005)


DEFAULT_TEMPLATES = (
    Template(DEMO_TEMPLATE, 2),  # the document's examples and the "Done when" command
    Template("574005827011772416", 0),  # the document's "不带变量" example
    Template("817436511033106432", 1),  # the document's backslash example
)


@attrs.define
class Sent:
    msg_id: str
    phone: str
    params: list[str]
    bid: str | None
    up_extend_code: str | None
    template: str
    accepted_at: float


class OpassSimulator(SimulatorServer):
    def __init__(self, host: str = "127.0.0.1", port: int = 0, api_key: str = DEMO_API_KEY,
                 access_key: str = DEMO_ACCESS_KEY, templates: Any = DEFAULT_TEMPLATES,
                 balances: dict[str, int] | None = None):
        super().__init__(host, port)
        self.api_key = api_key
        self.access_key = access_key
        self.templates = {t.code: t for t in templates}
        self.balances = dict(balances or {"行业短信": 9784, "会员短信": 10007, "推广短信": 6506})
        self.blocked_phones: set[str] = set()  #: numbers answered in failPhones (e.g. a blacklist)
        self.ip_allowed = True  #: False: every call is answered 2000 (IP whitelist)
        self.forced_codes: collections.deque[tuple[int, str]] = collections.deque()
        self.query_calls_per_minute = 3  #: FAQ: the query interfaces together, three calls a minute
        self.balance_interval = 15.0  #: "默认限制15秒一次"
        self.statistics_calls_per_minute = 4  #: "单用户QPS限制4次/分钟"
        self.clock = time.time  #: the vendor's clock, for the 60 s timestamp window
        self.sent: list[Sent] = []
        self.pending_reports: list[dict[str, Any]] = []
        self.verified: list[dict[str, Any]] = []  #: headers and fields of every verified request
        self._reported: set[tuple[str, str]] = set()
        self._nonces: dict[str, float] = {}
        self._query_calls: collections.deque[float] = collections.deque()
        self._statistics_calls: collections.deque[float] = collections.deque()
        self._last_balance: float | None = None
        #: (msg_id, phone) -> the status word of the report made for it
        self.report_words: dict[tuple[str, str], str] = {}
        self._ids = itertools.count(574730770464800768)
        self._state = threading.Lock()

    # -- test controls ---------------------------------------------------------------------
    def force_code(self, code: int, message: str = "") -> None:
        """Answer the next request with ``code`` (after the signature check)."""
        self.forced_codes.append((int(code), message))

    # -- harness API -----------------------------------------------------------------------
    def demo_config(self) -> dict[str, Any]:
        # the simulator pushes from this host: the allow-list is the push protection
        return {"base_url": self.url, "api_key": self.api_key, "access_key": self.access_key,
                "sign_method": "HmacSHA256", "push_allow_ips": ["127.0.0.1", "::1"]}

    def demo_message(self, operation: Any = None) -> Message:
        if operation == Operation.SEND_BATCH:
            return Message.personalised({"13800138000": ["张三", "02"], "13900139000": ["李四", "03"]},
                                        template_id=DEMO_TEMPLATE)
        return Message(to=["13800138000", "13900139000"], template_id=DEMO_TEMPLATE, params=["张三", "02"])

    def deliver_all(self, status: str = "DELIVRD", statuses: dict[str, str] | None = None) -> int:
        """Make a report for every accepted, not yet reported message (``statuses``: phone -> word)."""
        now = self.clock()
        arrive = time.strftime("%y%m%d%H%M", time.gmtime(now + 8 * 3600))
        made = 0
        with self._state:
            for s in self.sent:
                key = (s.msg_id, s.phone)
                if key in self._reported:
                    continue
                self._reported.add(key)
                self.report_words[key] = (statuses or {}).get(s.phone, status)
                self.pending_reports.append({
                    "msgId": s.msg_id, "tel": s.phone, "arrive": (statuses or {}).get(s.phone, status),
                    "arriveTime": arrive, "bid": s.bid, "_at": now,
                })
                made += 1
        return made

    def push_pending(self, url: str) -> list[HttpResponse]:
        """POST every kept report to ``url`` in the push shape, unsigned, as the vendor does."""
        with self._state:
            reports, self.pending_reports = self.pending_reports, []
        answers = []
        for start in range(0, len(reports), 500):
            data = [{"msgId": r["msgId"], "tel": r["tel"], "arriveResult": r["arrive"],
                     "arriveTime": r["arriveTime"], "bid": r["bid"]} for r in reports[start:start + 500]]
            answers.append(self._push(url, {"apiKey": self.api_key, "data": data}))
        return answers

    def push_inbound(self, url: str, phone: str, content: str, src_id: str = "106900001234") -> HttpResponse:
        """POST one inbound SMS (上行) to ``url`` in the vendor's shape."""
        arrive = time.strftime("%y%m%d%H%M", time.gmtime(self.clock() + 8 * 3600))
        body = {"apiKey": self.api_key, "data": [{"srcId": src_id, "tel": phone, "content": content,
                                                   "arriveTime": arrive}]}
        return self._push(url, body)

    def _push(self, url: str, body: dict[str, Any]) -> HttpResponse:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        return self.push(url, data, {"Content-Type": "application/json;charset=UTF-8"})

    # -- the vendor ------------------------------------------------------------------------
    def _answer(self, code: int, message: str, data: Any = None) -> HttpResponse:
        body: dict[str, Any] = {"code": code, "message": message}
        if data is not None:
            body["data"] = data
        body["requestId"] = str(uuid.uuid4())
        return HttpResponse.of_json(body)

    def handle(self, request: SimRequest) -> HttpResponse:
        path = request.path.split("?")[0].rstrip("/")
        routes = {"/message/send": self._send, "/message/sendBatch": self._send_batch,
                  "/sms/arriveRes/qry": self._reports, "/sms/residueValue/qry": self._balance,
                  "/sms/send/statistics": self._statistics}
        if not self.ip_allowed:
            return self._answer(2000, "IP白名单限制")
        try:
            fields = json.loads(request.body.decode("utf-8")) if request.body.strip() else {}
        except (ValueError, UnicodeDecodeError):
            return self._answer(40004, "参数错误: 请求体不是JSON")
        if not isinstance(fields, dict):
            return self._answer(40004, "参数错误: 请求体不是JSON对象")
        refused = self._verify(request, fields)
        if refused is not None:
            return refused
        if self.forced_codes:
            code, message = self.forced_codes.popleft()
            return self._answer(code, message or f"forced {code}")
        route = routes.get(path)
        if route is None:
            return HttpResponse(status=404, body=b'{"status":404,"error":"Not Found"}')
        return route(fields)

    def _verify(self, request: SimRequest, fields: dict[str, Any]) -> HttpResponse | None:
        api_key = request.header("x-api-key")
        method = request.header("x-sign-method")
        nonce = request.header("x-nonce")
        timestamp = request.header("x-timestamp")
        sign = request.header("x-sign")
        if not (api_key and method and nonce and timestamp and sign):
            return self._answer(2001, "API授权失败或授权参数不完整")
        if not hmac.compare_digest(api_key.encode(), self.api_key.encode()):
            return self._answer(2001, "API授权失败: 未知的apiKey")
        if method not in _HASHES:
            return self._answer(2001, "API授权失败: 不支持的签名方法")
        if not (nonce.isascii() and nonce.isdigit() and len(nonce) >= 10):
            return self._answer(2001, "API授权失败: x-nonce须为至少10位数字")
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) == 13):
            return self._answer(40004, "无效的参数（时间戳）")
        now = self.clock()
        if abs(now - int(timestamp) / 1000.0) > CLOCK_WINDOW_S:
            return self._answer(40004, "无效的参数（时间戳）")
        pairs = {k: v for k, v in fields.items()}
        pairs.update({"x-api-key": api_key, "x-nonce": nonce, "x-sign-method": method, "x-timestamp": timestamp})
        text = "&".join(f"{k}={_text(pairs[k])}" for k in sorted(pairs) if _text(pairs[k]))
        expected = hmac.new(self.access_key.encode("utf-8"), text.encode("utf-8"), _HASHES[method]).hexdigest()
        if not hmac.compare_digest(expected.encode(), sign.strip().lower().encode()):
            return self._answer(2001, "API授权错误: 签名不正确")
        with self._state:
            for seen, at in list(self._nonces.items()):
                if now - at > CLOCK_WINDOW_S * 2:
                    del self._nonces[seen]
            if nonce in self._nonces:
                return self._answer(2001, "API授权失败: 重复提交(x-nonce)")
            self._nonces[nonce] = now
            self.verified.append({"method": method, "nonce": nonce, "timestamp": timestamp,
                                  "sign_string": text, "fields": dict(fields)})
        return None

    # -- sending ---------------------------------------------------------------------------
    def _common_checks(self, fields: dict[str, Any]) -> tuple[Template | None, HttpResponse | None]:
        code = fields.get("templateCode")
        if not isinstance(code, str) or not code:
            return None, self._answer(40004, "参数错误: templateCode不能为空")
        template = self.templates.get(code)
        if template is None:
            return None, self._answer(60001, "模板不存在")
        ext = fields.get("upExtendCode")
        if ext not in (None, ""):
            if not (isinstance(ext, str) and ext.isascii() and ext.isdigit() and 1 <= int(ext) <= 99):
                return None, self._answer(40006, "扩展号不匹配或者被企业其他账号占用")
        bid = fields.get("bid")
        if bid is not None and (not isinstance(bid, str) or len(bid) > 64):
            return None, self._answer(40004, "参数错误: bid长度不超过64字符")
        return template, None

    def _check_params(self, template: Template, params: Any) -> HttpResponse | None:
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            return self._answer(60006, "模板参数变量格式错误")
        if template.variables == 0 and params in ([], [""]):
            return None
        if len(params) != template.variables:
            return self._answer(60003, "短信变量个数和模板变量个数不一样")
        if any(len(p) > template.max_length for p in params):
            return self._answer(60004, "变量值超过模板设置的变量值最大长度")
        return None

    def _send(self, fields: dict[str, Any]) -> HttpResponse:
        template, refused = self._common_checks(fields)
        if template is None or refused is not None:
            assert refused is not None  # no template comes with the answer saying why
            return refused
        phones_text = fields.get("phones")
        if not isinstance(phones_text, str) or not phones_text.strip():
            return self._answer(40004, "参数错误: phones不能为空")
        phones = [p.strip() for p in phones_text.split(",") if p.strip()]
        if len(phones) > MAX_PHONES:
            return self._answer(60008, "手机号数量大于1000")
        raw = fields.get("templateParam")
        try:
            params = json.loads(raw) if raw not in (None, "") else []
        except (ValueError, TypeError):
            return self._answer(60006, "模板参数变量格式错误")
        refused = self._check_params(template, params)
        if refused is not None:
            return refused
        return self._accept(template, fields, [(p, params) for p in phones])

    def _send_batch(self, fields: dict[str, Any]) -> HttpResponse:
        template, refused = self._common_checks(fields)
        if template is None or refused is not None:
            assert refused is not None  # no template comes with the answer saying why
            return refused
        try:
            phones = json.loads(fields.get("phonesJson") or "")
        except (ValueError, TypeError):
            return self._answer(60007, "手机号参数格式错误")
        if not isinstance(phones, list) or not phones or not all(isinstance(p, str) for p in phones):
            return self._answer(60007, "手机号参数格式错误")
        if len(phones) > MAX_PHONES:
            return self._answer(60008, "手机号数量大于1000")
        raw = fields.get("templateParamJson")
        try:
            param_lists = json.loads(raw) if raw not in (None, "") else [""] * len(phones)
        except (ValueError, TypeError):
            return self._answer(60006, "模板参数变量格式错误")
        if not isinstance(param_lists, list):
            return self._answer(60006, "模板参数变量格式错误")
        if len(param_lists) != len(phones):
            return self._answer(60002, "批量发送下电话数量和参数数量不一样")
        pairs = []
        for phone, params in zip(phones, param_lists):
            params = [] if params == "" else params
            refused = self._check_params(template, params)
            if refused is not None:
                return refused
            pairs.append((phone, params))
        return self._accept(template, fields, pairs)

    def _accept(self, template: Template, fields: dict[str, Any], pairs: list[tuple[str, list[str]]]) -> HttpResponse:
        if template.max_recipients is not None and len(pairs) > template.max_recipients:
            return self._answer(40005, "超出模板参数设置限制")
        failed = [p for p, _ in pairs if not _PHONE.fullmatch(p) or p in self.blocked_phones]
        good = [(p, params) for p, params in pairs if p not in failed]
        if not good:
            return self._answer(60005, "没有可以发送的内容")
        with self._state:
            if self.balances.get("行业短信", 0) < len(good):
                return self._answer(40002, "余额不足")
            self.balances["行业短信"] -= len(good)
            msg_id = str(next(self._ids))
            now = self.clock()
            for phone, params in good:
                self.sent.append(Sent(msg_id=msg_id, phone=phone, params=list(params), bid=fields.get("bid"),
                                      up_extend_code=fields.get("upExtendCode"), template=template.code,
                                      accepted_at=now))
        data: dict[str, Any] = {"msgId": msg_id, "desc": "提交成功"}
        if failed:
            data["failPhones"] = ",".join(failed)
        return self._answer(200, "OK", data)

    # -- queries ---------------------------------------------------------------------------
    def _within(self, calls: collections.deque[float], per_minute: int, now: float) -> bool:
        """True when one more call fits ``per_minute`` (the caller holds ``_state``)."""
        while calls and now - calls[0] >= 60:
            calls.popleft()
        return not per_minute or len(calls) < per_minute

    def _query_allowed(self, now: float, *own: tuple[collections.deque[float], int]) -> bool:
        """Count a query call against the shared budget and ``own`` ones, if all have room
        (the caller holds ``_state``); a refused call is not counted."""
        budgets = [(self._query_calls, self.query_calls_per_minute), *own]
        if not all(self._within(calls, limit, now) for calls, limit in budgets):
            return False
        for calls, _ in budgets:
            calls.append(now)
        return True

    def _reports(self, fields: dict[str, Any]) -> HttpResponse:
        now = self.clock()
        with self._state:
            if not self._query_allowed(now):
                return self._answer(6000, "访问频繁,请稍后再试")
            ids = {i.strip() for i in str(fields.get("msgId") or "").split(",") if i.strip()}
            bid = fields.get("bid") or None
            out: list[dict[str, Any]] = []
            kept: list[dict[str, Any]] = []
            for r in self.pending_reports:
                fresh = now - r["_at"] <= REPORT_AGE_S
                wanted = (not ids or r["msgId"] in ids) and (bid is None or r["bid"] == bid)
                if fresh and wanted and len(out) < MAX_REPORTS_PER_CALL:
                    out.append({k: v for k, v in r.items() if not k.startswith("_")})
                elif fresh:
                    kept.append(r)
            self.pending_reports = kept
        return self._answer(200, "查询成功", out)

    def _balance(self, fields: dict[str, Any]) -> HttpResponse:
        now = self.clock()
        with self._state:
            if self.balance_interval and self._last_balance is not None and \
                    now - self._last_balance < self.balance_interval:
                return self._answer(6000, "访问频繁,请稍后再试")
            if not self._query_allowed(now):
                return self._answer(6000, "访问频繁,请稍后再试")
            self._last_balance = now
            data = [{"itemName": k, "residueValue": v} for k, v in self.balances.items()]
        return self._answer(200, "OK", data)

    def _statistics(self, fields: dict[str, Any]) -> HttpResponse:
        import datetime as dt

        dates = []
        for name in ("startDate", "endDate"):
            value = fields.get(name)
            try:
                if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                    raise ValueError
                dates.append(dt.date.fromisoformat(value))
            except ValueError:
                return self._answer(40004, f"参数错误: {name}格式为yyyy-MM-dd")
        page, size = fields.get("page"), fields.get("pageSize")
        if isinstance(page, bool) or not isinstance(page, int) or page < 1:
            return self._answer(40004, "参数错误: page")
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 50:
            return self._answer(40004, "参数错误: pageSize取值1~50")
        if dates[1] < dates[0]:
            return self._answer(40004, "参数错误: endDate早于startDate")
        now = self.clock()
        with self._state:
            if not self._query_allowed(now, (self._statistics_calls, self.statistics_calls_per_minute)):
                return self._answer(6000, "访问频繁,请稍后再试")
            days: dict[str, dict[str, int]] = {}
            for sent in self.sent:
                day = time.strftime("%Y-%m-%d", time.gmtime(sent.accepted_at + 8 * 3600))
                if not dates[0].isoformat() <= day <= dates[1].isoformat():
                    continue
                row = days.setdefault(day, {"totalCount": 0, "successCount": 0, "failCount": 0, "noReceiptCount": 0})
                word = self.report_words.get((sent.msg_id, sent.phone))
                row["totalCount"] += 1
                row["successCount" if word == "DELIVRD" else "failCount" if word else "noReceiptCount"] += 1
        rows = [{**row, "sendDate": day} for day, row in sorted(days.items())]
        body: dict[str, Any] = {"code": 200, "message": "OK", "data": rows[(page - 1) * size:page * size],
                                "totalSize": len(rows), "requestId": str(uuid.uuid4())}
        return HttpResponse.of_json(body)


def _text(value: Any) -> str:
    """How the vendor writes a body value into the sign string (empty: left out)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)
