"""CLI commands for receiving: ``serve`` and ``poll`` (see smsgate.callbacks and smsgate.poller)."""

from __future__ import annotations

from typing import Any

COMMANDS: dict[str, Any] = {}


def add_commands(sub: Any) -> None:
    """Add receiving commands to the ``smsgate`` parser."""
