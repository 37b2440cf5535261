"""Logging: the library logs, the application configures.

Every event goes through the standard :mod:`logging` module under a logger named ``smsgate.<part>``
(``smsgate.pipeline``, ``smsgate.transport``, ``smsgate.callbacks`` ...). A ``NullHandler`` on the
``smsgate`` logger keeps the library silent until the application configures logging (without it
Python's last-resort handler would print warnings to stderr). Nothing is ever printed to stdout.

Events have a dotted name and structured fields: the record's message reads
``smsgate.send.accepted provider=juse recipients=2 ...``, and the fields are kept on the record as
``record.event`` and ``record.fields`` (and as plain attributes where they do not collide with a
``LogRecord`` attribute, so JSON formatters and structlog's ``ExtraAdder`` pick them up).

An application that configured structlog (``structlog.configure(...)``) gets structlog events
instead, with the same names and fields, through its own processors.

Callers never pass a secret or a full phone number: phones go through :func:`smsgate.mask_phone`,
URLs through :func:`safe_url`.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = ["Logger", "capture_logs", "get_logger", "render_fields", "safe_url", "strip_userinfo", "use_stdlib_only"]

logging.getLogger("smsgate").addHandler(logging.NullHandler())

# LogRecord's own attributes: a field of the same name is kept only in ``record.fields``.
_RESERVED = frozenset(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime"}


_stdlib_only = False  # set by an application that wants stdlib logging whatever structlog's state (the CLI)
_captures: list[list[dict[str, Any]]] = []  # smsgate.testing.capture_logs(): every event, every level


def _structlog_configured() -> bool:
    if _stdlib_only:
        return False
    structlog = sys.modules.get("structlog")  # never imported: certainly not configured
    return structlog is not None and bool(structlog.is_configured())


#: (structlog filtering wrapper class, level) -> whether it lets the level through
_filtering: dict[tuple[Any, int], bool] = {}
#: structlog's configuration object (what ``is_configured()`` and ``get_config()`` read; configure
#: and reset_defaults change it in place), once structlog is imported
_structlog_config: Any = None


def _find_structlog_config() -> Any:
    global _structlog_config
    _structlog_config = getattr(sys.modules.get("structlog._config"), "_CONFIG", None)
    return _structlog_config


def _structlog_enabled(structlog: Any, level: int) -> bool:
    """Whether the app's structlog wrapper lets ``level`` through (its filtering bound loggers
    say so; any other wrapper class is assumed to)."""
    # asked twice per request: the wrapper class read from structlog's config object rather than
    # through get_config(), which builds a dict of the whole config on every call
    config = getattr(sys.modules.get("structlog._config"), "_CONFIG", None)
    wrapper = getattr(config, "default_wrapper_class", None)
    if wrapper is None:
        wrapper = structlog.get_config().get("wrapper_class")
    known = _filtering.get((wrapper, level))
    if known is not None:
        return known
    check = getattr(wrapper, "is_enabled_for", None)
    if check is None:
        return True
    try:
        enabled = bool(check(None, level))
    except Exception:  # another wrapper's method of that name: do not guess
        return True
    if getattr(wrapper, "__module__", None) == "structlog._native":
        # make_filtering_bound_logger's classes: one fixed minimum level each, so the answer keeps
        _filtering[(wrapper, level)] = enabled
    return enabled


def use_stdlib_only() -> None:
    """Send events to stdlib logging even when structlog is configured (the CLI's choice)."""
    global _stdlib_only
    _stdlib_only = True


def render_fields(fields: Mapping[str, Any]) -> str:
    """``key=value`` pairs, in the order given, skipping None."""
    parts = []
    for key, value in fields.items():
        if value is None:
            continue
        text = value if isinstance(value, str) else repr(value)
        if isinstance(value, str) and (not value or any(c in value for c in " \t\n\"=")):
            text = repr(value)
        parts.append(f"{key}={text}")
    return " ".join(parts)


class Logger:
    """A named event logger: ``log.info("smsgate.send.accepted", provider="juse", recipients=2)``."""

    __slots__ = ("name", "_stdlib")

    def __init__(self, name: str):
        self.name = name
        self._stdlib = logging.getLogger(name)

    def _log(self, level: int, event: str, fields: dict[str, Any]) -> None:
        if not self.is_enabled(level):  # nothing would take it: no work on its fields
            return
        for key, value in fields.items():  # a URL's user:password@ never reaches a log line
            if isinstance(value, str) and "@" in value:
                fields[key] = strip_userinfo(value)
        for entries in _captures:
            entries.append({"event": event, "log_level": logging.getLevelName(level).lower(), "logger": self.name,
                            **fields})
        if _structlog_configured():
            import structlog

            structlog.get_logger(self.name).log(level, event, **fields)
            return
        logger = self._stdlib
        extra: dict[str, Any] = {k: v for k, v in fields.items() if k not in _RESERVED}
        extra["event"] = event
        extra["fields"] = fields
        rendered = render_fields(fields)
        logger.log(level, f"{event} {rendered}" if rendered else event, extra=extra, stacklevel=3)

    def debug(self, event: str, **fields: Any) -> None:
        self._log(logging.DEBUG, event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._log(logging.INFO, event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._log(logging.WARNING, event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._log(logging.ERROR, event, fields)

    def is_enabled(self, level: int) -> bool:
        """True when an event at ``level`` would go anywhere (skip building costly fields otherwise)."""
        if _captures:
            return True
        if not _stdlib_only:  # (what _structlog_configured says, inline: asked twice per request)
            config = _structlog_config or _find_structlog_config()
            if config is not None:  # structlog's own state, read without a call into structlog
                if config.is_configured:
                    known = _filtering.get((config.default_wrapper_class, level))
                    return known if known is not None else _structlog_enabled(sys.modules["structlog"], level)
            else:
                structlog = sys.modules.get("structlog")
                if structlog is not None and structlog.is_configured():
                    return _structlog_enabled(structlog, level)
        return self._stdlib.isEnabledFor(level)


def get_logger(name: str) -> Logger:
    return Logger(name)


_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")


def safe_url(url: str, keep_query: bool = False) -> str:
    """``url`` without user name and password, and (unless ``keep_query``) without its query
    string, which some vendors use for credentials. Works on text that merely contains URLs too."""
    from urllib.parse import urlsplit, urlunsplit  # here: `smsgate providers` never needs it (start-up)

    try:
        parts = urlsplit(url)
    except ValueError:
        return _USERINFO.sub("", url)
    if not parts.scheme or not parts.netloc:
        return _USERINFO.sub("", url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query if keep_query else "", ""))


def strip_userinfo(text: str) -> str:
    """Every ``scheme://user:password@`` in ``text`` without its ``user:password@``."""
    return _USERINFO.sub("", text)


@contextlib.contextmanager
def capture_logs() -> Iterator[list[dict[str, Any]]]:
    """Collect every smsgate event (all levels, whatever logging is configured) as dicts shaped
    like structlog's: ``{"event": ..., "log_level": "info", "logger": ..., **fields}``."""
    entries: list[dict[str, Any]] = []
    _captures.append(entries)
    try:
        yield entries
    finally:
        _captures.remove(entries)
