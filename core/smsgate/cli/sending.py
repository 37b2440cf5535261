"""Commands that talk to a vendor: ``send``, ``reports``, ``inbound``, ``balance``, ``stats``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .common import EXIT_FAILED, EXIT_OK, gateway as _gateway, print_json as _print_json


def add_commands(sub: Any) -> None:
    p = sub.add_parser("send", help="send one message (to one or many numbers, or personalised)")
    p.add_argument("--config", help="TOML config file (default: $SMSGATE_CONFIG)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--provider", help="provider name (a [providers.NAME] table)")
    where.add_argument("--route", help="route name (a [routes.NAME] table: several providers, failover of what "
                                       "provably was not sent; default: default_route)")
    to = p.add_mutually_exclusive_group(required=True)
    to.add_argument("--to", help="phone numbers: comma-separated, @FILE (one per line) or - (stdin, one per line)")
    to.add_argument("--personal", metavar="@FILE.csv",
                    help="personalised send: CSV rows of phone, then the template params (a header row "
                         "phone,NAME,... makes them named) or, with --content -, the text")
    content = p.add_mutually_exclusive_group(required=True)
    content.add_argument("--template", help="template id, or a logical template (a [templates.NAME] table with "
                                            "one table per provider; give its params by name)")
    content.add_argument("--content", help="free text (with --personal: '-', the text comes from the CSV)")
    p.add_argument("--params", help="template params: JSON array (positional) or object (named)")
    p.add_argument("--sign-name", help="signature name (签名)")
    p.add_argument("--extend-code", help="extension code")
    p.add_argument("--biz-id", help="your business id for this send")
    p.add_argument("--at", help="send time, ISO 8601 (2030-01-01T09:00, or with an offset such as +08:00); "
                                "without an offset China time; not in the past")
    p.add_argument("--key", help="idempotency key: sent again, the recorded result is printed and nothing is "
                                 "resent (needs a [ledger] in the config)")
    p.add_argument("--limit-scope", help="per-phone quota to count in: a [templates.NAME] table "
                                         "(default: the template id's, else the route's, else [limits] per_phone)")
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
            p.add_argument("--phones", help="comma-separated phone numbers to look up (vendors whose query is "
                                            "by phone, e.g. aliyun: one phone a call)")
            p.add_argument("--since", help="earliest send time of interest, ISO 8601 (2030-01-01, "
                                           "2030-01-01T09:00; China time unless an offset is given). "
                                           "aliyun: the send date to look up (default today)")

    p = sub.add_parser("stats", help="send statistics per day over a date range (vendors with a statistics query)")
    p.add_argument("--config", help="TOML config file (default: $SMSGATE_CONFIG)")
    p.add_argument("--provider", help="provider name")
    p.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD", help="first day (China date)")
    p.add_argument("--to", dest="end", required=True, metavar="YYYY-MM-DD", help="last day, included")
    p.add_argument("--page", type=int, default=1, help="page of days (default 1)")
    p.add_argument("--page-size", type=int, default=50, help="days a page (default 50, opass's most)")
    p.add_argument("--json", action="store_true", help="print one JSON object")



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


def _china_time(text: str, option: str) -> Any:
    """ISO 8601 (``2030-01-01``, ``2030-01-01T09:00``, ``2030-01-01 09:00:00``, ``...+08:00``,
    ``...Z``) as an aware datetime; a time without an offset is China time."""
    import datetime as dt

    from ..errors import ValidationError
    from ..models import CHINA_TZ

    raw = text.strip()
    try:
        when = dt.datetime.fromisoformat(raw[:-1] + "+00:00" if raw[-1:] in "Zz" and raw else raw)
    except ValueError:
        raise ValidationError(f"--{option} must be an ISO 8601 date and time such as 2030-01-01T09:00 "
                              f"(China time unless an offset is given), not {text!r}", field=option) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=CHINA_TZ)
    return when.astimezone(CHINA_TZ)


def _parse_at(text: str | None, now: float | None = None) -> Any:
    """``--at``: see :func:`_china_time`. A time in the past is refused: a vendor would send at
    once or refuse it, neither of which is what was asked."""
    import time

    from ..errors import ValidationError

    if text is None:
        return None
    when = _china_time(text, "at")
    if when.timestamp() <= (time.time() if now is None else now):
        raise ValidationError(f"--at {text} is in the past (China time unless an offset is given)", field="at")
    return when


def _lines(spec: str, option: str) -> list[str]:
    """The lines of ``@FILE`` or of stdin (``-``), stripped, without blank ones."""
    from ..errors import ValidationError

    if spec == "-":
        text = sys.stdin.read()
    else:
        path = spec[1:]
        try:
            with open(path, encoding="utf-8-sig") as fh:
                text = fh.read()
        except OSError as exc:
            raise ValidationError(f"{option}: cannot read {path}: {exc.strerror or exc}", field="to") from None
        except UnicodeDecodeError:
            raise ValidationError(f"{option}: {path} is not UTF-8 text", field="to") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _recipients(spec: str) -> list[str]:
    """``--to``: a comma-separated list, ``@FILE`` or ``-`` (one number per line)."""
    from ..errors import ValidationError

    if spec == "-" or spec.startswith("@"):
        phones = _lines(spec, "--to")
        if not phones:
            raise ValidationError(f"--to {spec}: no phone numbers in it", field="to")
        return phones
    return [p for p in spec.split(",") if p.strip()]


def _personal(spec: str, template: bool) -> dict[str, Any]:
    """``--personal @FILE.csv``: each row a phone, then its params (templates) or its text.
    A first row whose first cell is not a phone number is a header naming the params."""
    import csv

    from ..errors import ValidationError
    from ..phones import normalise_phone

    if not spec.startswith("@") and spec != "-":
        raise ValidationError("--personal takes @FILE.csv (or - for stdin)", field="personal")
    rows = [row for row in csv.reader(_lines(spec, "--personal")) if any(c.strip() for c in row)]
    names: list[str] | None = None
    if rows and normalise_phone(rows[0][0]) is None and not rows[0][0].strip()[:1].isdigit():
        names = [c.strip() for c in rows[0][1:]]
        rows = rows[1:]
    if not rows:
        raise ValidationError(f"--personal {spec}: no rows", field="personal")
    personal: dict[str, Any] = {}
    for n, row in enumerate(rows, start=2 if names is not None else 1):
        phone, values = row[0].strip(), [c.strip() for c in row[1:]]
        if phone in personal:
            raise ValidationError(f"--personal {spec}: line {n}: {phone} appears twice", field="personal")
        if not template:
            if len(values) != 1:
                raise ValidationError(f"--personal {spec}: line {n}: give the phone and its text (quote a "
                                      "text with commas)", field="personal")
            personal[phone] = values[0]
        elif names is not None:
            if len(values) != len(names):
                raise ValidationError(f"--personal {spec}: line {n}: {len(values)} values for the "
                                      f"{len(names)} named params {', '.join(names)}", field="personal")
            personal[phone] = dict(zip(names, values))
        else:
            personal[phone] = values
    return personal


def _message(args: argparse.Namespace) -> Any:
    from ..errors import ValidationError
    from ..models import Message

    if args.params is not None and args.template is None:
        raise ValidationError("--params goes with --template", field="params")
    common = dict(sign_name=args.sign_name, extend_code=args.extend_code, biz_id=args.biz_id,
                  send_at=_parse_at(args.at), key=args.key)
    if args.personal is not None:
        if args.params is not None:
            raise ValidationError("--params does not go with --personal: the params come from the CSV",
                                  field="params")
        if args.template is None and args.content != "-":
            raise ValidationError("with --personal, give --template ID, or --content - for texts from the CSV",
                                  field="content")
        return Message.personalised(_personal(args.personal, args.template is not None), template_id=args.template,
                                    **common)
    return Message(to=_recipients(args.to), template_id=args.template, params=_parse_params(args.params),
                   text=args.content, **common)


def cmd_send(args: argparse.Namespace) -> int:
    from .progress import progress_bar

    message = _message(args)
    gw = _gateway(args)
    with progress_bar(gw, message):
        result = gw.send(message, provider=args.provider, route=args.route, limit_scope=args.limit_scope)
    if args.json:
        _print_json(result.to_json_dict())
    else:
        routed = bool(args.route) or any(r.provider or r.earlier for r in result.recipients)  # which provider took each
        for r in result.recipients:
            extra = r.message_id or (str(r.reason) if r.reason else "")
            via = f"{r.provider or result.provider}\t" if routed else ""
            print(f"{r.phone}\t{r.outcome.value}\t{via}{extra}")
        if result.segments:
            print(f"segments per recipient: {result.segments}")
    if result.replayed:
        print(f"smsgate: key {result.key!r} was sent before: its recorded result, nothing sent again",
              file=sys.stderr)
    return EXIT_OK if result.ok else EXIT_FAILED


def _event_row(event: Any) -> dict[str, Any]:
    from ..models import to_jsonable

    row: dict[str, Any] = to_jsonable(event)
    return row


def cmd_pull(args: argparse.Namespace) -> int:
    from ..models import PullQuery

    gw = _gateway(args)
    if args.command == "reports":
        ids = tuple(i for i in (args.message_ids or "").split(",") if i)
        phones: tuple[str, ...] = tuple(p.strip() for p in str(args.phones or "").split(",") if p.strip())
        since = None if args.since is None else _china_time(args.since, "since")
        events = gw.pull_reports(args.provider, PullQuery(message_ids=ids, phones=phones, since=since))
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


def cmd_stats(args: argparse.Namespace) -> int:
    from ..models import StatisticsQuery

    query = StatisticsQuery(start=args.start, end=args.end, page=args.page, page_size=args.page_size)
    stats = _gateway(args).statistics(args.provider, query)
    if args.json:
        _print_json(stats.to_json_dict())
        return EXIT_OK
    def show(n: int | None) -> str:
        return "-" if n is None else str(n)

    print("date\tsent\tdelivered\tfailed\tno_report")
    for d in stats.days:
        print(f"{d.date}\t{show(d.sent)}\t{show(d.delivered)}\t{show(d.failed)}\t{show(d.no_report)}")
    print(f"page {stats.page}: {len(stats.days)} days" + (f" of {stats.total}" if stats.total is not None else ""),
          file=sys.stderr)
    return EXIT_OK


COMMANDS = {"send": cmd_send, "reports": cmd_pull, "inbound": cmd_pull, "balance": cmd_balance, "stats": cmd_stats}
