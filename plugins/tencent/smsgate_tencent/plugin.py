"""smsgate provider ``tencent``: Tencent Cloud SMS (腾讯云短信), API 3.0 version 2021-01-11.

* send (same template to many) -> ``SendSms`` with up to 200 numbers in E.164 (``+8613800138000``);
  every number gets its own outcome from ``SendStatusSet``;
* send_batch (personalised) -> one ``SendSms`` a number (a SendSms carries one ``TemplateParamSet``);
* report pull -> ``PullSmsSendStatus``; inbound pull -> ``PullSmsReplyStatus`` (queues: each item
  is returned once);
* pushes: the status callback (a JSON array) and the reply callback (a JSON object), unsigned.

Every call is a JSON POST to ``/`` signed with TC3-HMAC-SHA256 (see :mod:`smsgate_tencent.dialect`).
"""

from __future__ import annotations

import json
from typing import Any, Tuple
from urllib.parse import urlsplit

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
    ProviderError,
    RateLimited,
    Reason,
    SendReply,
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
_SEND, _SEND_BATCH, _PULL_REPORTS, _PULL_INBOUND = (
    Operation.SEND, Operation.SEND_BATCH, Operation.PULL_REPORTS, Operation.PULL_INBOUND)
_SENDS = (_SEND, _SEND_BATCH)

DEFAULT_ENDPOINT = "https://sms.tencentcloudapi.com"
SERVICE = "sms"  #: the credential scope's service, whatever host the endpoint names
VERSION = "2021-01-11"

ACTIONS = {
    Operation.SEND: "SendSms",
    Operation.SEND_BATCH: "SendSms",
    Operation.PULL_REPORTS: "PullSmsSendStatus",
    Operation.PULL_INBOUND: "PullSmsReplyStatus",
}

MAX_PULL = 100  #: Limit: "拉取最大条数，最多100条"
MAX_SESSION_CONTEXT = 511  #: SessionContext: "长度需小于512字节" (UTF-8 bytes)
#: the regions the SMS API lists for mainland service
REGIONS = ("ap-guangzhou", "ap-beijing", "ap-nanjing")


def _check_app_id(instance: Any, attribute: Any, value: str) -> None:
    if not (value.isascii() and value.isdigit()):
        raise ValueError("sdk_app_id must be the application's SdkAppId, digits (e.g. 1400006666)")


def _check_region(instance: Any, attribute: Any, value: str) -> None:
    if value not in REGIONS:
        raise ValueError(f"region must be one of {', '.join(REGIONS)}")


def _stripped(value: Any) -> str:
    return str(value).strip()


@attrs.frozen(kw_only=True)
class TencentConfig(UnsignedPushConfig):
    """``[providers.tencent]``. ``base_url`` is what Tencent calls the endpoint: the nearest region
    (``https://sms.tencentcloudapi.com``) or a region's own (``https://sms.ap-guangzhou.tencentcloudapi.com``).
    Tencent signs no push: ``push_allow_ips``, ``push_path_secret`` or ``push_auth = "none"``
    (:class:`smsgate.receiving.guard.UnsignedPushConfig`) must be set before pushes are accepted."""

    base_url: str = DEFAULT_ENDPOINT
    secret_id: str
    secret_key: str = secret()
    sdk_app_id: str = attrs.field(converter=_stripped, validator=_check_app_id)
    #: the approved signature (签名内容, not its id) used when a message gives none
    sign_name: str = ""
    region: str = attrs.field(default="ap-guangzhou", validator=_check_region)


# -- validation ---------------------------------------------------------------------------------

@hookimpl
def validate_message(ctx: Any, message: Any) -> Any:
    sign_name = (message.sign_name or ctx.config.sign_name or "").strip()
    if not sign_name:
        raise ValidationError("tencent needs a sign name (SignName, the approved signature's text) for "
                              "mainland numbers: give one in the message or as sign_name in the config",
                              field="sign_name")
    extend = message.extend_code
    if extend is not None and not (str(extend).isascii() and str(extend).isdigit()):
        raise ValidationError("tencent ExtendCode must be digits", field="extend_code")
    if message.biz_id is not None and len(str(message.biz_id).encode("utf-8")) > MAX_SESSION_CONTEXT:
        raise ValidationError("tencent SessionContext (biz_id) must be under 512 bytes", field="biz_id")
    message = text_params(message)
    return message if sign_name == message.sign_name else attrs.evolve(message, sign_name=sign_name)


# -- requests -----------------------------------------------------------------------------------

def send_body(cfg: Any, message: Any) -> wire.SendSmsRequest:
    phones = list(message.to)
    params = message.personal[phones[0]] if message.personal is not None else message.params
    return wire.SendSmsRequest(
        PhoneNumberSet=tuple(dialect.e164(p) for p in phones),
        SmsSdkAppId=cfg.sdk_app_id,
        TemplateId=str(message.template_id),
        SignName=message.sign_name,
        # "若无模板参数，则设置为空": a template without variables gets no TemplateParamSet
        TemplateParamSet=tuple(params) if params else None,
        ExtendCode=None if message.extend_code is None else str(message.extend_code),
        SessionContext=message.biz_id or None,
    )


@hookimpl
def build_request(ctx: Any, operation: Operation, payload: Any) -> HttpRequest | None:
    action = ACTIONS.get(operation)
    if action is None:
        return None
    cfg = ctx.config
    body: Any
    if operation in _SENDS:
        body = send_body(cfg, payload)
    else:
        body = wire.PullRequest(Limit=MAX_PULL, SmsSdkAppId=cfg.sdk_app_id)
    parts = urlsplit(str(cfg.base_url))
    headers = {
        "Content-Type": dialect.CONTENT_TYPE,
        # sent as signed: urllib3 would otherwise write its own Host
        "Host": parts.netloc.rpartition("@")[2],
        "X-TC-Action": action,
        "X-TC-Version": VERSION,
        "X-TC-Region": cfg.region,
    }
    url = f"{parts.scheme}://{parts.netloc}{parts.path or '/'}"
    return HttpRequest(method="POST", url=url, headers=headers, body=dialect.json_body(wire.WIRE.write(body)))


@hookimpl
def sign(ctx: Any, operation: Operation, request: HttpRequest) -> HttpRequest:
    cfg = ctx.config
    timestamp = ctx.timestamp()
    headers = dict(request.headers)
    signed = dialect.sign(secret_id=cfg.secret_id, secret_key=cfg.secret_key, service=SERVICE, timestamp=timestamp,
                          method=request.method, headers=headers, payload=request.body,
                          query=urlsplit(request.url).query)
    return request.with_headers({"X-TC-Timestamp": str(timestamp), "Authorization": signed.authorization})


# -- error codes --------------------------------------------------------------------------------

#: documented codes -> (class, not_sent, English gloss). Exact codes first, then the prefixes below.
#: not_sent=True only where the code itself says the request (or the number) was refused before
#: anything was handed to a carrier.
CODES: dict[str, tuple[type, bool, str]] = {
    # SMS codes whose words leave the outcome open
    "FailedOperation.ParametersOtherError": (ProviderError, False, "unknown error"),
    "InternalError.OtherError": (ProviderError, False, "other internal error"),
    "InternalError.UnknownError": (ProviderError, False, "unknown internal error"),
    "InternalError.Timeout": (ProviderError, False, "timed out handing the SMS on (the vendor's 60008)"),
    "InternalError.SendAndRecvFail": (ProviderError, False, "timed out talking to the SMS backend"),
    "InternalError.ParseBackendResponseFail": (ProviderError, False, "could not read the carrier's answer"),
    # SMS internal errors that happen before anything is sent
    "InternalError.JsonParseFail": (ProviderError, True, "could not parse the request's parameters"),
    "InternalError.RequestTimeException": (AuthError, True, "request time more than 10 minutes off"),
    "InternalError.RestApiInterfaceNotExist": (ProviderError, True, "no such interface"),
    "InternalError.SigFieldMissing": (AuthError, True, "signature missing"),
    "InternalError.SigVerificationFail": (AuthError, True, "signature verification failed"),
    # balance and account state
    "FailedOperation.InsufficientBalanceInSmsPackage": (InsufficientBalance, True, "SMS package balance exhausted"),
    "UnauthorizedOperation.ServiceSuspendDueToArrears": (InsufficientBalance, True, "service suspended for arrears"),
    "UnauthorizedOperation.IndividualUserMarketingSmsPermissionDeny":
        (ProviderError, True, "individual accounts cannot send marketing SMS"),
    "FailedOperation.MarketingSendTimeConstraint": (ProviderError, True, "marketing SMS only 8:00-22:00"),
    # common API 3.0 codes (公共错误码) that leave the outcome open
    "InternalError": (ProviderError, False, "internal error"),
    "FailedOperation": (ProviderError, False, "operation failed"),
    "ServiceUnavailable": (ProviderError, False, "service temporarily unavailable"),
    "ResponseSizeLimitExceeded": (ProviderError, False, "answer too large"),
    "ResourceInUse": (ProviderError, False, "resource in use"),
    "ResourceInsufficient": (ProviderError, False, "resource insufficient"),
    # common codes that refuse the request as a whole
    "IpInBlacklist": (AuthError, True, "source IP in the blacklist"),
    "IpNotInWhitelist": (AuthError, True, "source IP not in the whitelist"),
    "InvalidAction": (ProviderError, True, "no such action"),
    "ActionOffline": (ProviderError, True, "action offline"),
    "NoSuchProduct": (ProviderError, True, "no such product"),
    "NoSuchVersion": (ProviderError, True, "no such API version"),
    "UnsupportedProtocol": (ProviderError, True, "unsupported HTTP method"),
    "UnsupportedRegion": (ProviderError, True, "action not offered in this region"),
    "UnknownParameter": (ProviderError, True, "unknown parameter"),
    "RequestSizeLimitExceeded": (ProviderError, True, "request too large"),
    "InvalidRequest": (ProviderError, True, "malformed request body"),
    "DryRunOperation": (ProviderError, True, "dry run: nothing was done"),
    "ResourceNotFound": (ProviderError, True, "resource not found"),
    "ResourceUnavailable": (ProviderError, True, "resource unavailable"),
}

#: code prefixes (the part before the first dot) -> (class, not_sent, gloss). Each family names a
#: refusal: credentials, rate and quota limits, parameter checks, permissions, unsupported
#: operations, and the FailedOperation checks of template, signature, number and content.
PREFIXES: dict[str, tuple[type, bool, str]] = {
    "AuthFailure": (AuthError, True, "credentials or signature refused"),
    "UnauthorizedOperation": (AuthError, True, "not authorised"),
    "RequestLimitExceeded": (RateLimited, True, "API call rate limit"),
    "LimitExceeded": (RateLimited, True, "frequency or quota limit"),
    "InvalidParameter": (ProviderError, True, "invalid parameter"),
    "InvalidParameterValue": (ProviderError, True, "invalid parameter value"),
    "MissingParameter": (ProviderError, True, "missing parameter"),
    "UnsupportedOperation": (ProviderError, True, "unsupported operation"),
    "FailedOperation": (ProviderError, True, "refused"),
}

UNKNOWN_CODE = (ProviderError, False, "undocumented code")


def code_class(code: str) -> tuple[type, bool, str]:
    """``(class, not_sent, gloss)`` for a code of ``Response.Error`` or of one ``SendStatus``."""
    exact = CODES.get(code)
    if exact is not None:
        return exact
    family, dot, _ = code.partition(".")
    if dot and family in PREFIXES:
        return PREFIXES[family]
    # a bare family name (e.g. "LimitExceeded") is the common code of that family
    return PREFIXES.get(code, UNKNOWN_CODE) if not dot else UNKNOWN_CODE


def classify(code: str, message: str | None, request_id: str | None) -> ProviderError:
    cls, not_sent, gloss = code_class(code)
    text = f"tencent: {gloss}: {message}" if message else f"tencent: {gloss}"
    error: ProviderError = cls(text, code=code, vendor_message=message or gloss, request_id=request_id,
                               not_sent=not_sent, provider=NAME)
    return error


# -- answers ------------------------------------------------------------------------------------

def _unreadable(response: HttpResponse, problem: str, request_id: str | None = None) -> ProviderError:
    return ProviderError(f"tencent answered HTTP {response.status} with an unreadable body ({problem})",
                         code=f"HTTP{response.status}", not_sent=False, request_id=request_id, provider=NAME)


def _response(response: HttpResponse) -> tuple[dict[str, Any], wire.Response]:
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        raise _unreadable(response, "not JSON") from None
    try:
        envelope = wire.WIRE.read(data, wire.Envelope)
    except WireError as exc:
        raise _unreadable(response, str(exc)) from None
    return data["Response"], envelope.Response


def _send_reply(raw: dict[str, Any], request: HttpRequest, request_id: str | None,
                response: HttpResponse) -> SendReply:
    try:
        answer = wire.read_response(raw, wire.SendSmsResponse)
    except WireError as exc:
        raise _unreadable(response, str(exc), request_id) from None
    sent = [dialect.national(p) or p for p in json.loads(request.body.decode("utf-8"))["PhoneNumberSet"]]
    ids: dict[str, Any] = {}
    rejected: dict[str, Reason] = {}
    for status in answer.SendStatusSet:
        phone = dialect.national(status.PhoneNumber)
        if phone is None or phone not in sent or phone in ids or phone in rejected:
            continue  # not one of ours, or said twice: the first word stands
        if status.Code == "Ok":  # "发送成功返回 Ok"
            ids[phone] = _text(status.SerialNo)
            continue
        _, not_sent, gloss = code_class(status.Code)
        rejected[phone] = Reason(code=status.Code, message=status.Message or gloss, not_sent=not_sent)
    for phone in sent:
        if phone not in ids and phone not in rejected:
            # the number is missing from SendStatusSet: nothing proves it was refused
            rejected[phone] = Reason(code="NoSendStatus", message="tencent gave no SendStatus for this number",
                                     not_sent=False)
    return SendReply(request_id=request_id, message_ids={p: i for p, i in ids.items() if i}, rejected=rejected)


#: ReportStatus / report_status: "SUCCESS（下发成功）、FAIL（下发失败）"
REPORT_STATUS = {"SUCCESS": Status.DELIVERED, "FAIL": Status.FAILED}


def _text(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


def report(*, serial: Any, phone: Any, status_word: Any, code: Any, at: Any, biz_id: Any,
           raw: dict[str, Any]) -> DeliveryReport:
    """A DeliveryReport from a pulled item or a pushed one (the two spell their fields apart)."""
    word = _text(status_word)
    status = REPORT_STATUS.get(word.upper(), Status.UNKNOWN) if word else Status.UNKNOWN
    return DeliveryReport(provider=NAME, message_id=_text(serial), phone=dialect.national(phone) or _text(phone),
                          status=status, raw_status=word,
                          description=None if status is Status.DELIVERED else _text(code),
                          reported_at=_text(at), biz_id=_text(biz_id), raw=dict(raw))


def _pulled_reports(raw: dict[str, Any], request_id: str | None, response: HttpResponse) -> list[DeliveryReport]:
    try:
        items = wire.read_response(raw, wire.PullSmsSendStatusResponse).PullSmsSendStatusSet or ()
    except WireError as exc:
        raise _unreadable(response, str(exc), request_id) from None
    raws = raw.get("PullSmsSendStatusSet") or []
    return [report(serial=i.SerialNo, phone=i.SubscriberNumber or i.PhoneNumber, status_word=i.ReportStatus,
                   code=i.Description, at=i.UserReceiveTime, biz_id=i.SessionContext, raw=r)
            for i, r in zip(items, raws)]


def inbound(*, phone: Any, content: Any, at: Any, extend: Any, raw: dict[str, Any]) -> InboundMessage:
    return InboundMessage(provider=NAME, phone=dialect.national(phone) or str(phone), content=str(content or ""),
                          received_at=_text(at), service_code=_text(extend), raw=dict(raw))


def _pulled_replies(raw: dict[str, Any], request_id: str | None, response: HttpResponse) -> list[InboundMessage]:
    try:
        items = wire.read_response(raw, wire.PullSmsReplyStatusResponse).PullSmsReplyStatusSet or ()
    except WireError as exc:
        raise _unreadable(response, str(exc), request_id) from None
    raws = raw.get("PullSmsReplyStatusSet") or []
    return [inbound(phone=i.SubscriberNumber or i.PhoneNumber, content=i.ReplyContent, at=i.ReplyTime,
                    extend=i.ExtendCode, raw=r) for i, r in zip(items, raws)]


@hookimpl
def parse_response(ctx: Any, operation: Operation, request: HttpRequest, response: HttpResponse) -> Any:
    raw, answer = _response(response)
    request_id = _text(answer.RequestId)
    if answer.Error is not None:
        raise classify(answer.Error.Code, _text(answer.Error.Message), request_id)
    if operation in _SENDS:
        return _send_reply(raw, request, request_id, response)
    if operation is _PULL_REPORTS:
        return _pulled_reports(raw, request_id, response)
    if operation is _PULL_INBOUND:
        return _pulled_replies(raw, request_id, response)
    return None


# -- pushes -------------------------------------------------------------------------------------

@hookimpl
def verify_callback(ctx: Any, request: Any) -> bool:
    """Tencent signs no push: a push is accepted only through the protections the config sets
    (source address, path secret), and refused while it sets none."""
    return push_allowed(ctx, request)


#: the answer both callbacks ask for: "result 0 表示成功"
PUSH_ANSWER = {"result": 0, "errmsg": "OK"}


def _malformed(problem: str) -> ValidationError:
    return ValidationError(f"tencent push is malformed: {problem}", field="body")


@hookimpl
def parse_callback(ctx: Any, request: Any) -> CallbackResult:
    try:
        data = request.json()
    except (ValueError, UnicodeDecodeError):
        raise _malformed("body: not JSON") from None
    events: list[Any]
    if isinstance(data, list):  # the status callback: an array of reports
        try:
            items = wire.WIRE.read(data, Tuple[wire.StatusCallback, ...])
        except WireError as exc:
            raise _malformed(str(exc)) from None
        events = [report(serial=i.sid, phone=i.mobile, status_word=i.report_status, code=i.errmsg,
                         at=i.user_receive_time, biz_id=None, raw=r) for i, r in zip(items, data)]
    elif isinstance(data, dict):  # the reply callback: one inbound SMS
        try:
            item = wire.WIRE.read(data, wire.ReplyCallback)
        except WireError as exc:
            raise _malformed(str(exc)) from None
        events = [inbound(phone=item.mobile, content=item.text, at=item.time, extend=item.extend, raw=data)]
    else:
        raise _malformed("neither a status array nor a reply object")
    return CallbackResult(events=events, response=HttpResponse.of_json(PUSH_ANSWER))
