"""Capturing smsgate's log events in tests: ``with capture_logs() as logs: ...``."""

from ..log import capture_logs

__all__ = ["capture_logs"]
