"""CLI commands for receiving: ``serve``, ``work``, ``poll`` and ``spool`` (see smsgate.receiving)."""

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
    p.add_argument("--threads", type=_positive, default=None,
                   help="request threads (default: [receiver] threads, else 6: they share one GIL, and pushes "
                        "beyond them wait in order)")
    p.add_argument("--server", choices=("auto", "waitress", "wsgiref"), default="auto",
                   help="HTTP server: waitress (pip install 'smsgate[serve]'), or the stdlib one")
    p.add_argument("--replay-store", help="'memory' (default) or 'sqlite:PATH' shared by workers on this host")
    p.add_argument("--prefix", default="/callbacks", help="URL prefix (default /callbacks)")
    p.add_argument("--poll", action="store_true", help="also pull from vendors that offer pulls (as smsgate poll)")
    p.add_argument("--metrics", action="store_true",
                   help="count and answer GET /metrics for Prometheus (also on with a [metrics] table)")
    p.add_argument("--handler-process", action=argparse.BooleanOptionalAction, default=None,
                   help="run the handlers (--events-jsonl, --handler, plugin hooks, send ledger) in a child "
                        "process (smsgate work) on the same spool, so this one only receives (the default, "
                        "unless [receiver] handlers says otherwise); --no-handler-process runs them in threads "
                        "of this process")
    p.add_argument("--handlers-elsewhere", action="store_true",
                   help="run no handler here: only receive and store; `smsgate work` on the same spool runs them "
                        "(also [receiver] handlers = \"elsewhere\")")

    p = sub.add_parser("work", help="run the handlers over the spool (the events file, --handler functions, "
                                    "plugin hooks), without receiving pushes")
    _common(p)
    p.add_argument("--supervised", action="store_true", help=argparse.SUPPRESS)  # smsgate serve's child

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


def _receiver(args: argparse.Namespace, gateway: Any = None, **kwargs: Any) -> Any:
    from ..receiving.receiver import Receiver, load_handler
    from ..sending.gateway import Gateway

    import os

    if args.handler and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # --handler app:save finds ./app.py, as `python -m` would
    handlers = [load_handler(spec) for spec in args.handler]  # fail before opening anything
    receiver = Receiver(gateway or Gateway(args.config), spool=args.spool, events_jsonl=args.events_jsonl, **kwargs)
    for spec, fn in zip(args.handler, handlers):
        receiver.add_handler(fn, name=spec)
    return receiver


def _where_handlers_run(args: argparse.Namespace, configured: str) -> str:
    """"process", "threads" or "elsewhere": the command line over ``[receiver] handlers``
    (``configured``), and --handlers-elsewhere over --[no-]handler-process."""
    if args.handlers_elsewhere:
        return "elsewhere"
    if args.handler_process is None:
        return configured
    return "process" if args.handler_process else "threads"


def cmd_serve(args: argparse.Namespace) -> int:
    from ..receiving.server import THREADS, run_server
    from ..receiving.poller import Poller
    from ..sending.gateway import Gateway

    gateway = Gateway(args.config)
    conf = gateway.settings.receiver
    where = _where_handlers_run(args, conf.handlers)
    if where == "elsewhere" and (args.events_jsonl or args.handler):
        from ..errors import ConfigError

        said = "--handlers-elsewhere" if args.handlers_elsewhere else '[receiver] handlers = "elsewhere"'
        raise ConfigError(f"{said} runs no handler: give --events-jsonl and --handler to smsgate work")
    if where != "threads":
        from ..receiving.receiver import Receiver

        receiver = Receiver(gateway, spool=args.spool, replay_store=args.replay_store, prefix=args.prefix,
                            dispatch=False)
    else:
        receiver = _receiver(args, gateway, replay_store=args.replay_store, prefix=args.prefix)
    poller = handlers = None
    try:
        app, metrics_path = _with_metrics(receiver, args.metrics)
        if where == "elsewhere":
            pass
        elif where == "process":  # ready (its handlers registered) before anything is stored
            import signal

            def _terminate(signum: int, frame: Any) -> None:
                raise KeyboardInterrupt  # SIGTERM while the child starts: stop it, as run_server does later

            signal.signal(signal.SIGTERM, _terminate)
            handlers = _handler_process(args, receiver)
        else:
            receiver.start()
        if args.poll:  # pulls stay here, with the pushes: /metrics counts their vendor calls
            poller = Poller(receiver.gateway, receiver.spool)
            poller.start_thread()

        def bound(host: str, port: int) -> None:
            if handlers:
                print(f"smsgate: handlers ({', '.join(handlers.handlers) or 'none'}) run in process "
                      f"{handlers.pid}", file=sys.stderr, flush=True)
            elif where == "elsewhere":
                print("smsgate: no handlers here (handlers elsewhere): run smsgate work on this spool",
                      file=sys.stderr, flush=True)
            names = sorted(set(receiver.gateway.provider_names()))
            print(f"smsgate: receiving on http://{host}:{port}{receiver.prefix}/<provider> "
                  f"(configured: {', '.join(names) or 'none'}; spool {receiver.spool.path})", file=sys.stderr,
                  flush=True)
            if metrics_path:
                print(f"smsgate: metrics on http://{host}:{port}{metrics_path}", file=sys.stderr, flush=True)

        run_server(app, args.host, args.port, threads=args.threads or conf.threads or THREADS, server=args.server,
                   on_bound=bound, max_body=receiver.max_body, connection_limit=receiver.connection_limit,
                   idle_timeout=receiver.idle_timeout)
    finally:
        if poller:
            poller.stop()
            poller.join()  # a pull in flight stores what the vendor handed out before the spool closes
        if handlers:
            handlers.stop()
        receiver.close()
    print("smsgate: stopped", file=sys.stderr, flush=True)
    return 0


def _handler_process(args: argparse.Namespace, receiver: Any) -> Any:
    """Start ``smsgate work`` on the receiver's spool with serve's handler options, wait until its
    handlers are registered (no push is answered before), and report its state in /healthz."""
    import os

    from ..receiving.handler_process import HandlerProcess

    work_args = ["--spool", os.path.abspath(receiver.spool.path)]
    if args.config:
        work_args += ["--config", args.config]
    if args.events_jsonl:
        work_args += ["--events-jsonl", args.events_jsonl]
    for spec in args.handler:
        work_args += ["--handler", spec]
    process = HandlerProcess(work_args, verbose=args.verbose)
    try:
        process.start()
    except BaseException:
        process.stop()
        raise
    receiver.handlers_status = lambda: ("running" if process.status() == "running"
                                        else f"handler process {process.status()}")
    return process


def cmd_work(args: argparse.Namespace) -> int:
    """Run the handlers over the spool until SIGTERM/SIGINT, or, as ``smsgate serve``'s child
    (``--supervised``), until its stdin closes: the parent stopped it, or is gone."""
    import os
    import signal
    import threading

    from ..errors import SmsError
    from ..receiving.handler_process import FAILED, READY

    stop = threading.Event()
    try:
        receiver = _receiver(args)
    except SmsError as exc:
        if not args.supervised:
            raise
        # serve reports it as its own error: one line, as when the handlers run in its process
        sys.stdout.write(f"{FAILED} {json.dumps(str(exc))}\n")
        sys.stdout.flush()
        return 2
    try:
        receiver.dispatcher.watch_interval = 0.05  # the events are stored by other processes
        receiver.start()

        def _stop(signum: int, frame: Any) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGINT, _stop)
        names = sorted(receiver.dispatcher.handlers)
        if args.supervised:
            def parent_gone() -> None:
                sys.stdin.read()  # returns at EOF: the parent closed the pipe, or died
                stop.set()

            threading.Thread(target=parent_gone, name="smsgate-parent-watch", daemon=True).start()
            try:
                sys.stdout.write(f"{READY} {json.dumps({'handlers': names})}\n")
                sys.stdout.flush()
            except BrokenPipeError:  # serve stopped while this process started: stop too, quietly
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return 0
            # serve reads nothing more from that pipe: what a handler prints goes to stderr, with
            # the logs, instead of filling the pipe until the handler blocks
            os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
        else:
            print(f"smsgate: handling events of spool {receiver.spool.path} "
                  f"(handlers: {', '.join(names) or 'none'})",
                  file=sys.stderr, flush=True)
        while not stop.wait(1.0):
            pass
    finally:
        receiver.close()  # handler calls in flight finish; the rows it leased are given back
    if not args.supervised:
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


COMMANDS: dict[str, Any] = {"serve": cmd_serve, "work": cmd_work, "poll": cmd_poll, "spool": cmd_spool}
