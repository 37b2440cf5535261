"""The ``smsgate`` command. It uses only the public embedding API (``Gateway``).

Exit codes: 0 every recipient accepted (or the command succeeded); 1 some recipient rejected or
unknown, or a vendor call failed; 2 bad usage, config or input — one line on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(EXIT_USAGE, f"smsgate: error: {message}\n")


def _configure_logging(verbose: int) -> None:
    """The CLI is an application, so it (and only it) configures structlog: to stderr."""
    import logging

    import structlog

    level = logging.WARNING if verbose == 0 else (logging.INFO if verbose == 1 else logging.DEBUG)
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="%Y-%m-%d %H:%M:%S", utc=False),
            structlog.dev.ConsoleRenderer(colors=False),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *args: _StderrLogger(),
        cache_logger_on_first_use=False,
    )


class _StderrLogger:
    """Writes each rendered line to the *current* sys.stderr (which tests and wrappers may swap)."""

    def _write(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    msg = log = debug = info = warn = warning = err = error = critical = exception = fatal = failure = _write


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="smsgate", description="Send SMS through Chinese SMS vendors.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (to stderr)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("providers", help="list installed providers and broken plugins")
    p.add_argument("--json", action="store_true", help="print a JSON list")

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
    p.add_argument("--json", action="store_true", help="print one JSON object")

    for name, help_text in (("reports", "pull delivery reports once and print them (the vendor hands each out "
                                        "once: they do not reach the spool; `smsgate poll` feeds it)"),
                            ("inbound", "pull inbound SMS once and print them (not stored; see `smsgate poll`)"),
                            ("balance", "query the account balance")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--config", help="TOML config file (default: $SMSGATE_CONFIG)")
        p.add_argument("--provider", help="provider name")
        p.add_argument("--json", action="store_true", help="print JSON")
        if name == "reports":
            p.add_argument("--message-ids", help="comma-separated message ids to ask about (vendors that need them)")

    p = sub.add_parser("demo", help="run every installed provider against its simulator")
    p.add_argument("--json", action="store_true", help="print JSON rows")

    from . import cli_extra

    cli_extra.add_commands(sub)
    return parser


def _print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def _gateway(args: argparse.Namespace) -> Any:
    from .gateway import Gateway

    return Gateway(args.config)


def _parse_params(text: str | None) -> Any:
    from .errors import ValidationError

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

    from .errors import ValidationError
    from .models import CHINA_TZ

    if text is None:
        return None
    try:
        return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=CHINA_TZ)
    except ValueError:
        raise ValidationError(f'--at must look like "YYYY-MM-DD HH:MM:SS", got {text!r}', field="at") from None


def cmd_send(args: argparse.Namespace) -> int:
    from .errors import ValidationError
    from .models import Message

    if args.params is not None and args.template is None:
        raise ValidationError("--params goes with --template", field="params")
    to = [p for p in (args.to or "").split(",") if p.strip()]
    message = Message(to=to, template_id=args.template, params=_parse_params(args.params), text=args.content,
                      sign_name=args.sign_name, extend_code=args.extend_code, biz_id=args.biz_id,
                      send_at=_parse_at(args.at))
    gw = _gateway(args)
    result = gw.send(message, provider=args.provider)
    if args.json:
        _print_json(result.to_json_dict())
    else:
        for r in result.recipients:
            extra = r.message_id or (str(r.reason) if r.reason else "")
            print(f"{r.phone}\t{r.outcome.value}\t{extra}")
        if result.segments:
            print(f"segments per recipient: {result.segments}")
    return EXIT_OK if result.ok else EXIT_FAILED


def _event_row(event: Any) -> dict[str, Any]:
    from .models import to_jsonable

    return to_jsonable(event)


def cmd_pull(args: argparse.Namespace) -> int:
    from .models import PullQuery

    gw = _gateway(args)
    if args.command == "reports":
        ids = tuple(i for i in (args.message_ids or "").split(",") if i)
        events = gw.pull_reports(args.provider, PullQuery(message_ids=ids))
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


def cmd_providers(args: argparse.Namespace) -> int:
    from .plugins import PluginManager

    pm = PluginManager()
    rows = []
    for name in pm.names():
        entry = pm.providers[name]
        rows.append({"name": name, "distribution": entry.distribution, "version": entry.version,
                     "status": "ok", "description": entry.spec.description,
                     "capabilities": entry.spec.capabilities.to_json_dict()})
    for broken in pm.broken:
        rows.append({"name": broken.name, "distribution": broken.distribution, "version": None,
                     "status": "broken", "error": broken.error})
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            if row["status"] == "broken":
                print(f"{row['name']}\tBROKEN\t{row['distribution'] or '-'}\t{row['error']}")
            else:
                caps = row["capabilities"]
                print(f"{row['name']}\t{row['distribution'] or '-'} {row['version'] or ''}\t"
                      f"{','.join(caps['operations'])}\tmax/request={caps['max_recipients'].get('send', '-')}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import print_table, run_demo

    rows = run_demo()
    if args.json:
        _print_json(rows)
    else:
        print_table(rows)
    return EXIT_OK if rows and all(r.get("ok") for r in rows) else EXIT_FAILED


COMMANDS = {"send": cmd_send, "reports": cmd_pull, "inbound": cmd_pull, "balance": cmd_balance,
            "providers": cmd_providers, "demo": cmd_demo}


def main(argv: Sequence[str] | None = None) -> int:
    from .errors import ConfigError, ProviderError, SmsError, TransportError, ValidationError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    _configure_logging(args.verbose)
    from . import cli_extra

    handler = COMMANDS.get(args.command) or cli_extra.COMMANDS[args.command]
    try:
        return handler(args)
    except (ConfigError, ValidationError) as exc:
        print(f"smsgate: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ProviderError, TransportError) as exc:
        print(f"smsgate: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except SmsError as exc:
        print(f"smsgate: error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("smsgate: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug: still one line for the user, detail with -vv
        if args.verbose >= 2:
            raise
        print(f"smsgate: internal error: {type(exc).__name__}: {exc} (run with -vv for details)", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
