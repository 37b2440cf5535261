"""smsgate provider ``opass``: 经分助手 / infocloud SMS API (``https://opassapi.infocloud.com.cn``).

* same content to many -> ``POST /message/send`` (``phones`` comma-joined, at most 1000;
  ``templateParam`` a JSON array text);
* personalised -> ``POST /message/sendBatch`` (``phonesJson``, ``templateParamJson``);
* report pull -> ``POST /sms/arriveRes/qry`` (at most 600 a call, each report returned once);
* balance -> ``POST /sms/residueValue/qry``;
* send statistics per day -> ``POST /sms/send/statistics`` (``pageSize`` 1-50);
* the query calls (report pull, balance, statistics) share the FAQ's three calls a minute;
* report and inbound pushes: ``{"apiKey": ..., "data": [...]}``, unsigned: refused until the config
  sets a protection (``push_allow_ips``, ``push_path_secret`` or ``push_auth = "none"``; see
  :mod:`smsgate.receiving.guard`), and then only when they name our ``apiKey``.

Every call is signed with the ``x-api-key``/``x-nonce``/``x-sign-method``/``x-timestamp``/``x-sign``
headers (see :mod:`smsgate_opass.dialect`).
"""

from __future__ import annotations

import hmac
import json
from typing import Any, Tuple

import attrs

from smsgate import (
    AuthError,
    Balance,
    CallbackResult,
    DayStatistics,
    DeliveryReport,
    HttpRequest,
    HttpResponse,
    InboundMessage,
    InsufficientBalance,
    Operation,
    ProviderError,
    RateLimited,
    Reason,
    SendReply,
    SendStatistics,
    Status,
    ValidationError,
    WireError,
    hookimpl,
    secret,
    text_params,
)

from smsgate.receiving.guard import UnsignedPushConfig, push_allowed

from . import CAPABILITIES, PROVIDER, dialect, wire  # CAPABILITIES: read from here too

NAME = PROVIDER.name

# an enum member read through its class costs about ten times a module global: read per request
_SEND, _SEND_BATCH, _PULL_REPORTS, _BALANCE, _STATISTICS = (
    Operation.SEND, Operation.SEND_BATCH, Operation.PULL_REPORTS, Operation.BALANCE, Operation.STATISTICS)
_SENDS = (_SEND, _SEND_BATCH)

#: the domain the document recommends ("推荐使用"); ``https://opassapi.infocloud.cc`` also serves
DEFAULT_BASE_URL = "https://opassapi.infocloud.com.cn"

PATHS = {
    Operation.SEND: "/message/send",
    Operation.SEND_BATCH: "/message/sendBatch",
    Operation.PULL_REPORTS: "/sms/arriveRes/qry",
    Operation.BALANCE: "/sms/residueValue/qry",
    Operation.STATISTICS: "/sms/send/statistics",
}

MAX_BID_LENGTH = 64  #: bid: "长度不超过64字符"
MAX_PULL_IDS = 600  #: report query: "任务号，最多不超过600" (the vendor SDK's msgId limit)
MAX_STATISTICS_PAGE_SIZE = 50  #: statistics: "pageSize 每页显示条数。取值1~50"


def _sign_method(value: Any) -> str:
    return dialect.canonical_sign_method(value)


@attrs.frozen(kw_only=True)
class OpassConfig(UnsignedPushConfig):
    """``api_key`` and ``access_key`` come from the vendor console (接口配置 -> 接口信息).
    ``api_key`` is kept out of reprs and logs too: it is what a forged push would need.

    ``base_url`` defaults to ``https://opassapi.infocloud.com.cn`` (the document recommends it);
    ``https://opassapi.infocloud.cc`` also serves, and a customer behind a firewall uses the IP:port
    it was given.
    """

    base_url: str = DEFAULT_BASE_URL
    api_key: str = secret()
    access_key: str = secret()
    sign_method: str = attrs.field(default=dialect.DEFAULT_SIGN_METHOD, converter=_sign_method)


# -- validation --------------------------------------------------------------------------------

@hookimpl
def validate_message(ctx: Any, message: Any) -> Any:
    if message.sign_name:
        raise ValidationError(
            "opass has no sign-name field: the signature is part of the template; a dynamic "
            "signature ({动态签名,20}) is passed as a template variable", field="sign_name")
    if message.extend_code is not None and not (str(message.extend_code).isdigit()
                                                and str(message.extend_code).isascii()):
        raise ValidationError("opass upExtendCode must be digits (the default range is 1-99)", field="extend_code")
    if message.biz_id is not None and len(str(message.biz_id)) > MAX_BID_LENGTH:
        raise ValidationError(f"opass bid is at most {MAX_BID_LENGTH} characters", field="biz_id")
    return text_params(message)


# -- requests ----------------------------------------------------------------------------------

def _common(message: Any) -> dict[str, Any]:
    return {
        "templateCode": str(message.template_id),
        "upExtendCode": None if message.extend_code is None else str(message.extend_code),
        "bid": message.biz_id or None,
    }


def send_body(operation: Operation, message: Any) -> Any:
    """The body of one send request: a :class:`wire.SendRequest` or :class:`wire.SendBatchRequest`."""
    if operation is _SEND_BATCH:
        phones = list(message.to)
        params: list[Any] = [list(message.personal[p]) for p in phones]
        if not any(params):
            # the document: a template without variables takes ["",""], one "" per phone
            params = ["" for _ in phones]
        return wire.SendBatchRequest(phonesJson=dialect.json_text(phones), **_common(message),
                                    templateParamJson=dialect.json_text(params))
    params = list(message.params or ())
    return wire.SendRequest(phones=",".join(message.to), **_common(message),
                           templateParam=dialect.json_text(params) if params else None)


def send_fields(operation: Operation, message: Any) -> dict[str, Any]:
    """The body fields of one send request (None = left out)."""
    fields: dict[str, Any] = wire.WIRE.write(send_body(operation, message))
    return fields


@hookimpl
def build_request(ctx: Any, operation: Operation, payload: Any) -> HttpRequest | None:
    path = PATHS.get(operation)
    if path is None:
        return None
    body: Any
    if operation in _SENDS:
        body = send_body(operation, payload)
    elif operation is _PULL_REPORTS:
        ids = list(dict.fromkeys(payload.message_ids)) if payload is not None else []
        if len(ids) > MAX_PULL_IDS:
            raise ValidationError(f"opass takes at most {MAX_PULL_IDS} msgIds a report query; got {len(ids)}: "
                                  "query them in parts", field="message_ids")
        body = wire.ArriveResQuery(msgId=",".join(ids) or None, bid=getattr(payload, "biz_id", None) or None)
    elif operation is _STATISTICS:
        body = statistics_body(payload)
    else:
        body = wire.ResidueValueQuery()
    return HttpRequest(method="POST", url=ctx.url(path),
                       headers={"Content-Type": "application/json;charset=UTF-8"},
                       body=dialect.body_bytes(wire.WIRE.write(body)))


def statistics_body(query: Any) -> wire.StatisticsQuery:
    """The body of ``/sms/send/statistics`` for a :class:`smsgate.StatisticsQuery`."""
    if not 1 <= query.page_size <= MAX_STATISTICS_PAGE_SIZE:
        raise ValidationError(f"opass statistics take a page size from 1 to {MAX_STATISTICS_PAGE_SIZE}, "
                              f"not {query.page_size}", field="page_size")
    return wire.StatisticsQuery(startDate=query.start.isoformat(), endDate=query.end.isoformat(),
                                page=query.page, pageSize=query.page_size)


def signed_headers(config: Any, timestamp_ms: int, nonce: str) -> dict[str, str]:
    return {
        "x-api-key": config.api_key,
        "x-nonce": nonce,
        "x-sign-method": config.sign_method,
        "x-timestamp": str(timestamp_ms),
    }


@hookimpl
def sign(ctx: Any, operation: Operation, request: HttpRequest) -> HttpRequest:
    # Sign what is actually sent: the body's fields as the vendor will read them back.
    fields = json.loads(request.body.decode("utf-8")) if request.body else {}
    headers = signed_headers(ctx.config, ctx.timestamp_ms(), dialect.digit_nonce(ctx.nonce()))
    text = dialect.sign_string({**fields, **headers})
    headers["x-sign"] = dialect.hmac_hex(ctx.config.access_key, text, ctx.config.sign_method)
    return request.with_headers(headers)


# -- answers -----------------------------------------------------------------------------------

#: every code of the document's table (返回码说明): class, not_sent, English gloss.
#: not_sent=True only where the code itself says the request was refused before any sending.
CODES: dict[str, tuple[type, bool, str]] = {
    "-1": (ProviderError, False, "system busy or other reason"),
    "2000": (AuthError, True, "source IP not in the whitelist"),
    "2001": (AuthError, True, "API authorisation failed (key, signature, timestamp or nonce)"),
    "6000": (RateLimited, True, "too many calls, try later"),
    "40002": (InsufficientBalance, True, "insufficient balance"),
    "40004": (ProviderError, True, "bad parameters"),
    "40005": (ProviderError, True, "beyond the template's parameter limits"),
    "40006": (ProviderError, True, "extension code does not match or belongs to another account"),
    "60001": (ProviderError, True, "no such template"),
    "60002": (ProviderError, True, "batch send: number of phones and of parameter lists differ"),
    "60003": (ProviderError, True, "number of variables differs from the template's"),
    "60004": (ProviderError, True, "a variable is longer than the template allows"),
    "60005": (ProviderError, True, "nothing to send"),
    "60006": (ProviderError, True, "template variables badly formatted"),
    "60007": (ProviderError, True, "phone parameter badly formatted"),
    "60008": (ProviderError, True, "more than 1000 phones"),
    "60009": (ProviderError, True, "SMS resource locked (the vendor advises resubmitting)"),
}


def classify(code: Any, message: str | None, request_id: str | None, http_status: int = 200) -> ProviderError:
    """The classified error for a non-200 ``code`` of the vendor's answer."""
    text = str(code)
    cls, not_sent, gloss = CODES.get(text, (ProviderError, False, "unknown code"))
    vendor = message or gloss
    error: ProviderError = cls(f"opass: {gloss}: {vendor}" if message else f"opass: {gloss}", code=text,
                               vendor_message=vendor, request_id=request_id, not_sent=not_sent, provider=NAME)
    return error


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return None if text in ("", "null", "None") else text


def _answer(response: HttpResponse) -> wire.SmsResponse:
    try:
        data = response.json()
    except ValueError:
        problem = "body: not JSON"
    else:
        try:
            answer: wire.SmsResponse = wire.WIRE.read(data, wire.SmsResponse)
            return answer
        except WireError as exc:
            problem = str(exc)
    raise ProviderError(f"opass answered HTTP {response.status} without a code ({problem})",
                        code=f"HTTP{response.status}", not_sent=False, provider=NAME)


def _split_phones(text: Any) -> list[str]:
    from smsgate import normalise_phone

    out = []
    for part in str(text or "").replace(";", ",").split(","):
        part = part.strip()
        if part and part != "null":
            out.append(normalise_phone(part) or part)
    return out


def _phones_of(request: HttpRequest, operation: Operation) -> list[str]:
    fields = json.loads(request.body.decode("utf-8"))
    if operation is _SEND_BATCH:
        return list(json.loads(fields.get("phonesJson") or "[]"))
    return [p for p in str(fields.get("phones") or "").split(",") if p]


def _send_reply(answer: wire.SmsResponse, request: HttpRequest, operation: Operation,
                request_id: str | None) -> SendReply:
    if answer.data is None:
        raise ProviderError("opass answered 200 without data", code="200", not_sent=False,
                            request_id=request_id, provider=NAME)
    try:
        body = wire.read_data(answer.data, wire.MessageSendResVo)
    except WireError as exc:
        raise ProviderError(f"opass answered 200 with unreadable data ({exc})", code="200", not_sent=False,
                            request_id=request_id, provider=NAME) from None
    msg_id = _clean(body.msgId if body.msgId is not None else body.msgid)
    desc = _clean(body.desc)
    failed = set(_split_phones(body.failPhones))
    if not failed and msg_id is not None:  # the usual answer: every phone taken, none to read back
        return SendReply(message_id=msg_id, request_id=request_id)
    phones = _phones_of(request, operation)
    reason = Reason(code="failPhones", message=desc or "the vendor refused this number (failPhones)")
    rejected = {p: reason for p in phones if p in failed}
    if msg_id is None and len(rejected) < len(phones):
        # msgId is the vendor's proof of acceptance ("该值不为空，说明平台已经接收"): without it
        # the remaining recipients cannot be called accepted, nor certainly refused.
        raise ProviderError("opass answered 200 without a msgId", code="200", vendor_message=desc,
                            not_sent=False, request_id=request_id, provider=NAME)
    return SendReply(message_id=msg_id, request_id=request_id, rejected=rejected)


def status_of(word: Any) -> Status:
    """DELIVRD -> delivered; every other word is "not delivered" ("除DELIVRD外，其他都是未送达"),
    ACCEPTD and UNKNOWN included; a missing word is unknown."""
    text = _clean(word)
    if text is None:
        return Status.UNKNOWN
    return Status.DELIVERED if text.upper() == "DELIVRD" else Status.FAILED


def report_of(item: wire.ArriveInfoResVo, raw: Any) -> DeliveryReport:
    """One report of the pull (``arrive``) or of the push (``arriveResult``)."""
    word = _clean(item.status_word)
    status = status_of(word)
    return DeliveryReport(
        provider=NAME,
        message_id=_clean(item.msgId),
        phone=_clean(item.tel),
        status=status,
        raw_status=word,
        description=None if status is Status.DELIVERED else word,
        reported_at=_clean(item.arriveTime),
        biz_id=_clean(item.bid),
        raw=dict(raw),
    )


def inbound_of(item: wire.UplinkMessageDto, raw: Any) -> InboundMessage:
    return InboundMessage(
        provider=NAME,
        phone=item.tel,
        content=item.content or "",
        received_at=_clean(item.arriveTime),
        service_code=_clean(item.srcId),
        raw=dict(raw),
    )


def _objects(data: Any) -> list[dict[str, Any]]:
    """The objects of a query answer's ``data`` array (anything else in it is passed over, as the
    reports a pull returns are returned only once: one odd item must not lose the others)."""
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


#: the balance category that transactional templates draw from
INDUSTRY_ITEM = "行业短信"


def balance_of(answer: wire.SmsResponse) -> Balance:
    raws = _objects(answer.data)
    items = wire.read_data(raws, Tuple[wire.ResidueValueResVo, ...])
    values = {str(i.itemName): i.residueValue for i in items}
    amount = values.get(INDUSTRY_ITEM)
    if amount is None and values:
        amount = next(iter(values.values()))
    return Balance(provider=NAME, amount=amount, unit="messages",
                   raw={"items": values, "requestId": answer.requestId})


def statistics_of(answer: wire.SmsResponse, request: HttpRequest) -> SendStatistics:
    """One page of ``/sms/send/statistics``: a day per item of ``data``; ``totalSize`` beside
    ``data`` or, failing that, in its items."""
    raws = _objects(answer.data)
    items = wire.read_data(raws, Tuple[wire.SendStatisticsVo, ...])
    asked = json.loads(request.body.decode("utf-8"))
    total = None
    if answer.totalSize is not None:
        try:
            total = wire.WIRE.read({"totalSize": answer.totalSize}, wire.StatisticsTotal).totalSize
        except WireError as exc:
            raise ProviderError(f"opass answered 200 with unreadable statistics ({exc})", code="200",
                                not_sent=True, request_id=_clean(answer.requestId), provider=NAME) from None
    if total is None:
        total = next((i.totalSize for i in items if i.totalSize is not None), None)
    days = tuple(DayStatistics(date=_clean(i.sendDate) or "", sent=i.totalCount, delivered=i.successCount,
                          failed=i.failCount, no_report=i.noReceiptCount, raw=dict(raw))
            for i, raw in zip(items, raws))
    return SendStatistics(provider=NAME, days=days, page=int(asked["page"]), page_size=int(asked["pageSize"]),
                          total=total, raw={"requestId": answer.requestId})


@hookimpl
def parse_response(ctx: Any, operation: Operation, request: HttpRequest, response: HttpResponse) -> Any:
    answer = _answer(response)
    request_id = _clean(answer.requestId)
    code = str(answer.code).strip()
    if code != "200":
        raise classify(code, _clean(answer.message), request_id, response.status)
    if operation in _SENDS:
        return _send_reply(answer, request, operation, request_id)
    if operation is _PULL_REPORTS:
        raws = _objects(answer.data)
        items = wire.read_data(raws, Tuple[wire.ArriveInfoResVo, ...])
        return [report_of(item, raw) for item, raw in zip(items, raws)]
    if operation is _BALANCE:
        return balance_of(answer)
    if operation is _STATISTICS:
        return statistics_of(answer, request)
    return None


# -- pushes ------------------------------------------------------------------------------------

@hookimpl
def verify_callback(ctx: Any, request: Any) -> bool:
    """The document signs no push: accept one only through the protections the config sets
    (source address, path secret; refused while it sets none), and only when its body names our
    ``apiKey``, which travels in every request header: an identifier rather than a secret."""
    if not push_allowed(ctx, request):
        return False
    try:
        data = request.json()
    except (ValueError, UnicodeDecodeError):  # not JSON at all: a malformed body (400), not a forgery
        raise ValidationError("opass push is malformed: body: not JSON", field="body") from None
    try:
        key = wire.WIRE.read(data, wire.PushSender).apiKey
    except ValueError:  # a WireError: no apiKey as text, so nothing vouches for this push
        return False
    if not key:
        return False
    return hmac.compare_digest(key.encode("utf-8", "surrogatepass"), str(ctx.config.api_key).encode("utf-8"))


#: the answer to a push; the document asks only for a quick answer (within 1 s)
PUSH_ANSWER = {"code": 200, "message": "OK"}


@hookimpl
def parse_callback(ctx: Any, request: Any) -> CallbackResult:
    try:
        data = request.json()
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("opass push is malformed: body: not JSON", field="body") from None
    try:
        push = wire.WIRE.read(data, wire.OpassPush)
    except WireError as exc:
        raise ValidationError(f"opass push is malformed: {exc}", field="body") from None
    events: list[Any] = []
    for item, raw in zip(push.data, data["data"]):
        if isinstance(item, wire.UplinkMessageDto):
            events.append(inbound_of(item, raw))
        else:
            events.append(report_of(item, raw))
    return CallbackResult(events=events, response=HttpResponse.of_json(PUSH_ANSWER))
