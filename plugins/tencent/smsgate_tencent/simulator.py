"""A loopback Tencent Cloud SMS endpoint (API 2021-01-11): checks TC3-HMAC-SHA256 signatures the way
the reference describes and answers as the API does.

Its signature check is written here from the reference, sharing no code with the plugin's
:mod:`smsgate_tencent.dialect`, and it accepts what the official SDK sends (the SDK signs
``content-type;host``; the plugin also signs ``x-tc-action``): any ``SignedHeaders`` list that
holds ``content-type`` and ``host`` is checked over exactly the headers it names.

What it enforces:

* every call: ``Authorization`` (``TC3-HMAC-SHA256 Credential=<id>/<date>/sms/tc3_request,
  SignedHeaders=..., Signature=...``), known SecretId (``AuthFailure.SecretIdNotFound``), the
  signature (``AuthFailure.SignatureFailure``), ``X-TC-Timestamp`` within 5 minutes
  (``AuthFailure.SignatureExpire``) and its UTC date in the scope, ``X-TC-Version`` 2021-01-11,
  ``X-TC-Region``, a known ``X-TC-Action``, a JSON object body;
* ``SendSms``: the app id, 1 to 200 numbers, then per number: E.164 format
  (``InvalidParameterValue.IncorrectPhoneNumber``), the sign name and template
  (``FailedOperation.SignatureIncorrectOrUnapproved`` / ``TemplateIncorrectOrUnapproved``), the
  variable count (``FailedOperation.TemplateParamSetNotMatchApprovedTemplate``), blocked numbers
  (``FailedOperation.PhoneNumberInBlacklist``), Tencent's default frequency policy per number (1 in
  30 s, 5 an hour, 10 a day: ``LimitExceeded.PhoneNumberThirtySecondLimit`` /
  ``OneHourLimit`` / ``DailyLimit``) and the package balance
  (``FailedOperation.InsufficientBalanceInSmsPackage``);
* ``PullSmsSendStatus`` / ``PullSmsReplyStatus``: ``Limit`` 1-100, queues returned once.

Pushes: :meth:`push_pending` posts the status callback (a JSON array), :meth:`push_reply` the
reply callback (a JSON object), unsigned, as Tencent does.
"""

from __future__ import annotations

import collections
import datetime
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

DEMO_SECRET_ID = "AKIDsimulator0000000000000000000000"
DEMO_SECRET_KEY = "simulatorSecretKey00000000000000"
DEMO_APP_ID = "1400006666"
DEMO_SIGN = "腾讯云"  # the reference's example signature
DEMO_TEMPLATE = "1110"  # the reference's example template: one variable ("4370")

CLOCK_WINDOW_S = 300.0  #: "Timestamp 和服务器时间相差不得超过五分钟"
VERSION = "2021-01-11"
REGIONS = {"ap-guangzhou", "ap-beijing", "ap-nanjing"}
MAX_PHONES = 200
_AUTH = re.compile(r"TC3-HMAC-SHA256 Credential=([^/]+)/(\d{4}-\d{2}-\d{2})/([^/]+)/tc3_request, "
                   r"SignedHeaders=([a-z0-9;-]+), Signature=([0-9a-f]{64})$")
_E164_CN = re.compile(r"(?:\+86|0086|86)?(1[3-9]\d{9})")

#: Tencent's default per-number frequency policy (控制台 频率限制, 默认): count in seconds
DEFAULT_PHONE_LIMITS = (
    ("LimitExceeded.PhoneNumberThirtySecondLimit", 1, 30.0),
    ("LimitExceeded.PhoneNumberOneHourLimit", 5, 3600.0),
    ("LimitExceeded.PhoneNumberDailyLimit", 10, 86400.0),
)


@attrs.frozen
class Template:
    id: str
    variables: int


DEFAULT_TEMPLATES = (Template(DEMO_TEMPLATE, 1), Template("1111", 2), Template("1112", 0))


@attrs.define
class Sent:
    serial: str
    phone: str  #: 11 digits
    session_context: str
    at: float


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _mac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()


class TencentSimulator(SimulatorServer):
    def __init__(self, host: str = "127.0.0.1", port: int = 0, secret_id: str = DEMO_SECRET_ID,
                 secret_key: str = DEMO_SECRET_KEY, app_id: str = DEMO_APP_ID, templates: Any = DEFAULT_TEMPLATES,
                 signs: Any = (DEMO_SIGN,), balance: int = 10000):
        super().__init__(host, port)
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.app_id = app_id
        self.templates = {t.id: t for t in templates}
        self.signs = set(signs)
        self.balance = balance
        self.blocked_phones: set[str] = set()  #: answered FailedOperation.PhoneNumberInBlacklist
        self.phone_limits = DEFAULT_PHONE_LIMITS  #: () switches the per-number frequency policy off
        self.number_codes: dict[str, tuple[str, str]] = {}  #: phone -> (Code, Message) answered for it
        self.forced: collections.deque[tuple[str, str]] = collections.deque()
        self.clock = time.time
        self.sent: list[Sent] = []
        self.verified: list[dict[str, Any]] = []  #: what each verified call signed
        self.report_queue: list[dict[str, Any]] = []
        self.reply_queue: list[dict[str, Any]] = []
        self._history: dict[str, list[float]] = collections.defaultdict(list)
        self._reported: set[str] = set()
        self._serials = itertools.count(1045710669157053657849499619)
        self._state = threading.Lock()

    # -- test controls ---------------------------------------------------------------------
    def force_error(self, code: str, message: str = "") -> None:
        """Answer the next call (after its signature check) with ``Response.Error`` ``code``."""
        self.forced.append((code, message or code))

    # -- harness API -----------------------------------------------------------------------
    def demo_config(self) -> dict[str, Any]:
        # the simulator pushes from this host: the allow-list is the push protection
        return {"base_url": self.url, "secret_id": self.secret_id, "secret_key": self.secret_key,
                "sdk_app_id": self.app_id, "sign_name": DEMO_SIGN, "region": "ap-guangzhou",
                "push_allow_ips": ["127.0.0.1", "::1"]}

    def demo_message(self, operation: Any = None) -> Message:
        if operation == Operation.SEND_BATCH:
            return Message.personalised({"13800138000": ["4370"], "13900139000": ["5821"]}, template_id=DEMO_TEMPLATE)
        return Message(to=["13800138000", "13900139000"], template_id=DEMO_TEMPLATE, params=["4370"])

    def deliver_all(self, status: str = "SUCCESS", statuses: dict[str, str] | None = None) -> int:
        """A report for every accepted, not yet reported number (``statuses``: phone -> SUCCESS/FAIL),
        kept for :meth:`push_pending` or a ``PullSmsSendStatus``."""
        made = 0
        with self._state:
            for s in self.sent:
                if s.serial in self._reported:
                    continue
                self._reported.add(s.serial)
                word = (statuses or {}).get(s.phone, status)
                self.report_queue.append({"serial": s.serial, "phone": s.phone, "status": word,
                                          "code": "DELIVRD" if word == "SUCCESS" else "UNDELIV",
                                          "at": int(self.clock()), "session": s.session_context})
                made += 1
        return made

    def add_reply(self, phone: str, text: str, extend: str = "", sign: str = DEMO_SIGN) -> None:
        """An inbound SMS, kept for :meth:`push_reply` or a ``PullSmsReplyStatus``."""
        with self._state:
            self.reply_queue.append({"phone": phone, "text": text, "extend": extend, "sign": sign,
                                     "at": int(self.clock())})

    def push_pending(self, url: str) -> list[HttpResponse]:
        """POST every kept report to ``url`` as the status callback does (an array per push)."""
        with self._state:
            reports, self.report_queue = self.report_queue, []
        answers = []
        for start in range(0, len(reports), 100):
            body = [{"user_receive_time": _china_time(r["at"]), "nationcode": "86", "mobile": r["phone"],
                     "report_status": r["status"], "errmsg": r["code"],
                     "description": "用户短信送达成功" if r["status"] == "SUCCESS" else "用户短信未送达",
                     "sid": r["serial"]} for r in reports[start:start + 100]]
            answers.append(self._push(url, body))
        return answers

    def push_reply(self, url: str) -> list[HttpResponse]:
        """POST every kept reply to ``url`` as the reply callback does (one object per push)."""
        with self._state:
            replies, self.reply_queue = self.reply_queue, []
        return [self._push(url, {"extend": r["extend"], "mobile": r["phone"], "nationcode": "86",
                                 "sign": r["sign"], "text": r["text"], "time": r["at"]}) for r in replies]

    def _push(self, url: str, body: Any) -> HttpResponse:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        return self.push(url, data, {"Content-Type": "application/json"})

    # -- the API ---------------------------------------------------------------------------
    def _answer(self, payload: dict[str, Any]) -> HttpResponse:
        body = json.dumps({"Response": {**payload, "RequestId": str(uuid.uuid4())}}, ensure_ascii=False)
        # exactly "application/json", as the API answers: the SDK reads Response.Error only then
        return HttpResponse(status=200, headers={"Content-Type": "application/json"}, body=body.encode("utf-8"))

    def _error(self, code: str, message: str) -> HttpResponse:
        return self._answer({"Error": {"Code": code, "Message": message}})

    def handle(self, request: SimRequest) -> HttpResponse:
        if request.method != "POST":
            return self._error("UnsupportedProtocol", "only POST is simulated")
        refused = self._verify(request)
        if refused is not None:
            return refused
        if request.header("X-TC-Version") != VERSION:
            return self._error("NoSuchVersion", "The requested version does not exist")
        region = request.header("X-TC-Region")
        if not region:
            return self._error("MissingParameter", "The request is missing a required parameter `Region`.")
        if region not in REGIONS:
            return self._error("UnsupportedRegion", "The action does not support this region.")
        try:
            fields = json.loads(request.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return self._error("FailedOperation.JsonParseFail", "解析请求包体时候失败")
        if not isinstance(fields, dict):
            return self._error("FailedOperation.JsonParseFail", "解析请求包体时候失败")
        if self.forced:
            return self._error(*self.forced.popleft())
        action = request.header("X-TC-Action")
        routes = {"SendSms": self._send, "PullSmsSendStatus": self._pull_reports,
                  "PullSmsReplyStatus": self._pull_replies}
        route = routes.get(action or "")
        if route is None:
            return self._error("InvalidAction", f"The action {action!r} is not found")
        answer: HttpResponse = route(fields)
        return answer

    def _verify(self, request: SimRequest) -> HttpResponse | None:
        auth = request.header("Authorization") or ""
        match = _AUTH.match(auth.strip())
        if match is None:
            return self._error("AuthFailure.InvalidAuthorization", "Authorization 不符合腾讯云标准")
        secret_id, date, service, signed_text, sig = match.groups()
        if not hmac.compare_digest(secret_id.encode(), self.secret_id.encode()):
            return self._error("AuthFailure.SecretIdNotFound", "The SecretId is not found")
        stamp = request.header("X-TC-Timestamp") or ""
        if not (stamp.isascii() and stamp.isdigit()):
            return self._error("MissingParameter", "The request is missing a required parameter `Timestamp`.")
        if abs(self.clock() - int(stamp)) > CLOCK_WINDOW_S:
            return self._error("AuthFailure.SignatureExpire", "Signature expired")
        utc = datetime.datetime.fromtimestamp(int(stamp), datetime.timezone.utc).strftime("%Y-%m-%d")
        if date != utc or service != "sms":
            return self._error("AuthFailure.SignatureFailure", "credential scope does not match the request")
        names = signed_text.split(";")
        if "content-type" not in names or "host" not in names or names != sorted(set(names)):
            return self._error("AuthFailure.SignatureFailure", "content-type and host must be signed, sorted")
        lines = []
        for name in names:
            value = request.header(name)
            if value is None:
                return self._error("AuthFailure.SignatureFailure", f"signed header {name} is missing")
            lines.append(f"{name}:{value.strip().lower()}\n")
        action = request.header("X-TC-Action") or ""
        if action not in ("SendSms", "PullSmsSendStatus", "PullSmsReplyStatus"):
            return self._error("InvalidAction", f"The action {action!r} is not found")
        path, _, query = request.path.partition("?")
        unsigned = (request.header("X-TC-Content-SHA256") or "") == "UNSIGNED-PAYLOAD"
        payload_hash = _sha256(b"UNSIGNED-PAYLOAD" if unsigned else request.body)
        canonical = f"POST\n{path or '/'}\n{query}\n{''.join(lines)}\n{signed_text}\n{payload_hash}"
        to_sign = f"TC3-HMAC-SHA256\n{stamp}\n{date}/sms/tc3_request\n{_sha256(canonical.encode('utf-8'))}"
        key = _mac(_mac(_mac(("TC3" + self.secret_key).encode("utf-8"), date), "sms"), "tc3_request")
        expected = hmac.new(key, to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), sig.encode()):
            return self._error("AuthFailure.SignatureFailure",
                               "The provided credentials could not be validated. Please check your signature is correct.")
        with self._state:
            self.verified.append({"action": action, "signed_headers": signed_text, "canonical_request": canonical,
                                  "string_to_sign": to_sign, "timestamp": int(stamp)})
        return None

    # -- SendSms ---------------------------------------------------------------------------
    def _send(self, fields: dict[str, Any]) -> HttpResponse:
        if str(fields.get("SmsSdkAppId") or "") != self.app_id:
            return self._error("UnauthorizedOperation.SmsSdkAppIdVerifyFail", "SmsSdkAppId 校验失败")
        numbers = fields.get("PhoneNumberSet")
        if not isinstance(numbers, list) or not numbers:
            return self._error("MissingParameter.EmptyPhoneNumberSet", "传入的号码列表为空")
        if len(numbers) > MAX_PHONES:
            return self._error("LimitExceeded.PhoneNumberCountLimit", "单次提交的手机号个数超过200个")
        params = fields.get("TemplateParamSet") or []
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            return self._error("InvalidParameter.InvalidParameters", "TemplateParamSet 须为字符串数组")
        context = fields.get("SessionContext") or ""
        if not isinstance(context, str) or len(context.encode("utf-8")) >= 512:
            return self._error("InvalidParameter.InvalidParameters", "SessionContext 长度需小于512字节")
        extend = fields.get("ExtendCode")
        if extend not in (None, "") and not (isinstance(extend, str) and extend.isascii() and extend.isdigit()):
            return self._error("InvalidParameter.InvalidParameters", "ExtendCode 须为数字")
        template = self.templates.get(str(fields.get("TemplateId") or ""))
        statuses = []
        with self._state:
            for number in numbers:
                code, message, phone = self._number_check(number, fields, template, params)
                status: dict[str, Any] = {"SerialNo": "", "PhoneNumber": str(number), "Fee": 0,
                                          "SessionContext": context, "Code": code, "Message": message,
                                          "IsoCode": ""}
                if code == "Ok":
                    serial = f"2433:{next(self._serials)}"
                    now = self.clock()
                    self.balance -= 1
                    self._history[phone].append(now)
                    self.sent.append(Sent(serial=serial, phone=phone, session_context=context, at=now))
                    status.update(SerialNo=serial, Fee=1, IsoCode="CN", PhoneNumber="+86" + phone)
                statuses.append(status)
        return self._answer({"SendStatusSet": statuses})

    def _number_check(self, number: Any, fields: dict[str, Any], template: Template | None,
                      params: list[str]) -> tuple[str, str, str]:
        match = _E164_CN.fullmatch(str(number)) if isinstance(number, str) else None
        if match is None:
            return "InvalidParameterValue.IncorrectPhoneNumber", "手机号格式错误", ""
        phone = match.group(1)
        if phone in self.number_codes:
            return (*self.number_codes[phone], phone)
        if fields.get("SignName") not in self.signs:
            return "FailedOperation.SignatureIncorrectOrUnapproved", "签名未审批或格式错误", phone
        if template is None:
            return "FailedOperation.TemplateIncorrectOrUnapproved", "模板未审批或内容不匹配", phone
        if len(params) != template.variables:
            return ("FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
                    "request content does not match the template content", phone)
        if phone in self.blocked_phones:
            return "FailedOperation.PhoneNumberInBlacklist", "手机号在免打扰名单库中", phone
        now = self.clock()
        for code, count, seconds in self.phone_limits:
            if sum(1 for at in self._history[phone] if now - at < seconds) >= count:
                return code, "单个手机号下发短信条数超过设定的上限", phone
        if self.balance <= 0:
            return "FailedOperation.InsufficientBalanceInSmsPackage", "套餐包余量不足", phone
        return "Ok", "send success", phone

    # -- pulls -----------------------------------------------------------------------------
    def _limit(self, fields: dict[str, Any]) -> int | HttpResponse:
        if str(fields.get("SmsSdkAppId") or "") != self.app_id:
            return self._error("UnauthorizedOperation.SmsSdkAppIdVerifyFail", "SmsSdkAppId 校验失败")
        limit = fields.get("Limit")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 100:
            return self._error("InvalidParameterValue.LimitVerifyFail", "参数 Limit 校验失败")
        return limit

    def _pull_reports(self, fields: dict[str, Any]) -> HttpResponse:
        limit = self._limit(fields)
        if isinstance(limit, HttpResponse):
            return limit
        with self._state:
            taken, self.report_queue = self.report_queue[:limit], self.report_queue[limit:]
        items = [{"UserReceiveTime": r["at"], "CountryCode": "86", "SubscriberNumber": r["phone"],
                  "PhoneNumber": "+86" + r["phone"], "SerialNo": r["serial"], "ReportStatus": r["status"],
                  "Description": r["code"], "SessionContext": r["session"]} for r in taken]
        return self._answer({"PullSmsSendStatusSet": items})

    def _pull_replies(self, fields: dict[str, Any]) -> HttpResponse:
        limit = self._limit(fields)
        if isinstance(limit, HttpResponse):
            return limit
        with self._state:
            taken, self.reply_queue = self.reply_queue[:limit], self.reply_queue[limit:]
        items = [{"CountryCode": "86", "ReplyContent": r["text"], "SubscriberNumber": r["phone"],
                  "ExtendCode": r["extend"], "ReplyTime": r["at"], "PhoneNumber": "+86" + r["phone"],
                  "SignName": r["sign"]} for r in taken]
        return self._answer({"PullSmsReplyStatusSet": items})


def _china_time(unix: int) -> str:
    """``2015-10-17 08:03:04``: the status callback's user_receive_time, in China time."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(unix + 8 * 3600))
