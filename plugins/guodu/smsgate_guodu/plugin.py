"""The ``guodu`` provider: 国都企信通 ``HttpQuickProcess/submitJson``.

One call sends one text to up to ``max_phones`` numbers; the content travels URL-encoded the way
Java's ``URLEncoder`` writes it. Guodu signs nothing: the account name and password travel in the
body, and its report pushes carry no signature, so they are refused until the config sets a
protection (``push_allow_ips``, ``push_path_secret`` or ``push_auth = "none"``; see
:mod:`smsgate.receiving.guard`).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

import attrs

from smsgate.config import InvalidValue, secret
from smsgate.errors import AuthError, ProviderError, PushTooLarge, ValidationError
from smsgate.hookspecs import hookimpl
from smsgate.models import (
    CallbackResult,
    DeliveryReport,
    HttpRequest,
    HttpResponse,
    InboundMessage,
    Message,
    Operation,
    SendReply,
    Status,
    builder,
)
from smsgate.phones import mask_phone, mask_phones_in
from smsgate.receiving.guard import UnsignedPushConfig, push_allowed, redact_path
from smsgate.wire import load_json, load_json_native, load_json_utf8

from . import CAPABILITIES, MAX_TEXT_LENGTH, PROVIDER, dialect, wire  # CAPABILITIES: read from here too

NAME = PROVIDER.name

# an enum member read through its class costs about ten times a module global: read per request
_SEND, _SEND_BATCH = Operation.SEND, Operation.SEND_BATCH
_SENDS = (_SEND, _SEND_BATCH)

SUBMIT_PATH = "/HttpQuickProcess/submitJson"
#: the document's hard ceiling on phones a request; its note lowers it to 200 (the default)
HARD_MAX_PHONES = 500
#: the document: at most 250 messages in one push
MAX_PUSH_ITEMS = 250


def _check_max_phones(instance: Any, attribute: Any, value: int) -> None:
    if not 1 <= value <= HARD_MAX_PHONES:
        raise ValueError(f"max_phones must be between 1 and {HARD_MAX_PHONES}")


def _check_append_id(instance: Any, attribute: Any, value: str) -> None:
    if value and not value.isdigit():
        raise ValueError("append_id must be digits only")


def _check_sub_port(instance: Any, attribute: Any, value: str) -> None:
    if value and not value.isdigit():
        raise ValueError("sub_port must be digits only")
    total = len(value) + len(instance.append_id)  # checked once the whole config is built
    if total > dialect.MAX_SENDER_DIGITS:
        raise InvalidValue("sub_port", f"({len(value)} digits) and append_id ({len(instance.append_id)}) make "
                           f"{total} digits; the sender number is at most {dialect.MAX_SENDER_DIGITS}")


@attrs.frozen(kw_only=True)
class GuoduConfig(UnsignedPushConfig):
    """``push_allow_ips``, ``push_path_secret`` and ``push_auth`` come from
    :class:`smsgate.receiving.guard.UnsignedPushConfig`: pushes are refused until one is set."""

    #: the address Guodu's business staff give; the document also names 221.179.172.68 (China
    #: Mobile room) and 124.251.7.68 (21Vianet room), usually with a port: http://ip:port
    base_url: str = "http://qxtsms.guodulink.net"
    oper_id: str  #: OperID, the account name
    oper_pass: str = secret()  #: OperPass, the account password
    append_id: str = attrs.field(default="", validator=_check_append_id)  #: AppendID for every send
    #: the sender number before AppendID (spnumber + the account's identity, e.g. "1069001313"),
    #: as Guodu gave it; with it, AppendID is checked to keep the whole number within 20 digits
    sub_port: str = attrs.field(default="", validator=_check_sub_port)
    #: phones a request; the document says 500 in its table and 200 in its note
    max_phones: int = attrs.field(default=200, validator=_check_max_phones)


#: ``InboundMessage.raw`` key marking a push that was kept whole because its shape is unknown
UNRECOGNISED = "guodu_unrecognised_push"


def is_unrecognised(event: Any) -> bool:
    """True for the event that carries a push of unknown shape (see :func:`parse_callback`)."""
    return isinstance(event, InboundMessage) and bool(event.raw.get(UNRECOGNISED))


def push_body(event: InboundMessage) -> bytes:
    """The exact bytes of the push an unrecognised-push event carries."""
    import base64

    return base64.b64decode(event.raw["body_base64"])


def _log() -> Any:
    from smsgate.log import get_logger

    return get_logger("smsgate.guodu")


# -- sending ---------------------------------------------------------------------------------

_DIGITS = re.compile(r"\d*")


def _with_sign(text: str, sign: str) -> str:
    if text.startswith(sign) or text.endswith(sign):
        return text
    return sign + text


def _check_append_id_fits(ctx: Any, message: Message) -> None:
    """The document's note 1: spnumber + account identity + AppendID is at most 20 digits."""
    if message.extend_code is None:
        return  # the configured append_id was checked with sub_port when the config was loaded
    append_id = str(message.extend_code)
    if not _DIGITS.fullmatch(append_id) or not append_id.isascii():
        raise ValidationError("guodu: extend_code (AppendID) must be digits only", field="extend_code")
    sub_port = ctx.config.sub_port
    if len(sub_port) + len(append_id) > dialect.MAX_SENDER_DIGITS:
        where = f"after the sub-port {sub_port} ({len(sub_port)} digits)" if sub_port else "on its own"
        raise ValidationError(
            f"guodu: extend_code (AppendID) has {len(append_id)} digits; {where} the sender number may "
            f"have at most {dialect.MAX_SENDER_DIGITS - len(sub_port)} more (at most "
            f"{dialect.MAX_SENDER_DIGITS} in all)", field="extend_code")


@hookimpl
def validate_message(ctx: Any, message: Message) -> Message | None:
    """Check AppendID and the text's length as the vendor counts it; put the signature into the
    text (smsgate's convention: Guodu has no sign field)."""
    _check_append_id_fits(ctx, message)
    replaced, sign = message, None
    if message.sign_name:
        name = message.sign_name.strip()
        sign = name if name.startswith("【") else f"【{name}】"
        if message.personal is not None:
            replaced = attrs.evolve(message, personal={p: _with_sign(t, sign) for p, t in message.personal.items()})
        else:
            replaced = attrs.evolve(message, text=_with_sign(message.text or "", sign))
    texts = list(replaced.personal.values()) if replaced.personal is not None else [replaced.text or ""]
    for text in texts:
        # Java's String.length(): UTF-16 units, so an emoji counts 2 (the core counted code points)
        length = dialect.java_length(text)
        if length > MAX_TEXT_LENGTH:
            what = f"text with its signature {sign}" if sign else "text"
            raise ValidationError(
                f"{what} is {length} characters as the vendor counts them (UTF-16 units: an emoji "
                f"counts 2); provider {ctx.provider!r} takes at most {MAX_TEXT_LENGTH}", field="text")
    return None if replaced is message else replaced


@hookimpl
def request_limit(ctx: Any, operation: Operation) -> int | None:
    if operation is _SEND:
        return int(ctx.config.max_phones)
    if operation is _SEND_BATCH:
        return 1
    return None


def submit_body(ctx: Any, message: Message) -> dict[str, str]:
    """The submitJson fields, in the document's order."""
    cfg = ctx.config
    if message.personal is not None:
        texts = {message.personal[p] for p in message.to}
        if len(texts) != 1:  # the request_limit hook keeps personalised requests to one phone
            raise ValidationError("guodu: one request carries one text", field="personal")
        text = texts.pop()
    else:
        text = message.text or ""
    append_id = cfg.append_id if message.extend_code is None else str(message.extend_code)
    fields: dict[str, str] = wire.WIRE.write(wire.SubmitRequest(
        OperID=cfg.oper_id,
        OperPass=cfg.oper_pass,
        SendTime=dialect.send_time(message.send_at_china()),
        AppendID=append_id,
        DesMobile=",".join(message.to),
        Content=dialect.java_urlencode(text),
    ))
    return fields


@hookimpl
def build_request(ctx: Any, operation: Operation, payload: Any) -> HttpRequest | None:
    if operation not in _SENDS:
        return None
    body = json.dumps(submit_body(ctx, payload), ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return HttpRequest(method="POST", url=ctx.url(SUBMIT_PATH),
                       headers={"Content-Type": "application/json;charset=UTF-8"}, body=body)


def result_error(code: str) -> ProviderError:
    """The classified error for a ResultCode that is not a success."""
    text = dialect.describe(code)
    kwargs: dict[str, Any] = {"code": code, "vendor_message": text, "provider": NAME}
    if code in dialect.AUTH_CODES:
        return AuthError(f"guodu refused the account: ResultCode {code} {text}", **kwargs)
    if code in dialect.NOT_SENT_CODES:
        return ProviderError(f"guodu refused the request: ResultCode {code} {text}", not_sent=True, **kwargs)
    # -1 提交异常 and codes the document does not list: the vendor may have queued the messages
    return ProviderError(f"guodu answered ResultCode {code} {text}; the messages may have been taken",
                         not_sent=False, **kwargs)


@hookimpl
def parse_response(ctx: Any, operation: Operation, request: HttpRequest, response: HttpResponse) -> Any:
    if operation not in _SENDS:
        return None
    try:
        data = load_json(response.body.decode("utf-8-sig").strip() or "null")
    except ValueError:
        raise ProviderError(f"guodu answered HTTP {response.status} with a body that is not JSON",
                            code=f"HTTP{response.status}", not_sent=False, provider=NAME) from None
    try:
        answer = wire.WIRE.read(data, wire.SubmitAnswer)
    except ValueError as exc:
        # the request may have been taken: the recipients become unknown
        raise ProviderError(f"guodu answered HTTP {response.status} with an answer that cannot be read: {exc}",
                            code=f"HTTP{response.status}", not_sent=False, provider=NAME) from None
    code = answer.result_code
    if code not in dialect.ACCEPTED_CODES:
        raise result_error(code)
    msg_id = None if answer.msg_id is None or answer.msg_id.strip() == "" else answer.msg_id.strip()
    if msg_id is None:
        _log().warning("smsgate.guodu.send.no_msgid", code=code)
    return SendReply(message_id=msg_id)


# -- pushes ----------------------------------------------------------------------------------

@hookimpl
def verify_callback(ctx: Any, request: Any) -> bool:
    """Guodu's pushes carry no signature: a push is accepted only through the protections the
    config sets (source address, path secret), and refused while it sets none."""
    return push_allowed(ctx, request)


_PHONE_KEYS = ("mobile", "srcmobile", "src_mobile", "phone", "phonenumber", "sendmobile")
_CONTENT_KEYS = ("content", "msgcontent", "smscontent", "text")
_TIME_KEYS = ("recvtime", "receivetime", "motime", "sendtime", "time", "reporttime")
_SERVICE_KEYS = ("appendid", "spnumber", "destid", "extno", "subcode")


def _pick(item: dict[str, Any], keys: tuple[str, ...]) -> Any:
    low = {str(k).lower(): v for k, v in item.items()}
    for key in keys:
        if key in low and low[key] is not None:
            return low[key]
    return None


def _is_report(item: Any) -> bool:
    return isinstance(item, dict) and "status" in item


_build_report = builder(DeliveryReport)
_DELIVERED, _FAILED = Status.DELIVERED, Status.FAILED  # read per report: module globals, not the enum's class


def _reports(items: list[dict[str, Any]]) -> list[DeliveryReport]:
    """The DeliveryReport of each status report item (a push carries up to 250)."""
    reports = []
    for index, item in enumerate(items):
        fields = wire.report_fields(item)  # the usual shape, read as WIRE.read would
        if fields is None:
            try:
                report = wire.WIRE.read(item, wire.StatusReport)
            except ValueError as exc:
                raise ValidationError(f"guodu status report [{index}] cannot be read: {exc}", field="body") from None
            fields = (report.msg_id, report.mobile, report.status, report.msg, report.report_time)
        msg_id, mobile, status, msg, report_time = fields
        delivered = status == "0" or int(status) == 0
        reports.append(_build_report(NAME, msg_id, mobile, _DELIVERED if delivered else _FAILED, status, msg,
                                     report_time, None, item))
    return reports


def _inbound(item: dict[str, Any]) -> InboundMessage | None:
    phone, content = _pick(item, _PHONE_KEYS), _pick(item, _CONTENT_KEYS)
    if phone in (None, "") or content is None:
        return None
    received, service = _pick(item, _TIME_KEYS), _pick(item, _SERVICE_KEYS)
    return InboundMessage(provider=NAME, phone=str(phone), content=str(content),
                          received_at=None if received is None else str(received),
                          service_code=None if service in (None, "") else str(service), raw=item)


def _decode_json(body: bytes, text: str) -> tuple[Any, bool]:
    """The body's JSON, and whether it holds only JSON's own values (no NaN or infinity:
    :func:`smsgate.wire.load_json_native`). Read by orjson from the bytes where it reads what the
    standard parser reads from ``text``, the body decoded (:func:`smsgate.wire.load_json_utf8`)."""
    # the document prints its example with a trailing ";" — tolerate one
    data = body.strip()
    if data.endswith(b";"):
        data = data[:-1].rstrip()
    fast = load_json_utf8(data)
    if fast is not None:
        return fast
    stripped = text.strip()
    if stripped.endswith(";"):
        stripped = stripped[:-1].rstrip()
    return load_json_native(stripped)


def _describe_keys(data: Any) -> list[str]:
    if isinstance(data, list):
        data = next((d for d in data if isinstance(d, dict)), {})
    return sorted(mask_phones_in(str(k))[:40] for k in data)[:20] if isinstance(data, dict) else []


def _answer() -> HttpResponse:
    # the document names no answer; a plain 200 tells the vendor the push arrived
    return HttpResponse(status=200, headers={"Content-Type": "text/plain;charset=UTF-8"}, body=b"ok")


@hookimpl
def parse_callback(ctx: Any, request: Any) -> CallbackResult:
    """A JSON array of status reports -> DeliveryReports. Anything else is logged and answered 200:
    items with a phone and a content field become InboundMessages (JSON or form-encoded); a body
    that is neither becomes one InboundMessage with an empty phone whose ``raw`` holds the body
    unchanged (:func:`is_unrecognised`, :func:`push_body`)."""
    log = _log()
    body: bytes = request.body or b""
    text = body.decode("utf-8-sig", errors="replace")
    content_type = request.header("Content-Type")
    data: Any = None
    native = False
    if text.strip():
        try:
            data, native = _decode_json(body, text)
        except ValueError:
            data = None
    elif request.query:
        text = request.query
    if data is None and not text.strip():
        raise ValidationError("guodu push has an empty body", field="body")

    items = data if isinstance(data, list) else [data] if isinstance(data, dict) else None
    if items is not None and len(items) > MAX_PUSH_ITEMS:  # refused before any item is read
        raise PushTooLarge(f"guodu push of {len(items)} items; the document allows at most {MAX_PUSH_ITEMS}")
    if items is not None and items and all(_is_report(i) for i in items):
        reports = _reports(items)
        log.info("smsgate.guodu.push.reports", reports=len(reports),
                 phones=[mask_phone(r.phone or "") for r in reports[:10]])
        # every report field is text or None, and each raw is an item of the parsed body
        return CallbackResult(events=reports, response=_answer(), json_native=native)
    if items is not None and not items:
        return CallbackResult(events=(), response=_answer())
    if items is not None and any(_is_report(i) for i in items):
        raise ValidationError("guodu push mixes status reports with other items", field="body")

    if items is None and data is None:  # not JSON: perhaps a form-encoded inbound message
        pairs = parse_qsl(text.strip(), keep_blank_values=True, encoding="utf-8", errors="replace")
        items = [dict(pairs)] if pairs and all(k for k, _ in pairs) else None
    parsed = [_inbound(i) for i in items if isinstance(i, dict)] if items else []
    inbound = [m for m in parsed if m is not None]
    if items and inbound and len(inbound) == len(parsed):
        log.info("smsgate.guodu.push.inbound", messages=len(inbound),
                 phones=[mask_phone(m.phone) for m in inbound[:10]], keys=_describe_keys(items))
        return CallbackResult(events=inbound, response=_answer())

    # Keep the push whole as an InboundMessage with no phone: the core stores and dispatches only
    # reports, inbound messages and task summaries, and this body must not be lost.
    import base64

    reason = "not a report array and no phone/content fields found"
    log.warning("smsgate.guodu.push.unrecognised", bytes=len(body), content_type=content_type,
                keys=_describe_keys(data if data is not None else items or []),
                preview=mask_phones_in(text[:120]), reason=reason)
    event = InboundMessage(provider=NAME, phone="", content=text, raw={
        UNRECOGNISED: True, "reason": reason, "content_type": content_type,
        "path": redact_path(ctx.config, request.path),
        "query": request.query, "body_base64": base64.b64encode(body).decode("ascii")})
    return CallbackResult(events=[event], response=_answer())
