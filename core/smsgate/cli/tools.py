"""Commands about the installation itself: ``providers`` and ``demo``."""

from __future__ import annotations

from typing import Any
import argparse

from .common import EXIT_FAILED, EXIT_OK, print_json as _print_json


def add_commands(sub: Any) -> None:
    p = sub.add_parser("providers", help="list installed providers and broken plugins")
    p.add_argument("--json", action="store_true", help="print a JSON list")

    p = sub.add_parser("demo", help="run every installed provider against its simulator")
    p.add_argument("--json", action="store_true", help="print JSON rows")
    p.add_argument("--metrics", action="store_true",
                   help="count with the metrics plugin and print the smsgate_* metrics after the table")


def cmd_providers(args: argparse.Namespace) -> int:
    from ..plugins import PluginManager

    pm = PluginManager()
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


COMMANDS = {"providers": cmd_providers, "demo": cmd_demo}
