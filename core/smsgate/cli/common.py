"""What every command group shares: exit codes, JSON output, the Gateway from --config."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def port(text: str) -> int:
    """An argparse type: a TCP port number (0 picks a free one)."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, not {number}")
    return number


def gateway(args: argparse.Namespace) -> Any:
    from ..sending.gateway import Gateway

    return Gateway(args.config)
