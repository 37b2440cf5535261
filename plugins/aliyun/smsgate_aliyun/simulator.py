"""A loopback Dysmsapi 2017-05-25 (Alibaba Cloud SMS) for tests, the demo and the benchmarks.

It checks every request the way Alibaba Cloud's API gateway describes it, with its own code
written from the reference (it imports nothing from the plugin's dialect): signature V3
(``ACS3-HMAC-SHA256`` in ``Authorization``, what the plugin and the official SDK send by
default) and the older RPC signature (``Signature``/``SignatureMethod=HMAC-SHA1`` in the query,
what the official SDK sends with ``signature_algorithm='v2'``), a time window and nonce reuse.
Then it speaks SendSms, SendBatchSms and QuerySendDetails, keeps per-number records, and pushes
SmsReport and SmsUp batches to a receiver.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import itertools
import json
import re
import threading
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import attrs

from smsgate import HttpResponse, Message, Operation
from smsgate.testing import SimulatorServer, SimRequest

ACCESS_KEY_ID = "LTAI5tDemoAccessKeyId0001"
ACCESS_KEY_SECRET = "DemoAccessKeySecretForTheSimulator01"
SIGN_NAME = "阿里云短信测试"
DEMO_TEMPLATE = "SMS_154950909"  #: "您的验证码为：${code}，请勿泄露于他人！"
NOTICE_TEMPLATE = "SMS_200000001"  #: "尊敬的${name}，您的订单${order}已发货。"
PUSH_PATH_SECRET = "demo-push-secret-8c1f"

V3_WINDOW_S = 15 * 60  #: "值为请求发出前15分钟内的时间"
V1_WINDOW_S = 31 * 60  #: the RPC signature's Timestamp: "有效期为31分钟"
MAX_SEND = 1000
MAX_BATCH = 100
CHINA = dt.timezone(dt.timedelta(hours=8))


@attrs.frozen
class Template:
    code: str
    variables: tuple[str, ...]


@attrs.define
class Record:
    """One number of one accepted send: what QuerySendDetails returns and SmsReport pushes."""

    biz_id: str
    phone: str
    template: str
    content: str
    out_id: str | None
    sent_at: float
    status: int = 1  #: SendStatus: 1 waiting for the receipt, 2 failed, 3 delivered
    err_code: str = ""
    reported_at: float | None = None
    pushed: bool = False


# -- the gateway's own reading of the reference ---------------------------------------------------

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~")


def rfc3986(text: str) -> str:
    """Each UTF-8 byte outside A-Z a-z 0-9 - _ . ~ as %XY (upper-case hex)."""
    return "".join(chr(b) if b in _UNRESERVED else "%%%02X" % b for b in text.encode("utf-8"))


def v3_string_to_sign(method: str, path: str, params: list[tuple[str, str]], headers: dict[str, str],
                      signed: list[str], payload_hash: str) -> str:
    """``ACS3-HMAC-SHA256\\n`` + hex SHA-256 of the canonical request, as the V3 reference builds it."""
    query = "&".join(rfc3986(k) + "=" + rfc3986(v) for k, v in sorted(params))
    lines = [method.upper(), path or "/", query]
    lines.append("".join(name + ":" + headers.get(name, "").strip() + "\n" for name in signed))
    lines.append(";".join(signed))
    lines.append(payload_hash)
    canonical = "\n".join(lines)
    return "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def v3_signature(secret: str, string_to_sign: str) -> str:
    return hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def v1_signature(method: str, params: dict[str, str], secret: str) -> str:
    """The RPC signature (HMAC-SHA1, SignatureVersion 1.0) over every parameter but ``Signature``:
    ``METHOD&%2F&encode(k1=v1&k2=v2…)`` keyed with ``secret + "&"``, base64."""
    canonical = "&".join(rfc3986(k) + "=" + rfc3986(params[k]) for k in sorted(params) if k != "Signature")
    text = method.upper() + "&" + rfc3986("/") + "&" + rfc3986(canonical)
    digest = hmac.new((secret + "&").encode("utf-8"), text.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


_AUTH = re.compile(r"^ACS3-HMAC-SHA256\s+Credential=([^,]+),SignedHeaders=([^,]*),Signature=([0-9a-f]+)$")


def _parse_time(text: str) -> float | None:
    try:
        return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc).timestamp()
    except (TypeError, ValueError):
        return None


class Refused(Exception):
    """An error answer: HTTP status, code, message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(code)
        self.status, self.code, self.message = status, code, message


class AliyunSimulator(SimulatorServer):
    """Dysmsapi on 127.0.0.1. Knobs for tests: ``force_code``, ``balance``, ``frequency_limit``
    (per-number sends allowed in a window: off by default, as the demo and the suites resend to
    the same numbers), ``clock`` (the gateway's clock for the time windows)."""

    def __init__(self, access_key_id: str = ACCESS_KEY_ID, access_key_secret: str = ACCESS_KEY_SECRET,
                 push_path_secret: str = PUSH_PATH_SECRET, **kwargs: Any):
        super().__init__(**kwargs)
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.push_path_secret = push_path_secret
        self.signs = {SIGN_NAME, "阿里云"}
        self.templates = {t.code: t for t in (Template(DEMO_TEMPLATE, ("code",)),
                                              Template(NOTICE_TEMPLATE, ("name", "order")))}
        self.balance = 100_000  #: SMS the account can still pay for
        self.frequency_limit: tuple[int, float] | None = None  #: (sends, seconds) per number
        self.clock = time.time
        self.records: list[Record] = []
        self.verified: list[dict[str, Any]] = []  #: style, action and parameters of every verified call
        self.forced: list[tuple[str, str, int]] = []
        self._nonces: dict[str, float] = {}
        self._sent_times: dict[str, list[float]] = {}
        self._ids = itertools.count(900619746936498)
        self._state = threading.Lock()

    # -- test controls -----------------------------------------------------------------------
    def force_code(self, code: str, message: str = "", status: int = 200) -> None:
        """Answer the next verified request with ``code`` (HTTP ``status``)."""
        self.forced.append((code, message or code, status))

    # -- harness API -------------------------------------------------------------------------
    def demo_config(self) -> dict[str, Any]:
        return {"base_url": self.url, "access_key_id": self.access_key_id,
                "access_key_secret": self.access_key_secret, "sign_name": SIGN_NAME,
                "push_path_secret": self.push_path_secret}

    def demo_message(self, operation: Any = None) -> Message:
        if operation == Operation.SEND_BATCH:
            return Message.personalised({"13800138000": {"name": "张三", "order": "A1001"},
                                         "13900139000": {"name": "李四", "order": "A1002"}},
                                        template_id=NOTICE_TEMPLATE)
        return Message(to=["13800138000", "13900139000"], template_id=DEMO_TEMPLATE, params={"code": "1234"})

    def deliver_all(self, err_codes: dict[str, str] | None = None) -> int:
        """Give every waiting record its receipt: DELIVERED, or ``err_codes[phone]`` (a failure)."""
        now = self.clock()
        made = 0
        with self._state:
            for r in self.records:
                if r.status != 1:
                    continue
                code = (err_codes or {}).get(r.phone, "DELIVERED")
                r.status, r.err_code, r.reported_at = (3 if code == "DELIVERED" else 2), code, now
                made += 1
        return made

    def push_url(self, url: str) -> str:
        """``url`` as registered in the console: with the path secret, when there is one."""
        if not self.push_path_secret:
            return url
        return url.rstrip("/") + "/" + rfc3986(self.push_path_secret)

    def push_pending(self, url: str) -> list[HttpResponse]:
        """POST every receipt not yet pushed to ``url`` as SmsReport batches (JSON arrays)."""
        with self._state:
            due = [r for r in self.records if r.reported_at is not None and not r.pushed]
            for r in due:
                r.pushed = True
        answers = []
        for start in range(0, len(due), 100):
            batch = [self.report_item(r) for r in due[start:start + 100]]
            answers.append(self._push(url, batch))
        return answers

    def push_inbound(self, url: str, phone: str, content: str, dest_code: str = "1234") -> HttpResponse:
        """POST one SmsUp item (an SMS a user sent) to ``url``."""
        item = {"phone_number": phone, "send_time": _china(self.clock()), "content": content,
                "sign_name": SIGN_NAME, "dest_code": dest_code, "sequence_id": next(self._ids)}
        return self._push(url, [item])

    @staticmethod
    def report_item(r: Record) -> dict[str, Any]:
        return {"phone_number": r.phone, "send_time": _china(r.sent_at), "report_time": _china(r.reported_at),
                "success": r.status == 3, "err_code": r.err_code,
                "err_msg": "用户接收成功" if r.status == 3 else "失败", "sms_size": "1", "biz_id": r.biz_id,
                "out_id": r.out_id or ""}

    def _push(self, url: str, items: list[dict[str, Any]]) -> HttpResponse:
        body = json.dumps(items, ensure_ascii=False).encode("utf-8")
        return self.push(self.push_url(url), body, {"Content-Type": "application/json;charset=UTF-8"})

    # -- the vendor ----------------------------------------------------------------------------
    def _error(self, status: int, code: str, message: str) -> HttpResponse:
        body = {"RequestId": str(uuid.uuid4()).upper(), "Code": code, "Message": message}
        if status != 200:
            body.update({"HostId": "dysmsapi.aliyuncs.com",
                         "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}"})
        return HttpResponse.of_json(body, status=status)

    def handle(self, request: SimRequest) -> HttpResponse:
        try:
            action, params = self._authenticate(request)
            if self.forced:
                code, message, status = self.forced.pop(0)
                raise Refused(status, code, message)
            route = {"SendSms": self._send_sms, "SendBatchSms": self._send_batch,
                     "QuerySendDetails": self._query_details}.get(action)
            if route is None:
                raise Refused(404, "InvalidAction.NotFound", f"Specified api is not found, please check your url "
                                                             f"and method. Action: {action}")
            return HttpResponse.of_json({"RequestId": str(uuid.uuid4()).upper(), **route(params)})
        except Refused as err:
            return self._error(err.status, err.code, err.message)

    def _authenticate(self, request: SimRequest) -> tuple[str, dict[str, str]]:
        parts = urlsplit(request.path)
        if request.method != "POST" and request.method != "GET":
            raise Refused(400, "UnsupportedHTTPMethod", "This http method is not supported.")
        query = parse_qsl(parts.query, keep_blank_values=True)
        form: list[tuple[str, str]] = []
        ctype = (request.header("content-type") or "").lower()
        if request.body and ctype.startswith("application/x-www-form-urlencoded"):
            try:
                form = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
            except UnicodeDecodeError:
                raise Refused(400, "InvalidParameter", "The body is not UTF-8.") from None
        if request.header("authorization"):
            action = self._verify_v3(request, parts.path, query)
            params = dict(query)
            params.update(form)
        else:
            params = dict(query)
            params.update(form)
            action = self._verify_v1(request, params)
        return action, params

    def _check_nonce(self, nonce: str, now: float, window: float) -> None:
        with self._state:
            for seen, at in list(self._nonces.items()):
                if now - at > 2 * window:
                    del self._nonces[seen]
            if nonce in self._nonces:
                raise Refused(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
            self._nonces[nonce] = now

    def _verify_v3(self, request: SimRequest, path: str, query: list[tuple[str, str]]) -> str:
        match = _AUTH.match((request.header("authorization") or "").strip())
        if not match:
            raise Refused(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
        key_id, signed_text, given = match.groups()
        if not hmac.compare_digest(key_id.encode(), self.access_key_id.encode()):
            raise Refused(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        headers = {k.lower(): v for k, v in request.headers}
        signed = signed_text.split(";") if signed_text else []
        # every header the reference says must be signed, and nothing unsorted or repeated
        must = {n for n in headers if n in ("host", "content-type") or n.startswith("x-acs-")}
        needed = {"host", "x-acs-action", "x-acs-version", "x-acs-date", "x-acs-signature-nonce",
                  "x-acs-content-sha256"}
        if not needed <= set(headers) or not must <= set(signed) or signed != sorted(set(signed)) \
                or not set(signed) <= set(headers):
            raise Refused(400, "IncompleteSignature", "The request signature does not conform to Aliyun standards.")
        body_hash = hashlib.sha256(request.body).hexdigest()
        if headers["x-acs-content-sha256"].strip().lower() != body_hash:
            raise Refused(400, "SignatureDoesNotMatch", "x-acs-content-sha256 does not match the request body.")
        when = _parse_time(headers["x-acs-date"].strip())
        if when is None:
            raise Refused(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
        now = self.clock()
        if abs(now - when) > V3_WINDOW_S:
            raise Refused(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        text = v3_string_to_sign(request.method, path, query, headers, signed, body_hash)
        if not hmac.compare_digest(v3_signature(self.access_key_secret, text).encode(), given.encode()):
            raise Refused(400, "SignatureDoesNotMatch",
                          "Specified signature does not match our calculation. The server string to sign is: "
                          + text.replace("\n", "\\n"))
        if headers["x-acs-version"].strip() != "2017-05-25":
            raise Refused(400, "InvalidVersion", "Specified parameter Version is not valid.")
        self._check_nonce(headers["x-acs-signature-nonce"].strip(), now, V3_WINDOW_S)
        action = headers["x-acs-action"].strip()
        with self._state:
            self.verified.append({"style": "v3", "action": action, "signed_headers": signed,
                                  "query": dict(query)})
        return action

    def _verify_v1(self, request: SimRequest, params: dict[str, str]) -> str:
        for name in ("AccessKeyId", "Signature", "SignatureMethod", "SignatureVersion", "SignatureNonce",
                     "Timestamp", "Action", "Version"):
            if not params.get(name):
                raise Refused(400, "MissingParameter" if name in ("Action", "Version") else "IncompleteSignature",
                              f"The input parameter \"{name}\" that is mandatory for processing this request "
                              "is not supplied.")
        if params["SignatureMethod"] != "HMAC-SHA1" or params["SignatureVersion"] != "1.0":
            raise Refused(400, "IncompleteSignature", "The signature method or version is not supported.")
        if not hmac.compare_digest(params["AccessKeyId"].encode(), self.access_key_id.encode()):
            raise Refused(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        when = _parse_time(params["Timestamp"])
        if when is None:
            raise Refused(400, "InvalidTimeStamp.Format", "Specified time stamp or date value is not well formatted.")
        now = self.clock()
        if abs(now - when) > V1_WINDOW_S:
            raise Refused(400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired.")
        expected = v1_signature(request.method, params, self.access_key_secret)
        if not hmac.compare_digest(expected.encode(), params["Signature"].encode()):
            raise Refused(400, "SignatureDoesNotMatch", "Specified signature is not matched with our calculation.")
        if params["Version"] != "2017-05-25":
            raise Refused(400, "InvalidVersion", "Specified parameter Version is not valid.")
        self._check_nonce(params["SignatureNonce"], now, V1_WINDOW_S)
        with self._state:
            self.verified.append({"style": "v1", "action": params["Action"], "query": dict(params)})
        return params["Action"]

    # -- sending -------------------------------------------------------------------------------
    def _template(self, params: dict[str, str]) -> Template:
        code = params.get("TemplateCode")
        if not code:
            raise Refused(400, "MissingTemplateCode", "TemplateCode is mandatory for this action.")
        template = self.templates.get(code)
        if template is None:
            raise Refused(200, "isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        return template

    def _variables(self, template: Template, raw: Any) -> dict[str, str]:
        if raw in (None, "") and not template.variables:
            return {}
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                raise Refused(200, "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值") from None
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise Refused(200, "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        missing = [v for v in template.variables if not raw.get(v)]
        if missing:
            raise Refused(200, "isv.TEMPLATE_MISSING_PARAMETERS", "模板变量缺少对应参数值")
        return raw

    def _check_sign(self, sign: Any) -> None:
        if not sign:
            raise Refused(400, "MissingSignName", "SignName is mandatory for this action.")
        if sign not in self.signs:
            raise Refused(200, "isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")

    def _check_phone(self, phone: str) -> None:
        if not re.fullmatch(r"(\+?86|0086)?1[3-9]\d{9}", phone):
            raise Refused(200, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")

    def _check_ext(self, ext: Any) -> None:
        if ext not in (None, "") and not (isinstance(ext, str) and ext.isascii() and ext.isdigit()):
            raise Refused(200, "isv.INVALID_PARAMETERS", "参数异常: SmsUpExtendCode")

    def _accept(self, template: Template, sends: list[tuple[str, str, dict[str, str]]],
                out_id: str | None) -> dict[str, Any]:
        if out_id is not None and len(out_id) >= 256:
            raise Refused(200, "isv.INVALID_PARAMETERS", "参数异常: OutId")
        now = self.clock()
        with self._state:
            if self.frequency_limit is not None:
                count, window = self.frequency_limit
                for phone, _, _ in sends:
                    recent = [t for t in self._sent_times.get(phone, []) if now - t < window]
                    if len(recent) >= count:
                        raise Refused(200, "isv.BUSINESS_LIMIT_CONTROL", "触发号码天级流控Permits:10")
            if self.balance < len(sends):
                raise Refused(200, "isv.AMOUNT_NOT_ENOUGH", "账户余额不足")
            self.balance -= len(sends)
            biz_id = f"{next(self._ids)}^0"
            for phone, sign, variables in sends:
                content = f"【{sign}】" + template.code + json.dumps(variables, ensure_ascii=False)
                self.records.append(Record(biz_id=biz_id, phone=phone[-11:], template=template.code,
                                           content=content, out_id=out_id, sent_at=now))
                self._sent_times.setdefault(phone, []).append(now)
        return {"Code": "OK", "Message": "OK", "BizId": biz_id}

    def _send_sms(self, params: dict[str, str]) -> dict[str, Any]:
        phones = [p.strip() for p in (params.get("PhoneNumbers") or "").split(",") if p.strip()]
        if not phones:
            raise Refused(400, "MissingPhoneNumbers", "PhoneNumbers is mandatory for this action.")
        if len(phones) > MAX_SEND:
            raise Refused(200, "isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制")
        sign = params.get("SignName") or ""
        self._check_sign(sign)
        template = self._template(params)
        for phone in phones:
            self._check_phone(phone)
        self._check_ext(params.get("SmsUpExtendCode"))
        variables = self._variables(template, params.get("TemplateParam"))
        return self._accept(template, [(p, sign, variables) for p in phones], params.get("OutId"))

    def _json_list(self, params: dict[str, str], name: str, required: bool = True) -> list[Any] | None:
        raw = params.get(name)
        if raw in (None, ""):
            if required:
                raise Refused(400, f"Missing{name}", f"{name} is mandatory for this action.")
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            raise Refused(200, "isv.INVALID_JSON_PARAM", f"JSON参数不合法: {name}") from None
        if not isinstance(value, list):
            raise Refused(200, "isv.INVALID_JSON_PARAM", f"JSON参数不合法: {name}")
        return value

    def _send_batch(self, params: dict[str, str]) -> dict[str, Any]:
        phones = self._json_list(params, "PhoneNumberJson") or []  # required: never None
        signs = self._json_list(params, "SignNameJson") or []
        template = self._template(params)
        variables = self._json_list(params, "TemplateParamJson", required=bool(template.variables))
        exts = self._json_list(params, "SmsUpExtendCodeJson", required=False)
        if len(phones) > MAX_BATCH:
            raise Refused(200, "isv.MOBILE_COUNT_OVER_LIMIT", "手机号码数量超过限制")
        if len(signs) != len(phones) or (variables is not None and len(variables) != len(phones)) \
                or (exts is not None and len(exts) != len(phones)):
            raise Refused(200, "isv.INVALID_PARAMETERS", "参数异常: 号码、签名、参数数量不一致")
        sends = []
        for i, phone in enumerate(phones):
            if not isinstance(phone, str):
                raise Refused(200, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
            self._check_phone(phone)
            self._check_sign(signs[i])
            if exts is not None:
                self._check_ext(exts[i])
            sends.append((phone, signs[i], self._variables(template, variables[i] if variables else None)))
        return self._accept(template, sends, params.get("OutId"))

    # -- queries -------------------------------------------------------------------------------
    def _query_details(self, params: dict[str, str]) -> dict[str, Any]:
        phone = params.get("PhoneNumber")
        if not phone:
            raise Refused(400, "MissingPhoneNumber", "PhoneNumber is mandatory for this action.")
        day = params.get("SendDate") or ""
        try:
            date = dt.datetime.strptime(day, "%Y%m%d").date()
        except ValueError:
            raise Refused(200, "isv.INVALID_PARAMETERS", "参数异常: SendDate") from None
        today = dt.datetime.fromtimestamp(self.clock(), CHINA).date()
        if not 0 <= (today - date).days <= 30:
            raise Refused(200, "isv.INVALID_PARAMETERS", "参数异常: SendDate 只支持最近30天")
        try:
            size, page = int(params.get("PageSize") or 0), int(params.get("CurrentPage") or 0)
        except ValueError:
            raise Refused(400, "InvalidParameter", "PageSize or CurrentPage is not a number.") from None
        if not 1 <= size <= 50 or page < 1:
            raise Refused(400, "InvalidParameter", "PageSize must be 1-50 and CurrentPage at least 1.")
        biz_id = params.get("BizId") or None
        with self._state:
            found = [r for r in self.records if r.phone == phone[-11:]
                     and dt.datetime.fromtimestamp(r.sent_at, CHINA).date() == date
                     and (biz_id is None or r.biz_id == biz_id)]
        shown = found[(page - 1) * size: page * size]
        dtos = [{"PhoneNum": r.phone, "SendStatus": r.status, "ErrCode": r.err_code or "",
                 "TemplateCode": r.template, "Content": r.content, "SendDate": _china(r.sent_at),
                 "ReceiveDate": _china(r.reported_at) if r.reported_at else "", "OutId": r.out_id or ""}
                for r in shown]
        return {"Code": "OK", "Message": "OK", "TotalCount": len(found),
                "SmsSendDetailDTOs": {"SmsSendDetailDTO": dtos}}


def _china(unix: float | None) -> str:
    if unix is None:
        return ""
    return dt.datetime.fromtimestamp(unix, CHINA).strftime("%Y-%m-%d %H:%M:%S")
