"""CLI commands for receiving: ``serve`` and ``poll`` and ``spool`` (see smsgate.receiving)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .common import port as _port


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {n}")
    return n


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML config file (default: $SMSGATE_CONFIG)")
    p.add_argument("--spool", help="spool file (default: [receiver] spool, else ./smsgate-spool.sqlite3)")
    p.add_argument("--events-jsonl", metavar="PATH", help="append every event to PATH as one JSON line, once")
    p.add_argument("--handler", action="append", default=[], metavar="MODULE:FUNCTION",
                   help="call this function with each event (repeatable); MODULE is imported from the "
                        "current directory or the installed packages")


def add_commands(sub: Any) -> None:
    """Add receiving commands to the ``smsgate`` parser."""
    p = sub.add_parser("serve", help="receive vendor pushes (reports, inbound SMS) at /callbacks/<provider>")
    _common(p)
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=8080, help="port (default 8080; 0 picks a free one)")
    p.add_argument("--threads", type=_positive, default=16, help="request threads (default 16)")
    p.add_argument("--server", choices=("auto", "waitress", "wsgiref"), default="auto",
                   help="HTTP server: waitress (pip install 'smsgate[serve]'), or the stdlib one")
    p.add_argument("--replay-store", help="'memory' (default) or 'sqlite:PATH' shared by workers on this host")
    p.add_argument("--prefix", default="/callbacks", help="URL prefix (default /callbacks)")
    p.add_argument("--poll", action="store_true", help="also pull from vendors that offer pulls (as smsgate poll)")
    p.add_argument("--metrics", action="store_true",
                   help="count and answer GET /metrics for Prometheus (also on with a [metrics] table)")

    p = sub.add_parser("poll", help="keep pulling reports and inbound SMS into the spool and handlers")
    _common(p)
    p.add_argument("--provider", action="append", default=[], help="only this provider (repeatable)")
    p.add_argument("--interval", type=float, default=None,
                   help="seconds between pulls when a vendor had nothing (default: the vendor's suggestion, "
                        "e.g. 60 for opass, else 10; never below its call budget)")
    p.add_argument("--once", action="store_true", help="pull each provider once, run the handlers, exit")
    p.add_argument("--json", action="store_true", help="with --once: print one JSON object per pull")

    _spool_commands(sub)


def _spool_commands(sub: Any) -> None:
    p = sub.add_parser("spool", help="look at the spool or forget a handler that no longer exists")
    ssub = p.add_subparsers(dest="spool_command", metavar="ACTION", required=True)
    for name, help_text in (("status", "print events and each handler's pending/leased/dead rows (JSON)"),
                            ("forget-handler", "stop feeding a handler that was removed from the app and drop "
                                               "its outstanding rows (so prune can delete those events)")):
        q = ssub.add_parser(name, help=help_text)
        q.add_argument("--config", help="TOML config file (default: $SMSGATE_CONFIG)")
        q.add_argument("--spool", help="spool file (default: [receiver] spool, else ./smsgate-spool.sqlite3)")
        if name == "forget-handler":
            q.add_argument("name", help="the handler's name (as in `smsgate spool status`; "
                                        "--events-jsonl is 'events-jsonl', --handler is its MODULE:FUNCTION)")


def _open_spool(args: argparse.Namespace) -> Any:
    import os

    from ..receiving.receiver import DEFAULT_SPOOL
    from ..errors import ConfigError
    from ..sending.gateway import Gateway
    from ..receiving.store import Spool

    path = args.spool
    if path is None:
        conf = Gateway(args.config).settings.extra.get("receiver") or {}
        path = (conf.get("spool") if isinstance(conf, dict) else None) or DEFAULT_SPOOL
        if not isinstance(path, str):
            raise ConfigError("[receiver] spool must be a string")
    if not os.path.isfile(path):
        raise ConfigError(f"no spool at {path} (--spool PATH)")
    return Spool(path)


def cmd_spool(args: argparse.Namespace) -> int:
    from ..errors import ConfigError

    with _open_spool(args) as spool:
        if args.spool_command == "status":
            sys.stdout.write(json.dumps(spool.counts(), ensure_ascii=False) + "\n")
            return 0
        names = spool.handler_names()
        if args.name not in names:
            raise ConfigError(f"no handler named {args.name!r} in {spool.path} "
                              f"(registered: {', '.join(sorted(names)) or 'none'})")
        outstanding = spool.outstanding([args.name])
        spool.forget_handler(args.name)
        print(f"smsgate: forgot handler {args.name!r} ({outstanding} rows it had not handled dropped)",
              file=sys.stderr)
        return 0


def _receiver(args: argparse.Namespace, **kwargs: Any) -> Any:
    from ..receiving.receiver import Receiver, load_handler
    from ..sending.gateway import Gateway

    import os

    if args.handler and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # --handler app:save finds ./app.py, as `python -m` would
    handlers = [load_handler(spec) for spec in args.handler]  # fail before opening anything
    receiver = Receiver(Gateway(args.config), spool=args.spool, events_jsonl=args.events_jsonl, **kwargs)
    for spec, fn in zip(args.handler, handlers):
        receiver.add_handler(fn, name=spec)
    return receiver


def cmd_serve(args: argparse.Namespace) -> int:
    from ..receiving.server import run_server
    from ..receiving.poller import Poller

    receiver = _receiver(args, replay_store=args.replay_store, prefix=args.prefix)
    try:
        app, metrics_path = _with_metrics(receiver, args.metrics)
    except BaseException:
        receiver.close()
        raise
    receiver.start()
    poller = None
    if args.poll:
        poller = Poller(receiver.gateway, receiver.spool)
        poller.start_thread()

    def bound(host: str, port: int) -> None:
        names = sorted(set(receiver.gateway.provider_names()))
        print(f"smsgate: receiving on http://{host}:{port}{receiver.prefix}/<provider> "
              f"(configured: {', '.join(names) or 'none'}; spool {receiver.spool.path})", file=sys.stderr, flush=True)
        if metrics_path:
            print(f"smsgate: metrics on http://{host}:{port}{metrics_path}", file=sys.stderr, flush=True)

    try:
        run_server(app, args.host, args.port, threads=args.threads, server=args.server, on_bound=bound,
                   max_body=receiver.max_body, connection_limit=receiver.connection_limit,
                   idle_timeout=receiver.idle_timeout)
    finally:
        if poller:
            poller.stop()
            poller.join()  # a pull in flight stores what the vendor handed out before the spool closes
        receiver.close()
    print("smsgate: stopped", file=sys.stderr, flush=True)
    return 0


def _with_metrics(receiver: Any, asked: bool) -> tuple[Any, str | None]:
    """The app to serve and the metrics path: /metrics answered when ``--metrics`` or a
    ``[metrics]`` table asks for it (docs/observability.md)."""
    from ..errors import ConfigError
    from ..integrations import table

    conf = table(receiver.gateway.settings, "metrics")
    if not asked and conf is None:
        return receiver.wsgi_app, None
    try:
        from ..integrations.metrics import mount
    except ImportError:
        raise ConfigError("--metrics needs the 'metrics' extra: pip install 'smsgate[metrics]'") from None
    path = "/" + str((conf or {}).get("path") or "/metrics").strip("/")
    return mount(receiver, path), path


def cmd_poll(args: argparse.Namespace) -> int:
    from ..receiving.poller import Poller

    receiver = _receiver(args)
    receiver.start()
    try:
        poller = Poller(receiver.gateway, receiver.spool, providers=args.provider or None, interval=args.interval)
        if not poller.targets:
            print("smsgate: error: no configured provider offers pulls", file=sys.stderr)
            return 2
        if args.once:
            outcomes = poller.poll_once()
            receiver.drain()
            failed = False
            for o in outcomes:
                row = {"provider": o.provider, "operation": o.operation.value, "events": o.events,
                       "stored": o.stored, "duplicates": o.duplicates, "error": o.error}
                failed = failed or bool(o.error)
                if args.json:
                    sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
                else:
                    print(f"{o.provider}\t{o.operation.value}\t{o.events} events\t{o.stored} new"
                          + (f"\t{o.error}" if o.error else ""))
            return 1 if failed else 0
        print(f"smsgate: polling {', '.join(f'{n}/{op.value}' for n, op in poller.targets)} "
              f"(spool {receiver.spool.path})", file=sys.stderr, flush=True)
        import signal

        def _terminate(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, _terminate)
        try:
            poller.run()
        except KeyboardInterrupt:
            pass
        return 0
    finally:
        receiver.close()


COMMANDS: dict[str, Any] = {"serve": cmd_serve, "poll": cmd_poll, "spool": cmd_spool}
