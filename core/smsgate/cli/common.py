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


def gateway(args: argparse.Namespace) -> Any:
    from ..sending.gateway import Gateway

    return Gateway(args.config)
