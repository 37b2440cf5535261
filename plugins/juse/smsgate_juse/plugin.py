"""smsgate provider plugin for the juse message center (聚思 消息中心).

* One recipient and no send time -> ``POST /spi/sendSms``; several recipients or a send time ->
  ``POST /spi/sendSmsTask`` (at most 1000 phones a request, ``planTime`` = send time or now).
* Every call is signed with ``X-{app_key}-*`` headers: md5 over
  ``app_secret + path + params + app_type + time + nonce`` (see :mod:`smsgate_juse.dialect`).
* Phone numbers travel AES-128/ECB/PKCS#7 encrypted with base64-decode(``app_secret``).
* Pushes (``sms_report``, ``sms_task_report``, ``sms_deliver``) are verified with md5 over
  ``app_secret + time + nonce + appId + type``, a 15-minute window and a nonce replay check.
"""

from __future__ import annotations

import hmac
import threading
import weakref
from collections.abc import Mapping
from typing import Any

import attrs

from smsgate import (
    AuthError,
    CallbackResult,
    DeliveryReport,
    HttpRequest,
    HttpResponse,
    InboundMessage,
    InsufficientBalance,
    Operation,
    ProviderConfig,
    ProviderError,
    RateLimited,
    SendReply,
    Status,
    TaskSummary,
    ValidationError,
    WireError,
    hookimpl,
    secret,
)

from . import CAPABILITIES, PROVIDER, dialect, wire  # CAPABILITIES: read from here too

NAME = PROVIDER.name

# an enum member read through its class costs about ten times a module global: read per request
_SEND = Operation.SEND

PROD_URL = "https://msg.gooeto.com/api"
TEST_URL = "https://msgtest.gooeto.com/api"
DEV_URL = "https://msgdev.gooeto.com/api"

SEND_SMS_PATH = "/spi/sendSms"
SEND_TASK_PATH = "/spi/sendSmsTask"
#: positional params map to param1..paramN; the single-send API keeps params in a TreeMap
#: (sorted by key), where "param10" would sort before "param2", so at most 9 are taken
MAX_POSITIONAL_PARAMS = 9
#: how long a push nonce is remembered: the window reaches 15 minutes both ways of now
NONCE_TTL = 2 * dialect.TIME_WINDOW


def _check_secret(instance: Any, attribute: Any, value: str) -> None:
    dialect._key(value)  # raises ValueError: not base64 or not an AES-128/192/256 key


def _check_app_type(instance: Any, attribute: Any, value: str) -> None:
    if not value.isdigit():
        raise ValueError("app_type must be a number (1 mini program, 2 web, 3 app)")


@attrs.frozen(kw_only=True)
class JuseConfig(ProviderConfig):
    """``[providers.juse]``. ``base_url`` includes the ``/api`` prefix the document's URLs carry;
    dev ``https://msgdev.gooeto.com/api``, test ``https://msgtest.gooeto.com/api``."""

    base_url: str = PROD_URL
    app_id: str
    app_secret: str = secret(validator=_check_secret)
    #: the ``*`` in the ``X-*-...`` header names (the message center's own service code)
    app_key: str = "message"
    #: terminal type: 1 mini program, 2 web (recommended), 3 app; a number or its text
    app_type: Any = attrs.field(default="2", converter=str, validator=_check_app_type)
    #: path prefix the message center's nginx strips before the service sees (and signs) the path
    ignore_path: str = "/api"


# -- messages -----------------------------------------------------------------------------------

def _param_text(name: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise ValidationError(f"template param {name!r} must be text or a number, not {type(value).__name__}",
                          field="params")


def named_params(params: Any) -> dict[str, str]:
    """The message's params as juse's named map: positional ``[a, b]`` -> ``{param1: a, param2: b}``,
    values as text. Raises ValidationError for what juse cannot take."""
    if params is None:
        return {}
    if isinstance(params, Mapping):
        out = {}
        for key, value in params.items():
            if not isinstance(key, str) or not key.strip():
                raise ValidationError("template param names must be non-empty text", field="params")
            out[key] = _param_text(key, value)
        return out
    values = list(params)
    if len(values) > MAX_POSITIONAL_PARAMS:
        raise ValidationError(
            f"{len(values)} positional template params: juse takes named params, and positional ones are "
            f"mapped to param1..param{MAX_POSITIONAL_PARAMS} at most (the vendor sorts names, so param10 would "
            "come before param2); give them as a mapping instead",
            field="params",
        )
    return {f"param{i}": _param_text(f"param{i}", v) for i, v in enumerate(values, 1)}


@hookimpl
def validate_message(ctx: Any, message: Any) -> Any:
    if not (message.sign_name or "").strip():
        raise ValidationError("juse needs a sign name (signName, 短信签名)", field="sign_name")
    if message.extend_code:
        raise ValidationError("juse has no extension code; leave extend_code empty", field="extend_code")
    params = named_params(message.params)
    send_at = message.send_at
    if send_at is None and len(message.to) > 1:
        # Several recipients go to sendSmsTask with planTime = now. Fix "now" once for the whole
        # message, so every batch (even a last batch of one phone) is a task with the same time.
        send_at = ctx.now_china().replace(microsecond=0)
    return attrs.evolve(message, params=params, send_at=send_at)


# -- requests -----------------------------------------------------------------------------------

def _is_task(message: Any) -> bool:
    return len(message.to) > 1 or message.send_at is not None


def task_name(ctx: Any, message: Any, plan_time: str) -> str:
    """A task name derived from the message: its biz id, else template and plan time; later
    batches of the same message get ``#2``, ``#3`` ..."""
    base = message.biz_id or f"smsgate {message.template_id} {plan_time}"
    return base if ctx.request_index == 0 else f"{base} #{ctx.request_index + 1}"


@hookimpl
def build_request(ctx: Any, operation: Operation, payload: Any) -> HttpRequest | None:
    if operation is not _SEND:
        return None
    cfg, msg = ctx.config, payload
    params = named_params(msg.params)
    body: Any
    if not _is_task(msg):
        body = wire.SendSmsRequest(
            appId=cfg.app_id,
            templateId=msg.template_id,
            signName=msg.sign_name,
            phone=dialect.encrypt_phone(cfg.app_secret, msg.to[0]),
            # the vendor holds these in a TreeMap: send them in that (sorted) order
            params=dict(sorted(params.items())),
        )
        path = SEND_SMS_PATH
    else:
        when = msg.send_at_china() if msg.send_at is not None else ctx.now_china()
        plan_time = when.strftime("%Y-%m-%d %H:%M:%S")
        body = wire.SendSmsTaskRequest(
            appId=cfg.app_id,
            name=task_name(ctx, msg, plan_time),
            templateId=msg.template_id,
            signName=msg.sign_name,
            planTime=plan_time,
            phones=dialect.encrypt_phone(cfg.app_secret, ",".join(msg.to)),
            params=params,  # order kept: the vendor substitutes in this order
        )
        path = SEND_TASK_PATH
    return HttpRequest(method="POST", url=ctx.url(path),
                       headers={"Content-Type": "application/json;charset=UTF-8"},
                       body=dialect.encode_body(wire.WIRE.write(body)))


@hookimpl
def sign(ctx: Any, operation: Operation, request: HttpRequest) -> HttpRequest:
    cfg = ctx.config
    ts, nonce = str(ctx.timestamp()), ctx.nonce()
    params = dialect.sign_params(dialect.decode_body(request.body)) if request.body else ""
    path = dialect.strip_ignore_path(request.path, cfg.ignore_path)
    signature = dialect.request_signature(cfg.app_secret, path, params, cfg.app_type, ts, nonce)
    def h(suffix: str) -> str:
        return dialect.header_name(cfg.app_key, suffix)

    return request.with_headers({
        h("Algorithm"): dialect.ALGORITHM,
        h("Time"): ts,
        h("AppType"): cfg.app_type,
        h("AppID"): cfg.app_id,
        h("Nonce"): nonce,
        h("Sign"): signature,
    })


# -- answers ------------------------------------------------------------------------------------

_ID_KEYS = ("sendRecordId", "sendTaskId", "recordId", "taskId", "id")


def _message_id(data: Any, request_id: Any) -> str | None:
    if isinstance(data, (str, int)) and not isinstance(data, bool) and str(data).strip():
        return str(data)
    if isinstance(data, Mapping):
        for key in _ID_KEYS:
            value = data.get(key)
            if value not in (None, ""):
                return str(value)
    return None if request_id in (None, "") else str(request_id)


def classify(cfg: Any, code: str, mes: str, request_id: Any) -> ProviderError:
    """The error for an answer whose ``code`` is not 200.

    4xx codes are the message center refusing the request itself (parameters, headers, signature),
    before any vendor is called: not sent. Anything else (5xx, unknown) may come after the message
    center called its SMS vendor synchronously: outcome unknown.
    """
    rid = None if request_id in (None, "") else str(request_id)
    kwargs: dict[str, Any] = {"code": code, "vendor_message": mes, "request_id": rid, "provider": NAME}
    low = mes.lower()
    # a header named, or verification words; not a bare 签名, which also means the SMS sign name
    auth_words = (f"x-{cfg.app_key}-".lower(), "验签", "appsecret", "密钥", "appid", "认证", "鉴权")
    refused = len(code) == 3 and code.isdigit() and code.startswith("4")  # never int() of vendor text
    if code in ("401", "403") or (code == "400" and any(w in low for w in auth_words)):
        return AuthError(f"juse refused the request's credentials or signature: {mes}", **kwargs)
    # the words classify the error; only a 4xx code proves nothing was sent (a 5xx may come after
    # the message center called its SMS vendor, whatever its text says)
    if code == "429" or "频繁" in mes:
        return RateLimited(f"juse: too many requests: {mes}", not_sent=refused, **kwargs)
    if "余额" in mes:
        return InsufficientBalance(f"juse: balance exhausted: {mes}", not_sent=refused, **kwargs)
    if refused:
        return ProviderError(f"juse refused the request: {mes}", not_sent=True, **kwargs)
    return ProviderError(f"juse answered code {code}: {mes}", not_sent=False, **kwargs)


@hookimpl
def parse_response(ctx: Any, operation: Operation, request: HttpRequest, response: HttpResponse) -> Any:
    problem: str | None = None
    try:
        data = response.json()
    except ValueError:
        problem = "body: not JSON"
    else:
        try:
            answer = wire.WIRE.read(data, wire.JuseAnswer)
        except WireError as exc:
            problem = str(exc)
    if problem is not None:
        raise ProviderError(f"juse answered HTTP {response.status} without a readable code ({problem})",
                            code=f"HTTP{response.status}", not_sent=False, provider=NAME)
    request_id = _opt_str(answer.requestId)
    if answer.code != "200":
        raise classify(ctx.config, answer.code, answer.mes or answer.detail or "", request_id)
    if operation is _SEND:
        return SendReply(message_id=_message_id(answer.data, request_id), request_id=request_id)
    return None


# -- pushes -------------------------------------------------------------------------------------

class MemoryReplayStore:
    """Nonces seen recently, in this process. ``add`` answers False for a nonce seen before."""

    def __init__(self, clock: Any):
        self._clock = clock
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, key: str, ttl: float) -> bool:
        now = float(self._clock())
        with self._lock:
            if len(self._seen) > 1024:
                self._seen = {k: exp for k, exp in self._seen.items() if exp > now}
            expires = self._seen.get(key)
            if expires is not None and expires > now:
                return False
            self._seen[key] = now + ttl
            return True


_stores: dict[int, MemoryReplayStore] = {}
_stores_lock = threading.Lock()


def default_replay_store(ctx: Any) -> MemoryReplayStore:
    """The in-memory store of one configured provider (one per config object, so per Gateway)."""
    key = id(ctx.config)
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            store = _stores[key] = MemoryReplayStore(ctx.clock)
            weakref.finalize(ctx.config, _stores.pop, key, None)
        return store


def _log() -> Any:
    from smsgate.log import get_logger

    return get_logger("smsgate.juse")


def _refuse(ctx: Any, why: str) -> bool:
    _log().warning("smsgate.callback.refused", provider=ctx.provider, reason=why)
    return False


@hookimpl
def verify_callback(ctx: Any, request: Any) -> bool:
    cfg = ctx.config
    def h(suffix: str) -> str | None:
        value: str | None = request.header(dialect.header_name(cfg.app_key, suffix))
        return value

    ts, nonce, sig = h("Time"), h("Nonce"), h("Sign")
    if not (ts and nonce and sig):
        return _refuse(ctx, "missing time, nonce or sign header")
    try:
        body = request.json()
    except ValueError:
        return _refuse(ctx, "body is not JSON")
    try:
        push = wire.WIRE.read(body, wire.JusePush)
    except WireError as exc:
        return _refuse(ctx, f"appId or type missing ({exc})")
    app_id, kind = push.appId, push.type
    if not hmac.compare_digest(app_id.encode("utf-8", "surrogatepass"), cfg.app_id.encode("utf-8")):
        return _refuse(ctx, "appId is not ours")
    try:
        sent_at = int(ts)
    except ValueError:
        return _refuse(ctx, "time is not a number")
    if abs(ctx.now() - sent_at) > dialect.TIME_WINDOW:
        return _refuse(ctx, "time outside the 15-minute window")
    expected = dialect.callback_signature(cfg.app_secret, ts, nonce, app_id, kind)
    if not hmac.compare_digest(expected.encode("ascii"), sig.strip().lower().encode("utf-8", "replace")):
        return _refuse(ctx, "bad signature")
    store = ctx.extras.get("replay_store")
    if store is None:
        store = default_replay_store(ctx)
    # recorded only once the signature holds: a forged push cannot burn a real nonce
    if not store.add(f"{NAME}:{cfg.app_id}:{nonce}", ttl=NONCE_TTL):
        return _refuse(ctx, "nonce seen before")
    return True


#: sendStatus: 0 待发送 waiting, 1 已发送 sent, 2 发送中 sending, -1 发送失败 failed.
#: For juse, DELIVERED means only that the message center reports the message sent (已发送,
#: handed on towards the carrier), the strongest signal this vendor gives. It is not a handset
#: receipt like an SMPP/CMPP DELIVRD: juse documents no 送达 state.
SEND_STATUS = {1: Status.DELIVERED, -1: Status.FAILED, 0: Status.PENDING, 2: Status.PENDING}


def _opt_str(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def _status(value: Any) -> Status:
    try:
        return SEND_STATUS.get(int(value), Status.UNKNOWN)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a JSON 1e999 is infinity
        return Status.UNKNOWN


def _report(record: wire.SendSmsRecordDto, raw: Mapping[str, Any]) -> DeliveryReport:
    return DeliveryReport(provider=NAME, message_id=_opt_str(record.sendRecordId), phone=None,
                          status=_status(record.sendStatus), raw_status=_opt_str(record.sendStatus),
                          description=_opt_str(record.remark), reported_at=_opt_str(record.reportDate),
                          raw=dict(raw))


def _task(task: wire.SendSmsTaskDto, raw: Mapping[str, Any]) -> TaskSummary:
    return TaskSummary(provider=NAME, task_id=task.sendTaskId, total=task.totalCount, sent=task.sendCount,
                       failed=task.failCount, raw=dict(raw))


def _inbound(cfg: Any, item: wire.SmsDeliverDto, raw: Mapping[str, Any]) -> InboundMessage:
    mobile = item.mobile
    if not mobile.isdigit():  # the document is silent on inbound encryption: take either form
        try:
            mobile = dialect.decrypt_phone(cfg.app_secret, mobile)
        except ValueError:
            pass
    return InboundMessage(provider=NAME, phone=mobile, content=item.content, received_at=_opt_str(item.sendTime),
                          service_code=_opt_str(item.addSerial), raw=dict(raw))


#: the answer the document asks of the receiver
ACK = {"code": 200, "mes": "success", "data": None, "requestId": None}


@hookimpl
def callback_refusal(ctx: Any, status: int, reason: str) -> HttpResponse:
    """A refused push answered as the document's answers are shaped (its example:
    ``{"code": 400, "mes": "参数错误:…", "requestId": null}``): ``code`` is the HTTP status, never
    200, so the vendor sees a failure whichever of the two it reads."""
    return HttpResponse.of_json({"code": status, "mes": reason, "data": None, "requestId": None}, status=status)


@hookimpl
def parse_callback(ctx: Any, request: Any) -> CallbackResult:
    """Every list the push carries, read by its name whatever ``type`` says (see
    :class:`wire.JusePushBody`). A push carrying a list or object smsgate cannot read is refused
    (400), never acknowledged with that data dropped: the vendor keeps it and pushes again."""
    try:
        body = request.json()
    except ValueError:
        raise ValidationError("juse push is malformed: body: not JSON", field="body") from None
    if isinstance(body, dict):
        unread = sorted(str(k)[:40] for k, v in body.items()
                        if k not in wire.PUSH_FIELDS and isinstance(v, (list, dict)) and v)
        if unread:
            raise ValidationError(f"juse push carries {', '.join(unread)}, which smsgate cannot read: not "
                                  "acknowledged, so the vendor keeps it", field="body")
    try:
        push = wire.WIRE.read(body, wire.JusePushBody)
    except WireError as exc:
        raise ValidationError(f"juse push is malformed: {exc}", field="body") from None
    events: list[Any] = []
    raws = body.get("sendSmsRecordDtoList") or []
    events += [_report(r, raw) for r, raw in zip(push.sendSmsRecordDtoList or (), raws)]
    if push.sendSmsTaskDto is not None:
        events.append(_task(push.sendSmsTaskDto, body["sendSmsTaskDto"]))
    raws = body.get("smsDeliverDtoList") or []
    events += [_inbound(ctx.config, i, raw) for i, raw in zip(push.smsDeliverDtoList or (), raws)]
    if push.type not in wire.PUSH_TYPES:
        # a type added later: what it carries in the known lists is kept; it carries nothing else
        _log().warning("smsgate.callback.unknown_type", provider=ctx.provider, type=push.type[:40],
                       events=len(events))
    return CallbackResult(events=events, response=HttpResponse.of_json(ACK))
