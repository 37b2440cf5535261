"""Commands about the installation itself: ``providers`` and ``demo``."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from .common import EXIT_FAILED, EXIT_OK, port as _port, print_json as _print_json


def add_commands(sub: Any) -> None:
    p = sub.add_parser("providers", help="list installed providers and broken plugins")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.add_argument("--load", action="store_true",
                   help="also import every provider's hooks (listing reads only their declarations), "
                        "so one that cannot load shows as broken")

    p = sub.add_parser("demo", help="run every installed provider against its simulator")
    p.add_argument("--json", action="store_true", help="print JSON rows")
    p.add_argument("--metrics", action="store_true",
                   help="count with the metrics plugin and print the smsgate_* metrics after the table")

    p = sub.add_parser("simulate", help="run a vendor's simulator in the foreground and print a config that "
                                        "points at it")
    p.add_argument("vendor", help="an installed provider (see smsgate providers)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=_port, default=0, help="port (default: a free one)")

    p = sub.add_parser("check", help="check the configuration as sending and receiving would, and show it")
    p.add_argument("--config", help="TOML config file (default: $SMSGATE_CONFIG)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def cmd_providers(args: argparse.Namespace) -> int:
    from ..plugins import PluginManager

    pm = PluginManager()
    if args.load:
        pm.load_all()
    rows = []
    for name in pm.names():
        entry = pm.providers[name]
        rows.append({"name": name, "distribution": entry.distribution, "version": entry.version,
                     "status": "ok", "description": entry.spec.description,
                     "capabilities": entry.spec.capabilities.to_json_dict()})
    for broken in pm.broken:
        rows.append({"name": broken.name, "distribution": broken.distribution, "version": None,
                     "status": "broken", "error": broken.error})
    if args.json:
        _print_json(rows)
    else:
        for row in rows:
            if row["status"] == "broken":
                print(f"{row['name']}\tBROKEN\t{row['distribution'] or '-'}\t{row['error']}")
            else:
                caps = row["capabilities"]
                print(f"{row['name']}\t{row['distribution'] or '-'} {row['version'] or ''}\t"
                      f"{','.join(caps['operations'])}\tmax/request={caps['max_recipients'].get('send', '-')}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import print_table, run_demo

    metrics = None
    if args.metrics:
        from ..errors import ConfigError

        try:
            from ..integrations.metrics import default_metrics, smsgate_text
        except ImportError:
            raise ConfigError("--metrics needs the 'metrics' extra: pip install 'smsgate[metrics]'") from None
        metrics = default_metrics()
    rows = run_demo(plugins=[metrics] if metrics else [])
    if args.json:
        _print_json(rows)
    else:
        print_table(rows)
        if metrics:
            print()
            print(smsgate_text(), end="")
    return EXIT_OK if rows and all(r.get("ok") for r in rows) else EXIT_FAILED


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string


def simulator_snippet(vendor: str, config: dict[str, Any]) -> str:
    """The ``[providers.VENDOR]`` table that points at a running simulator."""
    return f"[providers.{vendor}]\n" + "".join(f"{k} = {_toml_value(v)}\n" for k, v in config.items())


def cmd_simulate(args: argparse.Namespace) -> int:
    """Serve the vendor's simulator until Ctrl-C (or SIGTERM); the config snippet goes to stdout,
    everything else to stderr, so ``smsgate simulate opass > sim.toml`` gives a usable file."""
    import signal
    import sys

    from ..errors import ConfigError
    from ..plugins import PluginManager
    from ..testing.simulator import load_simulator

    entry = PluginManager().provider(args.vendor)
    if not entry.spec.simulator:
        raise ConfigError(f"provider {args.vendor!r} declares no simulator")
    try:
        sim = load_simulator(entry.spec.simulator)(host=args.host, port=args.port)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    sim.start()

    def _terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    try:
        sys.stdout.write(f"# {args.vendor} simulator at {sim.url}: use this table in a config file\n"
                         + simulator_snippet(args.vendor, sim.demo_config()))
        sys.stdout.flush()
        print(f"smsgate: {args.vendor} simulator listening on {sim.url} (Ctrl-C stops it)", file=sys.stderr,
              flush=True)
        signal.pause() if hasattr(signal, "pause") else _wait_forever()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    print("smsgate: simulator stopped", file=sys.stderr, flush=True)
    return EXIT_OK


def _wait_forever() -> None:  # pragma: no cover - platforms without signal.pause
    import threading

    threading.Event().wait()


def cmd_check(args: argparse.Namespace) -> int:
    """Build the Gateway (which checks everything, reporting every problem at once), then show
    what was found: secrets only as "set", URLs without user info."""
    import attrs

    from ..config import config_fields, env_prefix, is_secret
    from ..errors import ConfigError
    from ..log import safe_url
    from .common import gateway

    if args.config is None and not os.environ.get("SMSGATE_CONFIG"):
        raise ConfigError("no config file given: --config PATH, or set SMSGATE_CONFIG")
    try:
        gw = gateway(args)
    except ConfigError as exc:  # reported together with the receiver's files, when the file could be read
        from ..config import load_settings

        try:
            settings = load_settings(args.config)
        except ConfigError:
            raise exc from None
        raise ConfigError.combine([exc, *receiver_files(settings.receiver)[1]], settings.source) from None
    settings = gw.settings
    files, problems = receiver_files(settings.receiver)
    if problems:
        raise ConfigError.combine(problems, settings.source)
    report: dict[str, Any] = {"config": settings.source, "default_provider": settings.default_provider,
                              "providers": [], "receiver": attrs.asdict(settings.receiver), "files": files}
    for name in gw.provider_names():
        entry, config = gw.provider(name)
        prefix = env_prefix(name)
        values: dict[str, Any] = {}
        for fname, field in config_fields(type(config)).items():
            value = getattr(config, fname)
            if is_secret(field):
                value = "(set)" if value else "(empty)"
            elif fname == "base_url":
                value = safe_url(str(value), keep_query=True)
            values[fname] = value
        from_env = sorted(f for f in config_fields(type(config)) if prefix + f.upper() in gw.environ)
        report["providers"].append({"name": name, "plugin": entry.spec.name, "distribution": entry.distribution,
                                    "version": entry.version, "values": values,
                                    "from_environment": [prefix + f.upper() for f in from_env]})
    if args.json:
        _print_json({"ok": True, **report})
        return EXIT_OK
    print(f"config: {settings.source}")
    print(f"default provider: {gw.settings.default_provider or '-'}")
    for row in report["providers"]:
        print(f"provider {row['name']}: plugin {row['plugin']} ({row['distribution'] or 'built in'}"
              f"{' ' + row['version'] if row['version'] else ''})")
        for key, value in row["values"].items():
            print(f"  {key} = {json.dumps(value, ensure_ascii=False, default=str)}")
        for var in row["from_environment"]:
            print(f"  (from the environment: {var})")
    print("receiver: " + ", ".join(f"{k} = {json.dumps(v, default=str)}" for k, v in report["receiver"].items()))
    for row in files:
        print(f"{row['what']}: {row['path']} ({row['state']})")
    print("ok: the configuration is valid")
    return EXIT_OK


def receiver_files(receiver: Any) -> tuple[list[dict[str, str]], list[Any]]:
    """The files ``[receiver]`` names, as ``smsgate serve`` would use them, checked without creating
    or changing any (for the user running the check): the spool and a SQLite replay store must be
    SQLite files of their kind that can be written, or creatable; the events file writable or
    creatable. The default spool (./smsgate-spool.sqlite3) is checked only when it exists. Returns
    one row per file (what, path, state) and one ConfigError per problem."""
    from ..errors import ConfigError
    from ..receiving.receiver import DEFAULT_SPOOL
    from ..receiving.replay import replay_store_path

    wanted: list[tuple[str, str, str, str | None]] = []  # (what, field, path, a table of its kind)
    if receiver.spool:
        wanted.append(("spool", "spool", receiver.spool, "events"))
    elif os.path.exists(DEFAULT_SPOOL):
        wanted.append(("spool", "spool", DEFAULT_SPOOL, "events"))
    problems = []
    try:
        replay = replay_store_path(receiver.replay_store)
    except ValueError as exc:
        problems.append(ConfigError(f"[receiver] replay_store: {exc}", field="replay_store"))
    else:
        if replay is not None:
            wanted.append(("replay store", "replay_store", replay, "replay_keys"))
    if receiver.events_jsonl:
        wanted.append(("events file", "events_jsonl", receiver.events_jsonl, None))
    rows = []
    for what, field, path, table in wanted:
        state, problem = _file_state(path, what, table)
        if problem:
            problems.append(ConfigError(f"[receiver] {field} {path}: {problem}", field=field))
        else:
            rows.append({"what": what, "path": path, "state": state})
    return rows, problems


def _file_state(path: str, what: str, table: str | None) -> tuple[str, str | None]:
    """(the file's state, what is wrong with it); ``table``: one that every SQLite file of its kind has."""
    import pathlib
    import sqlite3

    full = os.path.abspath(path)
    directory = os.path.dirname(full)
    if os.path.isdir(full):
        return "", "is a directory"
    if not os.path.exists(full):
        if not os.path.isdir(directory):
            return "", f"directory {directory} does not exist"
        if not os.access(directory, os.W_OK | os.X_OK):
            return "", f"cannot be created: directory {directory} is not writable"
        return "created on first use", None
    if not os.access(full, os.R_OK | os.W_OK):
        return "", "cannot be written (permissions)"
    if table is None:
        return "writable", None
    if not os.access(directory, os.W_OK | os.X_OK):
        return "", f"directory {directory} is not writable (SQLite keeps the -wal and -shm files beside it)"
    # read-only, and creating nothing: a reader would leave -wal/-shm files (owned by whoever runs
    # the check); without them the file holds everything and is read as it is
    in_use = os.path.exists(full + "-wal") and os.path.exists(full + "-shm")
    try:
        conn = sqlite3.connect(pathlib.Path(full).as_uri() + ("?mode=ro" if in_use else "?immutable=1"),
                               uri=True, timeout=2.0)
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return "", f"cannot be read as SQLite: {exc}"
    tables.discard("sqlite_sequence")
    if tables and table not in tables:
        return "", f"is not a {what}: it holds other tables ({', '.join(sorted(tables))})"
    return "writable" if tables else "empty, writable", None


COMMANDS = {"providers": cmd_providers, "demo": cmd_demo, "check": cmd_check, "simulate": cmd_simulate}
