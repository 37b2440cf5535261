"""The ``smsgate`` command. It uses only the public embedding API (``Gateway``, ``Receiver``).

One module per command group: ``sending`` (send, reports, inbound, balance, stats), ``receiving``
(serve, work, poll, spool), ``ledger`` (status, ledger prune) and ``tools`` (providers, demo).

Exit codes: 0 every recipient accepted (or the command succeeded); 1 some recipient rejected or
unknown, or a vendor call failed; 2 bad usage, config or input — one line on stderr, no traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, Sequence

from .common import EXIT_FAILED, EXIT_USAGE

GROUPS = ("tools", "sending", "receiving", "ledger")
#: each command's group (tests/test_startup.py keeps it equal to the groups' own COMMANDS): a
#: command imports its own group's module, not the others'
COMMAND_GROUPS = {"providers": "tools", "demo": "tools", "check": "tools", "simulate": "tools",
                  "send": "sending", "reports": "sending", "inbound": "sending", "balance": "sending",
                  "stats": "sending", "serve": "receiving", "work": "receiving", "poll": "receiving",
                  "spool": "receiving",
                  "status": "ledger", "ledger": "ledger"}


class _Formatter(argparse.HelpFormatter):
    """argparse's help formatter, with the terminal's width found as ``shutil.get_terminal_size``
    finds it but without importing shutil (and bz2 and lzma with it): argparse makes a formatter
    for every argument it adds, and only help text needs the width."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None):
        if width is None:
            width = _columns() - 2
        super().__init__(prog, indent_increment, max_help_position, width)


def _columns() -> int:
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
        columns = columns or 80
    return columns


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:  # one line, exit 2
        self.exit(EXIT_USAGE, f"smsgate: error: {message}\n")


def _configure_logging(verbose: int) -> Callable[[], None]:
    """The CLI is an application, so it (and only it) configures logging: smsgate's loggers to
    stderr; warnings by default, ``-v`` info, ``-vv`` debug (with the per-request trace).
    Returns what puts logging back as it was (main() may run inside another program or a test)."""
    from .. import log

    saved = (log._stdlib_only, logging.getLogger("smsgate").level, logging.getLogger("smsgate").propagate)
    log.use_stdlib_only()
    level = logging.WARNING if verbose == 0 else (logging.INFO if verbose == 1 else logging.DEBUG)
    logger = logging.getLogger("smsgate")
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s [%(levelname)-7s] %(message)s", "%Y-%m-%d %H:%M:%S"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False  # an embedding app's root handlers would print the same line twice

    def restore() -> None:
        logger.removeHandler(handler)
        log._stdlib_only, _, logger.propagate = saved
        logger.setLevel(saved[1])

    return restore


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to the *current* sys.stderr (which tests and wrappers may swap)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _groups(command: str | None = None) -> list[Any]:
    """The group modules: only ``command``'s own when it is a known command, else every one."""
    import importlib

    names = (COMMAND_GROUPS[command],) if command in COMMAND_GROUPS else GROUPS
    return [importlib.import_module(f"{__name__}.{name}") for name in names]


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``command``, only that command's group is added (building every
    command's parser is most of the CLI's own start-up, and parsing one command needs only its own)."""
    parser = _Parser(prog="smsgate", description="Send SMS through Chinese SMS vendors.")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (to stderr)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    groups = _groups(command)
    mine = [g for g in groups if command in g.COMMANDS]
    for group in mine or groups:
        group.add_commands(sub)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The command ``argv`` names, when nothing before it but ``-v`` options (else None: the whole
    parser then reads it, with its usual errors and help)."""
    for arg in argv:
        if arg in ("-v", "--verbose") or (arg.startswith("-v") and set(arg[1:]) == {"v"}):
            continue
        return None if arg.startswith("-") else arg
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(_command(argv))
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    restore_logging = _configure_logging(args.verbose)
    try:
        return _run(args)
    finally:
        restore_logging()


def _run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError, ProviderError, SmsError, TransportError, ValidationError

    handler = next(g.COMMANDS[args.command] for g in _groups(args.command) if args.command in g.COMMANDS)
    try:
        code: int = handler(args)
        return code
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
