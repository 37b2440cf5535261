"""smsgate provider for the (made-up) Acme SMS API.

Acme's API, in full:
  POST /v1/sms  JSON {"account", "phones": [..] (<= 50), "text"}
  headers X-Acme-Time (unix s), X-Acme-Sign = hex sha256(password + time + body)
  answer  {"status": "ok", "batch": "<id>", "bad": ["phone", ...]}
       or {"status": "error", "code": "AUTH" | "FUNDS" | "INPUT", "detail": "..."}
"""

from __future__ import annotations

import json

import attrs

from smsgate import (AuthError, HookContext, HttpRequest, HttpResponse, InsufficientBalance, Message, Operation,
                     ProviderConfig, ProviderError, Reason, SendReply, WireError, hookimpl, secret)

from .dialect import acme_signature
from .wire import WIRE, AcmeAnswer


@attrs.frozen(kw_only=True)
class AcmeConfig(ProviderConfig):
    base_url: str = "https://api.acme.example"
    account: str
    password: str = secret()


@hookimpl
def build_request(ctx: HookContext, operation: Operation, payload: Message) -> HttpRequest:
    body = {"account": ctx.config.account, "phones": list(payload.to), "text": payload.text}
    return HttpRequest(url=ctx.url("/v1/sms"), headers={"Content-Type": "application/json"},
                       body=json.dumps(body, ensure_ascii=False).encode())


@hookimpl
def sign(ctx: HookContext, operation: Operation, request: HttpRequest) -> HttpRequest:
    ts = str(ctx.timestamp())
    return request.with_headers({"X-Acme-Time": ts, "X-Acme-Sign": acme_signature(ctx.config.password, ts,
                                                                                   request.body)})


@hookimpl
def parse_response(ctx: HookContext, operation: Operation, request: HttpRequest,
                   response: HttpResponse) -> SendReply:
    try:
        answer = WIRE.read(response.json(), AcmeAnswer)
    except (ValueError, WireError) as exc:  # unreadable: it may still have been taken
        raise ProviderError(f"Acme answer (HTTP {response.status}) cannot be read: {exc}", not_sent=False)
    if answer.status == "ok":
        bad = {p: Reason(code="BAD_NUMBER", message="Acme refused this number") for p in answer.bad}
        return SendReply(message_id=answer.batch, rejected=bad)
    code, detail = answer.code, answer.detail
    if code == "AUTH":
        raise AuthError(f"Acme refused the credentials: {detail}", code=code, vendor_message=detail)
    if code == "FUNDS":
        raise InsufficientBalance(f"Acme account is out of credit: {detail}", code=code, vendor_message=detail)
    # INPUT means Acme checked and refused before queueing; anything else we cannot be sure of
    raise ProviderError(f"Acme error {code}: {detail}", code=code, vendor_message=detail,
                        not_sent=(code == "INPUT"))
