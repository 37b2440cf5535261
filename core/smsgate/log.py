"""Logging helpers. smsgate logs through structlog and never configures it: applications do."""

from __future__ import annotations

from typing import Any


def get_logger(name: str) -> Any:
    import structlog

    return structlog.get_logger(name)
