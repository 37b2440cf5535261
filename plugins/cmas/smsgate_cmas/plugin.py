"""smsgate provider for China Mobile 云MAS over HTTPS (``cmas``).

* free text -> ``/sms/submit`` (one content, up to 5000 mobiles a request)
* template -> ``/sms/tmpsubmit`` (positional params as a JSON array string, ``[""]`` for none)
* personalised text -> many-to-many ``/sms/submit`` (``mobiles`` empty, ``content`` a JSON object
  phone -> text, fewer than 1000 numbers a request)
* delivery reports -> ``/sms/report``, inbound SMS -> ``/sms/deliver`` (pulls, one call per 5 s for
  both together: the cautious reading of 注3)

Bodies are base64 JSON; sends carry an md5 ``mac`` (see :mod:`smsgate_cmas.dialect`).
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from smsgate import (
    AuthError,
    ConfigError,
    DeliveryReport,
    HttpRequest,
    InboundMessage,
    Operation,
    ProviderConfig,
    ProviderError,
    RateLimited,
    SendReply,
    Status,
    ValidationError,
    hookimpl,
    secret,
)

from . import CAPABILITIES, PROVIDER, PULL_INTERVAL, dialect, wire  # CAPABILITIES: read from here too

NAME = PROVIDER.name

# an enum member read through its class costs about ten times a module global: read per request
_SEND, _SEND_BATCH, _PULL_REPORTS, _PULL_INBOUND = (
    Operation.SEND, Operation.SEND_BATCH, Operation.PULL_REPORTS, Operation.PULL_INBOUND)
_SENDS = (_SEND, _SEND_BATCH)

_ADD_SERIAL = re.compile(r"\d{0,20}")


@attrs.frozen(kw_only=True)
class CmasConfig(ProviderConfig):
    """Keys of ``[providers.cmas]``. ``base_url`` (``https://host:port``) has no default: the
    operator gives each customer its own address."""

    ec_name: str  #: 企业名称
    ap_id: str  #: 接口账号用户名
    secret_key: str = secret()  #: 接口账号密码 (enters the mac; sent in clear only to the pulls)
    sign: str  #: 签名编码, from 『管理』→『接口管理』→『短信接入用户管理』
    add_serial: str = ""  #: 扩展码, "" for exact match (checked when sending: digits, at most 20)


# -- validation ----------------------------------------------------------------------------

@hookimpl
def validate_message(ctx: Any, message: Any) -> None:
    # checked here rather than by an attrs validator, so that the error names the key
    if not _ADD_SERIAL.fullmatch(ctx.config.add_serial):
        raise ConfigError(f"provider {ctx.provider!r}: add_serial must be at most 20 digits",
                          provider=ctx.provider, field="add_serial")
    if message.personal is not None and message.template_id is not None:
        raise ValidationError(
            "cmas has no personalised template send: personalise free text (many-to-many submit) "
            "or send one template to all", field="personal")
    if message.extend_code is not None and not _ADD_SERIAL.fullmatch(message.extend_code):
        raise ValidationError("cmas extend code (addSerial) must be at most 20 digits", field="extend_code")
    if message.sign_name is not None and not message.sign_name.strip():
        raise ValidationError("sign code is empty", field="sign_name")
    return None


# -- requests ------------------------------------------------------------------------------

def _sign_code(ctx: Any, message: Any) -> str:
    """A message's ``sign_name`` overrides the configured 签名编码 (it must be a code, not a name)."""
    return str(message.sign_name if message.sign_name is not None else ctx.config.sign)


def _add_serial(ctx: Any, message: Any) -> str:
    return str(message.extend_code if message.extend_code is not None else ctx.config.add_serial)


def _post(ctx: Any, path: str, fields: Any) -> HttpRequest:
    """POST one of the request classes of :mod:`smsgate_cmas.wire` (keys in field order)."""
    return HttpRequest(method="POST", url=ctx.url(path),
                       headers={"Content-Type": "text/plain;charset=UTF-8"},
                       body=dialect.encode_body(wire.WIRE.write(fields)))


@hookimpl
def build_request(ctx: Any, operation: Operation, payload: Any) -> HttpRequest | None:
    cfg = ctx.config
    if operation is _SEND and payload.template_id is not None:
        return _post(ctx, dialect.TMPSUBMIT_PATH, wire.TmplSubmitRequest(
            ecName=cfg.ec_name,
            apId=cfg.ap_id,
            templateId=str(payload.template_id),
            mobiles=",".join(payload.to),
            params=dialect.template_params(payload.params),
            sign=_sign_code(ctx, payload),
            addSerial=_add_serial(ctx, payload),
        ))
    if operation is _SEND:
        return _post(ctx, dialect.SUBMIT_PATH, wire.SubmitRequest(
            ecName=cfg.ec_name,
            apId=cfg.ap_id,
            mobiles=",".join(payload.to),
            content=payload.text,
            sign=_sign_code(ctx, payload),
            addSerial=_add_serial(ctx, payload),
        ))
    if operation is _SEND_BATCH:
        # many-to-many: no mobiles, the content maps each phone to its own text
        return _post(ctx, dialect.SUBMIT_PATH, wire.SubmitRequest(
            ecName=cfg.ec_name,
            apId=cfg.ap_id,
            mobiles="",
            content=dialect.json_text({phone: payload.personal[phone] for phone in payload.to}),
            sign=_sign_code(ctx, payload),
            addSerial=_add_serial(ctx, payload),
        ))
    if operation in (_PULL_REPORTS, _PULL_INBOUND):
        path = dialect.REPORT_PATH if operation is _PULL_REPORTS else dialect.DELIVER_PATH
        # the pulls carry the password itself; there is no mac
        return _post(ctx, path, wire.PullRequest(ecName=cfg.ec_name, apId=cfg.ap_id, secretKey=cfg.secret_key))
    return None


@hookimpl
def sign(ctx: Any, operation: Operation, request: HttpRequest) -> HttpRequest:
    order = dialect.mac_fields_for(request.path)
    if order is None:
        return request
    fields = dialect.decode_body(request.body)
    fields.pop("mac", None)
    fields["mac"] = dialect.mac({**fields, "secretKey": ctx.config.secret_key}, order)
    return attrs.evolve(request, body=dialect.encode_body(fields))


# -- answers -------------------------------------------------------------------------------

#: rspcod -> (error class, what to do, the document's own description). Every one of them says
#: the platform refused the request during validation, before anything went to the SMS gateway.
RSPCODES: dict[str, tuple[type, str, str]] = {
    "IllegalMac": (AuthError, "cmas refused the mac: check secret_key, ec_name and ap_id", "mac校验不通过。"),
    "InvalidUsrOrPwd": (AuthError, "cmas refused the account: check ec_name, ap_id and secret_key",
                        "非法用户名/密码。"),
    "IllegalSignId": (ProviderError, "cmas refused the sign code: check `sign` (签名编码)", "无效的签名编码。"),
    "NoSignId": (ProviderError, "cmas found no signature for the sign code: check `sign` (签名编码)",
                 "未匹配到对应的签名信息。"),
    "InvalidMessage": (ProviderError, "cmas could not parse the request", "非法消息，请求数据解析失败。"),
    "TooManyMobiles": (ProviderError, "cmas refused more than 5000 mobiles in one request",
                       "手机号数量超限（>5000），应≤5000。"),
}

#: the refusal of a pull made inside the 5-second window. The document does not say how the
#: platform refuses; the simulator answers HTTP 429 with this rspcod, and either signal counts.
TOO_FREQUENT = "TooFrequent"


def _error_for(code: str) -> ProviderError | None:
    if code == TOO_FREQUENT:
        return RateLimited("cmas allows one report pull and one inbound pull per 5 s", code=code,
                           vendor_message="5秒钟内只能请求一次", retry_after=PULL_INTERVAL, provider=NAME)
    known = RSPCODES.get(code)
    if known is None:
        return None
    cls, text, vendor_text = known
    error: ProviderError = cls(text, code=code, vendor_message=vendor_text, not_sent=True, provider=NAME)
    return error


@hookimpl
def parse_response(ctx: Any, operation: Operation, request: HttpRequest, response: Any) -> Any:
    try:
        data = dialect.decode_answer(response.body)
    except ValueError:
        data = None
    # the rspcod alone decides a refusal, whatever the rest of the answer holds
    rspcod = wire.WIRE.read(data, wire.AnswerCode).rspcod if isinstance(data, dict) else None
    if rspcod not in (None, "success"):
        error = _error_for(rspcod)
        if error is not None:
            raise error
    if response.status == 429:
        # without the platform's own TooFrequent rspcod (handled above) the 429 may come from a proxy
        # in front of it, after the request was passed on: it proves nothing about the send
        raise RateLimited(f"cmas answered HTTP 429 to {request.path} without its TooFrequent code; "
                          "the request may have been taken", code="HTTP429", not_sent=False,
                          retry_after=PULL_INTERVAL, provider=NAME)
    if response.status != 200 or data is None:
        raise ProviderError(f"cmas answered HTTP {response.status} with a body that is not its JSON",
                            code=f"HTTP{response.status}", not_sent=False, provider=NAME)
    if operation in _SENDS:
        return _send_reply(data, rspcod)
    if operation in (_PULL_REPORTS, _PULL_INBOUND):
        if not isinstance(data, list):
            code = rspcod if isinstance(data, dict) else "ANSWER"
            raise ProviderError(f"cmas answered {request.path} with something other than a list",
                                code=str(code), not_sent=False, provider=NAME)
        # items that are not JSON objects carry nothing to read; they are skipped
        if operation is _PULL_REPORTS:
            return [_report(item) for item in data if isinstance(item, dict)]
        return [_inbound(item) for item in data if isinstance(item, dict)]
    return None


def _send_reply(data: Any, rspcod: str | None) -> SendReply:
    try:
        answer = wire.WIRE.read(data, wire.SubmitAnswer)
    except ValueError as exc:
        # the request may have been taken: the recipients become unknown
        raise ProviderError(f"cmas answer to a send could not be read: {exc}",
                            code=rspcod or "ANSWER", not_sent=False, provider=NAME) from None
    if answer.rspcod == "success" and answer.success is True and answer.mgs_group:
        return SendReply(message_id=answer.mgs_group)
    # an unknown rspcod, or "success" without success/mgsGroup: the request may have been taken
    raise ProviderError(f"cmas answered rspcod {answer.rspcod!r} (success={answer.success!r}) "
                        "without a message group (mgsGroup)",
                        code=answer.rspcod, not_sent=False, provider=NAME)


def _read_item(item: dict[str, Any], cls: type) -> Any:
    try:
        return wire.WIRE.read(item, cls)
    except ValueError as exc:  # not expected: every item field is optional text
        raise ProviderError(f"cmas pull answered an item that could not be read: {exc}",
                            code="ANSWER", not_sent=False, provider=NAME) from None


def _report(item: dict[str, Any]) -> DeliveryReport:
    report = _read_item(item, wire.ReportItem)
    delivered = report.report_status == "DELIVRD"
    return DeliveryReport(
        provider=NAME,
        message_id=report.msg_group,  # the mgsGroup the send answered
        phone=report.mobile,
        status=Status.DELIVERED if delivered else Status.FAILED,
        raw_status=report.report_status,
        description=None if delivered else report.error_code,
        reported_at=report.receive_date,
        raw=dict(item),
    )


def _inbound(item: dict[str, Any]) -> InboundMessage:
    inbound = _read_item(item, wire.InboundItem)
    return InboundMessage(
        provider=NAME,
        phone=inbound.mobile or "",
        content=inbound.sms_content or "",
        received_at=inbound.send_time,
        service_code=inbound.add_serial,
        raw=dict(item),
    )
