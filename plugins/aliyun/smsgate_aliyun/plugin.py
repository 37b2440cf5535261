"""smsgate provider ``aliyun``: Alibaba Cloud SMS (阿里云短信服务, Dysmsapi 2017-05-25).

* same content to many -> ``SendSms`` (``PhoneNumbers`` comma-joined, at most 1000;
  ``TemplateParam`` a JSON object text; ``SmsUpExtendCode``; ``OutId``);
* personalised -> ``SendBatchSms`` (``PhoneNumberJson``, ``SignNameJson``, ``TemplateParamJson``,
  ``SmsUpExtendCodeJson``, at most 100 numbers);
* report pull -> ``QuerySendDetails`` (one phone and the day it was sent to, optionally a BizId);
* report (SmsReport) and inbound (SmsUp) HTTP batch pushes: JSON arrays, answered ``{"code":0}``.

Every call is an RPC-style ``POST /`` signed with Alibaba Cloud's signature V3,
``ACS3-HMAC-SHA256`` (see :mod:`smsgate_aliyun.dialect`).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

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
    SendReply,
    Status,
    ValidationError,
    WireError,
    hookimpl,
    normalise_phone,
    secret,
    text_params,
)

from smsgate.receiving.guard import UnsignedPushConfig, push_allowed

from . import CAPABILITIES, PROVIDER, dialect, wire  # CAPABILITIES: read from here too

NAME = PROVIDER.name

# an enum member read through its class costs about ten times a module global: read per request
_SEND_BATCH, _PULL_REPORTS = Operation.SEND_BATCH, Operation.PULL_REPORTS

#: the central endpoint (cn-hangzhou and every other mainland region)
CENTRAL_HOST = "dysmsapi.aliyuncs.com"
#: regions whose endpoint is not the central one (the official SDK's endpoint map)
REGION_HOSTS = {
    "ap-southeast-1": "dysmsapi.ap-southeast-1.aliyuncs.com",
    "ap-southeast-5": "dysmsapi.ap-southeast-5.aliyuncs.com",
    "cn-beijing": "dysmsapi-proxy.cn-beijing.aliyuncs.com",
    "cn-hongkong": "dysmsapi-xman.cn-hongkong.aliyuncs.com",
    "eu-central-1": "dysmsapi.eu-central-1.aliyuncs.com",
    "us-east-1": "dysmsapi.us-east-1.aliyuncs.com",
}

MAX_OUT_ID = 255  #: OutId: "fewer than 256 characters"
PAGE_SIZE = 50  #: QuerySendDetails' largest page

ACTIONS = {
    Operation.SEND: "SendSms",
    Operation.SEND_BATCH: "SendBatchSms",
    Operation.PULL_REPORTS: "QuerySendDetails",
}


def endpoint_for(region: str) -> str:
    return "https://" + REGION_HOSTS.get(region, CENTRAL_HOST)


@attrs.frozen(kw_only=True)
class AliyunConfig(UnsignedPushConfig):
    """``[providers.aliyun]``. ``access_key_id``/``access_key_secret`` are a RAM user's AccessKey
    (grant it ``AliyunDysmsFullAccess`` or a narrower policy). ``base_url`` is the endpoint; left
    out, ``region`` picks it as the official SDK does (``https://dysmsapi.aliyuncs.com`` for the
    mainland regions). Alibaba Cloud signs no push: ``push_path_secret`` (register
    ``https://<host>/callbacks/aliyun/<secret>`` in the console), ``push_allow_ips`` or
    ``push_auth = "none"`` (:class:`smsgate.receiving.guard.UnsignedPushConfig`) must be set before
    pushes are accepted."""

    access_key_id: str
    access_key_secret: str = secret()
    #: an STS token (``x-acs-security-token``) when the AccessKey is a temporary one
    security_token: str | None = secret(default=None)
    region: str = "cn-hangzhou"
    #: the approved sign name used when a message names none (``SignName``)
    sign_name: str | None = None
    #: redeclared after ``region`` so that its default can follow the region
    base_url: str = attrs.field(default=attrs.Factory(lambda self: endpoint_for(self.region), takes_self=True))


# -- validation --------------------------------------------------------------------------------

@hookimpl
def validate_message(ctx: Any, message: Any) -> Any:
    sign_name = (message.sign_name or ctx.config.sign_name or "").strip()
    if not sign_name:
        raise ValidationError("aliyun needs a sign name (SignName): give the message one or set sign_name "
                              "in the provider's config", field="sign_name")
    if message.extend_code is not None and not (str(message.extend_code).isascii()
                                                and str(message.extend_code).isdigit()):
        raise ValidationError("aliyun SmsUpExtendCode must be digits", field="extend_code")
    if message.biz_id is not None and len(str(message.biz_id)) > MAX_OUT_ID:
        raise ValidationError(f"aliyun OutId is at most {MAX_OUT_ID} characters", field="biz_id")
    # the vendor takes only text values ("JSON参数不合法，只接受字符串值"): numbers become their text
    return attrs.evolve(text_params(message), sign_name=sign_name)


# -- requests ----------------------------------------------------------------------------------

def json_text(value: Any) -> str:
    """Compact JSON with Chinese kept as is, the form the vendor's examples use."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def send_params(operation: Operation, message: Any) -> tuple[dict[str, str], dict[str, str]]:
    """``(query, form)`` of one send request, as the official SDK places them: SendSms carries
    everything in the query; SendBatchSms carries its JSON arrays in a form body."""
    out_id = None if message.biz_id is None else str(message.biz_id)
    ext = None if message.extend_code is None else str(message.extend_code)
    if operation is _SEND_BATCH:
        phones = list(message.to)
        query = {"TemplateCode": str(message.template_id), "OutId": out_id}
        form = {
            "PhoneNumberJson": json_text(phones),
            # smsgate's personalised message has one sign name: every number gets it
            "SignNameJson": json_text([message.sign_name] * len(phones)),
            "TemplateParamJson": json_text([message.personal[p] for p in phones])
            if any(message.personal[p] for p in phones) else None,
            "SmsUpExtendCodeJson": json_text([ext] * len(phones)) if ext is not None else None,
        }
        return _present(query), _present(form)
    query = {
        "PhoneNumbers": ",".join(message.to),
        "SignName": message.sign_name,
        "TemplateCode": str(message.template_id),
        "TemplateParam": json_text(message.params) if message.params else None,
        "SmsUpExtendCode": ext,
        "OutId": out_id,
    }
    return _present(query), {}


def _present(values: dict[str, Any]) -> dict[str, str]:
    return {k: v for k, v in values.items() if v is not None}


def details_params(ctx: Any, query: Any) -> dict[str, str]:
    """QuerySendDetails' parameters: one phone, the China date it was sent to, at most one BizId."""
    phones = list(dict.fromkeys(getattr(query, "phones", ()) or ()))
    if len(phones) != 1:
        raise ValidationError(f"aliyun QuerySendDetails looks up one phone number a call; got {len(phones)}: "
                              "pull each phone on its own (PullQuery(phones=[...]))", field="phones")
    phone = normalise_phone(phones[0])
    if phone is None:
        raise ValidationError("aliyun QuerySendDetails: PullQuery.phones holds no mainland mobile number",
                              field="phones")
    ids = list(dict.fromkeys(getattr(query, "message_ids", ()) or ()))
    if len(ids) > 1:
        raise ValidationError(f"aliyun QuerySendDetails takes at most one BizId a call "
                              f"(PullQuery.message_ids); got {len(ids)}", field="message_ids")
    since = getattr(query, "since", None)
    if since is None:
        day = ctx.now_china()
    else:
        from smsgate import CHINA_TZ

        day = (since.replace(tzinfo=CHINA_TZ) if since.tzinfo is None else since).astimezone(CHINA_TZ)
    return _present({"PhoneNumber": phone, "SendDate": day.strftime("%Y%m%d"), "PageSize": str(PAGE_SIZE),
                     "CurrentPage": "1", "BizId": ids[0] if ids else None})


@hookimpl
def build_request(ctx: Any, operation: Operation, payload: Any) -> HttpRequest | None:
    action = ACTIONS.get(operation)
    if action is None:
        return None
    if operation is _PULL_REPORTS:
        query, form = details_params(ctx, payload), dict[str, str]()
    else:
        query, form = send_params(operation, payload)
    headers = {"x-acs-action": action, "x-acs-version": dialect.API_VERSION, "accept": "application/json"}
    if form:
        headers["content-type"] = dialect.FORM_CONTENT_TYPE
    return HttpRequest(method="POST", url=ctx.url(dialect.RPC_PATH) + "?" + dialect.canonical_query(query),
                       headers=headers, body=dialect.form_body(form) if form else b"")


@hookimpl
def sign(ctx: Any, operation: Operation, request: HttpRequest) -> HttpRequest:
    cfg = ctx.config
    parts = urlsplit(request.url)
    headers = {k.lower(): v for k, v in request.headers}
    headers.update({
        "host": parts.netloc,  # sent as signed: urllib3 keeps a Host header it is given
        "x-acs-date": dialect.acs_date(ctx.timestamp()),
        "x-acs-signature-nonce": ctx.nonce(),
        "x-acs-content-sha256": dialect.sha256_hex(request.body),
    })
    if cfg.security_token:
        headers["x-acs-security-token"] = cfg.security_token
    # sign the query as the server will read it back: its parameters, canonically ordered
    query = dialect.canonical_query(parse_qsl(parts.query, keep_blank_values=True))
    headers["authorization"] = dialect.sign(request.method, parts.path or dialect.RPC_PATH, query, headers,
                                            cfg.access_key_id, cfg.access_key_secret)
    return request.with_headers(headers)


# -- answers -----------------------------------------------------------------------------------

#: scope of a code: "request" (the request, account, credentials, template or sign: nothing was
#: sent), "number" (one number's condition: proves nothing only for a one-number request),
#: "content" (the variables: same for every number of a SendSms, per number in a SendBatchSms)
Rule = tuple[type, str, str]

CODES: dict[str, Rule] = {
    # the API gateway: credentials, signature, parameters, throttling -- refused before the service
    "SignatureDoesNotMatch": (AuthError, "request", "the signature does not match (check the AccessKey secret)"),
    "IncompleteSignature": (AuthError, "request", "the signature is incomplete"),
    "InvalidAccessKeyId.NotFound": (AuthError, "request", "no such AccessKey id"),
    "InvalidAccessKeyId.Inactive": (AuthError, "request", "the AccessKey is disabled"),
    "InvalidTimeStamp.Expired": (AuthError, "request", "x-acs-date is out of the server's window (check the clock)"),
    "InvalidTimeStamp.Format": (AuthError, "request", "x-acs-date is badly formatted"),
    "SignatureNonceUsed": (AuthError, "request", "the signature nonce was used before"),
    "InvalidSecurityToken.Expired": (AuthError, "request", "the STS token expired"),
    "InvalidSecurityToken.Malformed": (AuthError, "request", "the STS token is malformed"),
    "InvalidSecurityToken.MismatchWithAccessKey": (AuthError, "request", "the STS token belongs to another key"),
    "Forbidden.RAM": (AuthError, "request", "the RAM user may not call this API"),
    "Forbidden.AccessKeyDisabled": (AuthError, "request", "the AccessKey is disabled"),
    "isp.RAM_PERMISSION_DENY": (AuthError, "request", "the RAM user lacks the SMS permission"),
    "Throttling": (RateLimited, "request", "the API gateway throttled the call"),
    "Throttling.User": (RateLimited, "request", "the account's API flow control"),
    "Throttling.Api": (RateLimited, "request", "the API's flow control"),
    "MissingParameter": (ProviderError, "request", "a required parameter is missing"),
    "InvalidParameter": (ProviderError, "request", "a parameter is invalid"),
    "InvalidVersion": (ProviderError, "request", "no such API version"),
    "InvalidAction.NotFound": (ProviderError, "request", "no such API action"),
    # the account
    "isv.AMOUNT_NOT_ENOUGH": (InsufficientBalance, "request", "the account balance is insufficient"),
    "isv.OUT_OF_SERVICE": (InsufficientBalance, "request", "service stopped (the balance ran out)"),
    "isv.PRODUCT_UN_SUBSCRIPT": (AuthError, "request", "the account has not opened Alibaba Cloud communication"),
    "isv.PRODUCT_UNSUBSCRIBE": (AuthError, "request", "the account has not opened the SMS product"),
    "isv.ACCOUNT_NOT_EXISTS": (AuthError, "request", "no such account"),
    "isv.ACCOUNT_ABNORMAL": (AuthError, "request", "the account is abnormal"),
    "isv.DENY_IP_RANGE": (AuthError, "request", "the source IP's region is not allowed"),
    "isv.DAY_LIMIT_CONTROL": (RateLimited, "request", "the account's daily sending limit (console setting)"),
    "isv.MONTH_LIMIT_CONTROL": (RateLimited, "request", "the account's monthly sending limit (console setting)"),
    # the template, the sign, the request's shape
    "isv.SMS_TEMPLATE_ILLEGAL": (ProviderError, "request", "the template is not found or not approved"),
    "isv.SMS_SIGNATURE_ILLEGAL": (ProviderError, "request", "the sign name is not found or not approved"),
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL": (ProviderError, "request", "the sign's type does not fit the template's"),
    "isv.SIGN_STATE_ILLEGAL": (ProviderError, "request", "the sign is unusable"),
    "isv.SMS_SIGN_ILLEGAL": (ProviderError, "request", "the sign may not be used"),
    "isv.EXTEND_CODE_ERROR": (ProviderError, "request", "the extension code is used by another sign"),
    "isv.DOMESTIC_NUMBER_NOT_SUPPORTED": (ProviderError, "request",
                                          "an international template cannot send to mainland numbers"),
    "isv.INVALID_PARAMETERS": (ProviderError, "request", "the parameters are badly formatted"),
    "isv.MOBILE_COUNT_OVER_LIMIT": (ProviderError, "request", "too many phone numbers in one request"),
    "isv.TEMPLATE_MISSING_PARAMETERS": (ProviderError, "request", "a template variable has no value"),
    "isv.SMS_TEST_SIGN_TEMPLATE_LIMIT": (ProviderError, "request", "the test sign/template cannot be used so"),
    # the variables
    "isv.INVALID_JSON_PARAM": (ProviderError, "content", "the template variables are not a JSON object of text"),
    "isv.TEMPLATE_PARAMS_ILLEGAL": (ProviderError, "content", "a template variable holds a forbidden word"),
    "isv.BLACK_KEY_CONTROL_LIMIT": (ProviderError, "content", "a template variable holds blocked content"),
    "isv.PARAM_LENGTH_LIMIT": (ProviderError, "content", "a template variable is too long"),
    "isv.PARAM_NOT_SUPPORT_URL": (ProviderError, "content", "a template variable holds a URL"),
    "isv.SMS_CONTENT_ILLEGAL": (ProviderError, "content", "the content holds forbidden text"),
    "isv.SMS_TEST_TEMPLATE_PARAMS_ILLEGAL": (ProviderError, "content", "test template variables must be digits"),
    # one number's condition
    "isv.MOBILE_NUMBER_ILLEGAL": (ProviderError, "number", "a phone number is badly formatted"),
    "isv.BUSINESS_LIMIT_CONTROL": (RateLimited, "number",
                                   "a number hit the per-number frequency control (minute/hour/day)"),
    "isv.SMS_TEST_NUMBER_LIMIT": (ProviderError, "number", "the test template may only send to bound numbers"),
}


def classify(code: str, message: str | None, request_id: str | None, operation: Operation,
             recipients: int) -> ProviderError:
    """The classified error for an answer whose ``Code`` is not ``OK``.

    Alibaba Cloud answers one code per request and gives a BizId only to an accepted one. A code
    about the request, the account, the credentials, the template or the sign proves nothing was
    sent. A code about one number's condition proves it only when the request carried one number:
    for several, the reference does not say whether the others went out, so they are unknown.
    A code about the variables concerns every number of a SendSms (they share them) but only one
    number of a multi-number SendBatchSms. Server errors and unknown codes leave the outcome unknown.
    """
    cls, scope, gloss = CODES.get(code, (ProviderError, "unknown", "unknown code"))
    if scope == "request":
        not_sent = True
    elif scope == "content":
        not_sent = operation is not _SEND_BATCH or recipients == 1
    elif scope == "number":
        not_sent = recipients == 1
    else:
        not_sent = False
    text = f"aliyun: {gloss}: {message}" if message else f"aliyun: {gloss}"
    error: ProviderError = cls(text, code=code, vendor_message=message or gloss, request_id=request_id,
                               not_sent=not_sent, provider=NAME)
    return error


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _read(response: HttpResponse) -> tuple[Any, wire.Answer]:
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        problem = "body: not JSON"
    else:
        try:
            return data, wire.WIRE.read(data, wire.Answer)
        except WireError as exc:
            problem = str(exc)
    raise ProviderError(f"aliyun answered HTTP {response.status} without a readable Code ({problem})",
                        code=f"HTTP{response.status}", not_sent=False, provider=NAME)


def _recipients(request: HttpRequest, operation: Operation) -> int:
    if operation is _SEND_BATCH:
        form = dict(parse_qsl(request.body.decode("ascii"), keep_blank_values=True))
        return len(json.loads(form.get("PhoneNumberJson") or "[]"))
    query = dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True))
    return len([p for p in (query.get("PhoneNumbers") or "").split(",") if p])


SEND_STATUS = {1: Status.PENDING, 2: Status.FAILED, 3: Status.DELIVERED}


def detail_report(record: wire.SmsSendDetailDTO, raw: Any, biz_id: str | None) -> DeliveryReport:
    """One QuerySendDetails record. The record carries no BizId: it is the queried one, if any."""
    status = SEND_STATUS.get(record.send_status, Status.UNKNOWN) if record.send_status is not None \
        else Status.UNKNOWN
    err = _clean(record.err_code)
    return DeliveryReport(
        provider=NAME, message_id=biz_id, phone=_clean(record.phone_num), status=status,
        raw_status=err or (None if record.send_status is None else str(record.send_status)),
        description=None if status is Status.DELIVERED else err,
        reported_at=_clean(record.receive_date), biz_id=_clean(record.out_id), raw=dict(raw),
    )


def _details(data: Any, request: HttpRequest, request_id: str | None) -> list[DeliveryReport]:
    try:
        answer = wire.WIRE.read(data, wire.SendDetails)
    except WireError as exc:
        raise ProviderError(f"aliyun QuerySendDetails answer cannot be read ({exc})", code="OK",
                            request_id=request_id, not_sent=False, provider=NAME) from None
    query = dict(parse_qsl(urlsplit(request.url).query, keep_blank_values=True))
    raws = (data.get("SmsSendDetailDTOs") or {}).get("SmsSendDetailDTO") or []
    return [detail_report(r, raw, _clean(query.get("BizId"))) for r, raw in zip(answer.details.records, raws)]


@hookimpl
def parse_response(ctx: Any, operation: Operation, request: HttpRequest, response: HttpResponse) -> Any:
    data, answer = _read(response)
    request_id = _clean(answer.request_id)
    if answer.code != "OK":
        raise classify(answer.code, _clean(answer.message), request_id, operation,
                       _recipients(request, operation))
    if operation is _PULL_REPORTS:
        return _details(data, request, request_id)
    biz_id = _clean(answer.biz_id)
    if biz_id is None:  # the BizId is the proof of acceptance; without it nothing can be told
        raise ProviderError("aliyun answered OK without a BizId", code="OK", request_id=request_id,
                            not_sent=False, provider=NAME)
    return SendReply(message_id=biz_id, request_id=request_id)


# -- pushes ------------------------------------------------------------------------------------

@hookimpl
def verify_callback(ctx: Any, request: Any) -> bool:
    """Alibaba Cloud signs no push: a push is accepted only through the protections the config
    sets (path secret, source address), and refused while it sets none."""
    return push_allowed(ctx, request)


#: the answer the vendor wants: HTTP 200 and a numeric ``code`` (anything else makes it retry)
PUSH_ANSWER = {"code": 0, "msg": "接收成功"}


def push_report(item: wire.SmsReport, raw: Any) -> DeliveryReport:
    err = _clean(item.err_code)
    status = Status.DELIVERED if item.success else Status.FAILED
    return DeliveryReport(
        provider=NAME, message_id=_clean(item.biz_id), phone=normalise_phone(item.phone_number) or item.phone_number,
        status=status, raw_status=err, description=None if item.success else (_clean(item.err_msg) or err),
        reported_at=_clean(item.report_time), biz_id=_clean(item.out_id), raw=dict(raw),
    )


def push_inbound(item: wire.SmsUp, raw: Any) -> InboundMessage:
    return InboundMessage(
        provider=NAME, phone=normalise_phone(item.phone_number) or item.phone_number, content=item.content,
        received_at=_clean(item.send_time), service_code=_clean(item.dest_code), raw=dict(raw),
    )


@hookimpl
def parse_callback(ctx: Any, request: Any) -> CallbackResult:
    try:
        data = request.json()
    except (ValueError, UnicodeDecodeError):
        raise ValidationError("aliyun push is malformed: body: not JSON", field="body") from None
    try:
        items = wire.read_push(data)
    except WireError as exc:
        raise ValidationError(f"aliyun push is malformed: {exc}", field="body") from None
    events = [push_inbound(i, raw) if isinstance(i, wire.SmsUp) else push_report(i, raw)
              for i, raw in zip(items, data)]
    return CallbackResult(events=events, response=HttpResponse.of_json(PUSH_ANSWER))
