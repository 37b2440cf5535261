"""Commands that read the send ledger: ``status KEY`` and ``ledger prune``."""

from __future__ import annotations

import argparse
import re
from typing import Any

from .common import EXIT_OK, gateway as _gateway, print_json as _print_json

_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def add_commands(sub: Any) -> None:
    p = sub.add_parser("status", help="what the send ledger recorded for a key: each recipient's outcome, "
                                      "provider, message id and delivery")
    p.add_argument("key", metavar="KEY", help="the send's key (send --key, or the key a send printed)")
    p.add_argument("--config", help="TOML config file (default: $SMSGATE_CONFIG)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--summary", action="store_true",
                   help="how many recipients per outcome and delivery status, not a line per recipient")

    p = sub.add_parser("ledger", help="maintain the send ledger")
    actions = p.add_subparsers(dest="ledger_command", metavar="ACTION", required=True)
    prune = actions.add_parser("prune", help="forget sends older than a duration (and unmatched reports)")
    prune.add_argument("--older-than", required=True, metavar="DURATION",
                       help="e.g. 30d, 12h, 90m, 2w (s, m, h, d, w)")
    prune.add_argument("--config", help="TOML config file (default: $SMSGATE_CONFIG)")


def parse_duration(text: str) -> float:
    from ..errors import ValidationError

    match = _DURATION.fullmatch(text.strip().lower())
    if not match:
        raise ValidationError(f"--older-than must look like 30d, 12h, 90m or 2w, not {text!r}", field="older_than")
    return float(match.group(1)) * _UNITS[match.group(2)]


def cmd_status(args: argparse.Namespace) -> int:
    from ..errors import ValidationError
    from ..models import Outcome
    from ..sending.ledger import SENDING

    record = _gateway(args).status(args.key)
    if record is None:
        raise ValidationError(f"the ledger has no send with key {args.key!r}", field="key")
    head = {"key": record.key, "provider": record.provider, "recipients": record.recipients,
            "segments": record.segments, "created_at": record.created_at, "in_flight": record.in_flight}
    if args.summary:  # counted from the requests: no row per recipient made (a bulk send's million)
        counts = [{"outcome": Outcome.UNKNOWN.value if outcome == SENDING else outcome, "settled": outcome != SENDING,
                   "delivery": status, "recipients": n}
                  for (outcome, status), n in sorted(record.counts().items(), key=lambda c: (-c[1], str(c[0])))]
        if args.json:
            _print_json({**head, "counts": counts})
        else:
            print(f"{record.key}\t{record.recipients} recipient(s)\t{record.provider}")
            for c in counts:
                outcome = c["outcome"] if c["settled"] else "unknown (no outcome recorded: in flight or interrupted)"
                print(f"{outcome}\t{c['delivery'] or '-'}\t{c['recipients']}")
        return EXIT_OK
    rows = [row.to_json_dict() for row in record.rows]
    if args.json:
        _print_json({**head, "rows": rows})
    else:
        for row in rows:
            delivery = row["delivery"]["status"] if row["delivery"] else "-"
            outcome = row["outcome"] if row["settled"] else "unknown (no outcome recorded: in flight or interrupted)"
            extra = row["message_id"] or (f"[{row['reason']['code']}] {row['reason']['message']}" if row["reason"]
                                          else "")
            print(f"{row['phone']}\t{outcome}\t{row['provider']}\t{extra}\t{delivery}")
    return EXIT_OK


def cmd_ledger(args: argparse.Namespace) -> int:
    import sys

    seconds = parse_duration(args.older_than)
    removed = _gateway(args).prune_ledger(seconds)
    print(f"smsgate: pruned {removed} send(s) older than {args.older_than}", file=sys.stderr)
    return EXIT_OK


COMMANDS = {"status": cmd_status, "ledger": cmd_ledger}
