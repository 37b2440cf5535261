"""Commands that talk to a vendor: ``send``, ``reports``, ``inbound``, ``balance``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .common import EXIT_FAILED, EXIT_OK, gateway as _gateway, print_json as _print_json


def add_commands(sub: Any) -> None:
    p = sub.add_parser("send", help="send one message")
    p.add_argument("--config", help="TOML config file (default: $SMSGATE_CONFIG)")
    p.add_argument("--provider", help="provider name (a [providers.NAME] table)")
    p.add_argument("--to", required=True, help="comma-separated phone numbers")
    content = p.add_mutually_exclusive_group(required=True)
    content.add_argument("--template", help="template id")
    content.add_argument("--content", help="free text")
    p.add_argument("--params", help="template params: JSON array (positional) or object (named)")
    p.add_argument("--sign-name", help="signature name (签名)")
    p.add_argument("--extend-code", help="extension code")
    p.add_argument("--biz-id", help="your business id for this send")
    p.add_argument("--at", help='send time, "YYYY-MM-DD HH:MM:SS" China time')
    p.add_argument("--key", help="idempotency key: sent again, the recorded result is printed and nothing is "
                                 "resent (needs a [ledger] in the config)")
    p.add_argument("--limit-scope", help="per-phone quota to count in: a [templates.NAME] table "
                                         "(default: the template id's, else [limits] per_phone)")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    for name, help_text in (("reports", "pull delivery reports once and print them (the vendor hands each out "
                                        "once: they do not reach the spool, `smsgate poll` feeds it; "
                                        "they are matched to the send ledger, if any)"),
                            ("inbound", "pull inbound SMS once and print them (not stored; see `smsgate poll`)"),
                            ("balance", "query the account balance")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", help="TOML config file (default: $SMSGATE_CONFIG)")
        p.add_argument("--provider", help="provider name")
        p.add_argument("--json", action="store_true", help="print JSON")
        if name == "reports":
            p.add_argument("--message-ids", help="comma-separated message ids to ask about (vendors that need them)")



def _parse_params(text: str | None) -> Any:
    from ..errors import ValidationError

    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"--params is not valid JSON: {exc}", field="params") from None
    if not isinstance(value, (list, dict)):
        raise ValidationError("--params must be a JSON array (positional) or object (named)", field="params")
    return value


def _parse_at(text: str | None) -> Any:
    import datetime as dt

    from ..errors import ValidationError
    from ..models import CHINA_TZ

    if text is None:
        return None
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA_TZ)
    except ValueError:
        raise ValidationError(f'--at must look like "YYYY-MM-DD HH:MM:SS", got {text!r}', field="at") from None


def cmd_send(args: argparse.Namespace) -> int:
    from ..errors import ValidationError
    from ..models import Message

    if args.params is not None and args.template is None:
        raise ValidationError("--params goes with --template", field="params")
    to = [p for p in (args.to or "").split(",") if p.strip()]
    message = Message(to=to, template_id=args.template, params=_parse_params(args.params), text=args.content,
                      sign_name=args.sign_name, extend_code=args.extend_code, biz_id=args.biz_id,
                      send_at=_parse_at(args.at), key=args.key)
    gw = _gateway(args)
    result = gw.send(message, provider=args.provider, limit_scope=args.limit_scope)
    if args.json:
        _print_json(result.to_json_dict())
    else:
        for r in result.recipients:
            extra = r.message_id or (str(r.reason) if r.reason else "")
            print(f"{r.phone}\t{r.outcome.value}\t{extra}")
        if result.segments:
            print(f"segments per recipient: {result.segments}")
    if result.replayed:
        print(f"smsgate: key {result.key!r} was sent before: its recorded result, nothing sent again",
              file=sys.stderr)
    return EXIT_OK if result.ok else EXIT_FAILED


def _event_row(event: Any) -> dict[str, Any]:
    from ..models import to_jsonable

    return to_jsonable(event)


def cmd_pull(args: argparse.Namespace) -> int:
    from ..models import PullQuery

    gw = _gateway(args)
    if args.command == "reports":
        ids = tuple(i for i in (args.message_ids or "").split(",") if i)
        events = gw.pull_reports(args.provider, PullQuery(message_ids=ids))
        gw.match_reports(events)  # the vendor hands each report out once: the ledger sees it now or never
    else:
        events = gw.pull_inbound(args.provider)
    rows = [_event_row(e) for e in events]
    if args.json:
        _print_json(rows)
    else:
        for e in events:
            if args.command == "reports":
                print(f"{e.message_id}\t{e.phone}\t{e.status.value}\t{e.raw_status or ''}\t{e.description or ''}")
            else:
                print(f"{e.phone}\t{e.received_at or ''}\t{e.content}")
        print(f"{len(events)} {args.command}", file=sys.stderr)
    return EXIT_OK


def cmd_balance(args: argparse.Namespace) -> int:
    gw = _gateway(args)
    balance = gw.balance(args.provider)
    if args.json:
        _print_json({"provider": balance.provider, "amount": balance.amount, "unit": balance.unit})
    else:
        print(f"{balance.provider}\t{balance.amount}\t{balance.unit}")
    return EXIT_OK


COMMANDS = {"send": cmd_send, "reports": cmd_pull, "inbound": cmd_pull, "balance": cmd_balance}
