"""The built-in ``loopback`` provider: a vendor that exists only on this machine.

* With the default ``base_url = "memory://loopback"`` nothing leaves the process: every message is
  recorded in :data:`outbox` (like Django's locmem e-mail backend), so an application's tests can
  assert on what it sent.
* With ``base_url`` pointing at a :class:`smsgate.testing.LoopbackSimulator`, the same requests go
  over real HTTP, signed, through the whole pipeline (the demo and the benchmarks do this).

Its dialect is small on purpose; it doubles as the worked example of a provider plugin.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import itertools
import json
import threading
from typing import TYPE_CHECKING, Any

import attrs

from smsgate.config import ProviderConfig, secret
from smsgate.default_plugins import LOOPBACK
from smsgate.errors import AuthError, ProviderError, RateLimited, ValidationError
from smsgate.hookspecs import hookimpl
from smsgate.models import (
    HttpRequest,
    HttpResponse,
    Operation,
    Reason,
    SendReply,
    Status,
)
from smsgate.wire import json_bytes

# the values of reports, pushes and the balance are imported by the hooks that make them, so that
# loading the provider for a send does not build their classes
if TYPE_CHECKING:
    from smsgate.reporting import Balance, CallbackResult, DeliveryReport

NAME = LOOPBACK.name
MEMORY_URL = "memory://loopback"


@attrs.frozen(kw_only=True)
class LoopbackConfig(ProviderConfig):
    base_url: str = MEMORY_URL
    api_key: str = "loopback"
    api_secret: str = secret(default="loopback-secret")
    #: phones this fake vendor refuses, to exercise rejection paths in an app's tests
    reject_numbers: list[str] = attrs.field(factory=list)


CAPABILITIES = LOOPBACK.capabilities

# an enum member read through its class costs about ten times a module global: read per request
_SEND_BATCH = Operation.SEND_BATCH
_SENDS = (Operation.SEND, _SEND_BATCH)


@functools.lru_cache(maxsize=32)
def _keyed(secret_value: str) -> tuple["hashlib._Hash", "hashlib._Hash"]:
    """HMAC-SHA256's inner and outer hashes with the key already absorbed (RFC 2104), made once per
    secret: setting up an HMAC costs more than hashing a request body."""
    key = secret_value.encode()
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = key.ljust(64, b"\0")
    return hashlib.sha256(key.translate(hmac.trans_36)), hashlib.sha256(key.translate(hmac.trans_5C))


def signature(secret_value: str, timestamp: str, nonce: str, body: bytes) -> str:
    """hex HMAC-SHA256 over ``timestamp \\n nonce \\n body``."""
    inner, outer = _keyed(secret_value)
    inner, outer = inner.copy(), outer.copy()
    inner.update(f"{timestamp}\n{nonce}\n".encode() + body)
    outer.update(inner.digest())
    return outer.hexdigest()



def _params(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@hookimpl
def build_request(ctx: Any, operation: Operation, payload: Any) -> HttpRequest:
    cfg = ctx.config
    if operation in _SENDS:
        msg = payload
        body: dict[str, Any] = {
            "phones": list(msg.to),
            "sign": msg.sign_name,
            "extend": msg.extend_code,
            "bizId": msg.biz_id,
            "sendAt": msg.send_at_china().strftime("%Y-%m-%d %H:%M:%S") if msg.send_at else None,
        }
        if msg.template_id is not None:
            body["template"] = msg.template_id
        if operation is _SEND_BATCH:
            body["personal"] = {p: _params(v) for p, v in msg.personal.items()}
            path = "/sendBatch"
        else:
            body["params"] = _params(msg.params)
            body["text"] = msg.text
            path = "/send"
    elif operation is Operation.PULL_REPORTS:
        body, path = {"msgIds": list(payload.message_ids) if payload else []}, "/reports"
    elif operation is Operation.BALANCE:
        body, path = {}, "/balance"
    else:
        return None  # type: ignore[return-value]
    return HttpRequest(url=ctx.url(path), headers=(("Content-Type", "application/json"), ("X-Api-Key", cfg.api_key)),
                       body=json_bytes(body))


@hookimpl
def sign(ctx: Any, operation: Operation, request: HttpRequest) -> HttpRequest:
    ts, nonce = str(ctx.timestamp()), ctx.nonce()
    return request.with_headers({
        "X-Timestamp": ts,
        "X-Nonce": nonce,
        "X-Signature": signature(ctx.config.api_secret, ts, nonce, request.body),
    })


@hookimpl
def transmit(ctx: Any, request: HttpRequest) -> HttpResponse | None:
    if not str(ctx.config.base_url).startswith("memory:"):
        return None  # over HTTP, through the core transport
    return memory_backend(ctx.config).handle(request.method, request.path, dict(request.headers), request.body)


def _error(data: dict[str, Any], status: int) -> ProviderError:
    code, msg = str(data.get("code")), str(data.get("message", ""))
    kwargs: dict[str, Any] = {"code": code, "vendor_message": msg, "request_id": data.get("requestId"),
                              "provider": NAME}
    if code == "AUTH":
        return AuthError(f"loopback refused the credentials: {msg}", **kwargs)
    if code == "RATE":
        return RateLimited(f"loopback: too many calls: {msg}", **kwargs)
    if code == "INVALID":
        return ProviderError(f"loopback refused the request: {msg}", not_sent=True, **kwargs)
    return ProviderError(f"loopback error (HTTP {status}): {msg}", not_sent=False, **kwargs)


@hookimpl
def parse_response(ctx: Any, operation: Operation, request: HttpRequest, response: HttpResponse) -> Any:
    try:
        return _parse_response(operation, response)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # an answer of another shape
        raise ProviderError(f"loopback answered HTTP {response.status} with an answer that cannot be read "
                            f"({type(exc).__name__})", not_sent=False, code=f"HTTP{response.status}",
                            provider=NAME) from None


def _parse_response(operation: Operation, response: HttpResponse) -> Any:
    try:
        data = response.json()
    except ValueError:  # not JSON (or not UTF-8): the request may still have been taken
        data = None
    if not isinstance(data, dict) or "code" not in data:
        raise ProviderError(f"loopback answered HTTP {response.status} without a code", not_sent=False,
                            code=f"HTTP{response.status}", provider=NAME)
    if data["code"] != "OK":
        raise _error(data, response.status)
    if operation in _SENDS:
        refused = data.get("rejected")
        rejected = {p: Reason(code="REJECTED", message=r) for p, r in refused.items()} if refused else {}
        return SendReply(message_id=data["msgId"], request_id=data.get("requestId"), message_ids={},
                         rejected=rejected)
    if operation is Operation.PULL_REPORTS:
        return [_report(item) for item in data.get("reports", [])]
    if operation is Operation.BALANCE:
        from smsgate.reporting import Balance

        return Balance(provider=NAME, amount=data.get("balance"), unit="messages", raw=data)
    return None


def _report(item: dict[str, Any]) -> DeliveryReport:
    from smsgate.reporting import DeliveryReport

    status = {"DELIVERED": Status.DELIVERED, "FAILED": Status.FAILED, "PENDING": Status.PENDING}
    return DeliveryReport(provider=NAME, message_id=item.get("msgId"), phone=item.get("phone"),
                          status=status.get(str(item.get("status")), Status.UNKNOWN), raw_status=item.get("status"),
                          description=item.get("reason"), reported_at=item.get("time"), raw=item)


@hookimpl
def verify_callback(ctx: Any, request: Any) -> bool:
    ts, nonce, sig = (request.header("X-Timestamp"), request.header("X-Nonce"), request.header("X-Signature"))
    if not (ts and nonce and sig):
        return False
    try:
        if abs(ctx.now() - int(ts)) > 900:
            return False
    except ValueError:
        return False
    expected = signature(ctx.config.api_secret, ts, nonce, request.body)
    if not hmac.compare_digest(expected, sig):
        return False
    store = ctx.extras.get("replay_store")
    if store is not None and not store.add(f"{ctx.provider}:{nonce}", ttl=900):
        return False
    return True


@hookimpl
def parse_callback(ctx: Any, request: Any) -> CallbackResult:
    try:
        data = request.json()
        reports = [_report(item) for item in data["reports"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValidationError(f"loopback push is malformed: {type(exc).__name__}", field="body") from None
    from smsgate.reporting import CallbackResult

    return CallbackResult(events=reports, response=HttpResponse.of_json({"code": "OK"}))


# -- the fake vendor itself, shared by memory:// and the HTTP simulator -----------------------------

@attrs.frozen(kw_only=True)
class OutboxRecord:
    """One SMS the loopback vendor accepted."""

    message_id: str
    phone: str
    template_id: str | None
    params: Any
    text: str | None
    sign_name: str | None
    extend_code: str | None
    biz_id: str | None
    send_at: str | None


#: every message accepted by a ``memory://`` loopback provider in this process
outbox: list[OutboxRecord] = []


class LoopbackBackend:
    """The loopback vendor: checks key and signature, records messages, keeps reports."""

    def __init__(self, api_key: str = "loopback", api_secret: str = "loopback-secret",
                 reject_numbers: Any = (), records: list[OutboxRecord] | None = None, balance: int = 1_000_000):
        self.api_key = api_key
        self.api_secret = api_secret
        self.reject_numbers = set(reject_numbers)
        self.records = outbox if records is None else records
        self.pending_reports: list[dict[str, Any]] = []
        self.balance = balance
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def _answer(self, status: int, **fields: Any) -> HttpResponse:
        return HttpResponse.of_json(fields, status=status)

    def handle(self, method: str, path: str, headers: dict[str, str], body: bytes) -> HttpResponse:
        low = {k.lower(): v for k, v in headers.items()}
        request_id = f"lb-{next(self._ids)}"
        if low.get("x-api-key") != self.api_key:
            return self._answer(401, code="AUTH", message="unknown api key", requestId=request_id)
        expected = signature(self.api_secret, low.get("x-timestamp", ""), low.get("x-nonce", ""), body)
        if not hmac.compare_digest(expected, low.get("x-signature", "")):
            return self._answer(401, code="AUTH", message="bad signature", requestId=request_id)
        try:
            data = json.loads(body.decode("utf-8"))
        except ValueError:
            return self._answer(400, code="INVALID", message="body is not JSON", requestId=request_id)
        route = path.rstrip("/").rsplit("/", 1)[-1]
        if route in ("send", "sendBatch"):
            return self._send(data, route == "sendBatch", request_id)
        if route == "reports":
            with self._lock:
                reports, self.pending_reports = self.pending_reports, []
            return self._answer(200, code="OK", reports=reports, requestId=request_id)
        if route == "balance":
            return self._answer(200, code="OK", balance=self.balance, requestId=request_id)
        return self._answer(404, code="INVALID", message=f"no such path {path}", requestId=request_id)

    def _send(self, data: dict[str, Any], batch: bool, request_id: str) -> HttpResponse:
        phones = data.get("phones") or []
        if not phones:
            return self._answer(400, code="INVALID", message="phones is empty", requestId=request_id)
        if len(phones) > 100:
            return self._answer(400, code="INVALID", message="more than 100 phones", requestId=request_id)
        msg_id = f"LB{next(self._ids):08d}"
        rejected = {}
        with self._lock:
            for phone in phones:
                if phone in self.reject_numbers:
                    rejected[phone] = "number refused by loopback"
                    continue
                personal = (data.get("personal") or {}).get(phone) if batch else None
                is_text = data.get("template") is None
                self.records.append(OutboxRecord(
                    message_id=msg_id, phone=phone, template_id=data.get("template"),
                    params=None if is_text else (personal if batch else data.get("params")),
                    text=(personal if batch else data.get("text")) if is_text else None,
                    sign_name=data.get("sign"), extend_code=data.get("extend"), biz_id=data.get("bizId"),
                    send_at=data.get("sendAt"),
                ))
                self.balance -= 1
        return self._answer(200, code="OK", msgId=msg_id, rejected=rejected, requestId=request_id)

    def deliver_all(self) -> list[dict[str, Any]]:
        """Make a DELIVERED report for every recorded message not yet reported."""
        with self._lock:
            done = {(r["msgId"], r["phone"]) for r in self.pending_reports}
            new = [{"msgId": r.message_id, "phone": r.phone, "status": "DELIVERED", "time": "now"}
                   for r in self.records if (r.message_id, r.phone) not in done]
            self.pending_reports.extend(new)
            return new


_memory: dict[tuple[str, str], LoopbackBackend] = {}
_memory_lock = threading.Lock()


def memory_backend(config: LoopbackConfig) -> LoopbackBackend:
    """The in-process vendor for a ``memory://`` config (one per key pair, recording to :data:`outbox`)."""
    key = (config.api_key, config.api_secret)
    with _memory_lock:
        backend = _memory.get(key)
        if backend is None:
            backend = _memory[key] = LoopbackBackend(config.api_key, config.api_secret)
        backend.reject_numbers = set(config.reject_numbers)
        return backend


def clear_outbox() -> None:
    outbox.clear()
    with _memory_lock:
        for backend in _memory.values():
            backend.pending_reports.clear()
