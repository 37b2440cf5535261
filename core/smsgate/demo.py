"""``smsgate demo``: every installed provider against its simulator, over real HTTP on 127.0.0.1."""

from __future__ import annotations

import time
from typing import Any


def demo_provider(pm: Any, name: str) -> dict[str, Any]:
    """Send the simulator's demo message through the full pipeline, then get the delivery report."""
    from .gateway import Gateway
    from .models import Operation, PullQuery, Status
    from .testing.simulator import load_simulator

    entry = pm.providers[name]
    started = time.perf_counter()
    row: dict[str, Any] = {"vendor": name, "sent": 0, "accepted": 0, "delivered": 0, "seconds": 0.0, "ok": False}
    if not entry.spec.simulator:
        row["error"] = "no simulator declared"
        return row
    sim = load_simulator(entry.spec.simulator)()
    with sim:
        gw = Gateway({"providers": {name: sim.demo_config()}}, plugins=pm)
        message = sim.demo_message(Operation.SEND)
        result = gw.send(message, provider=name)
        row["sent"] = len(result.recipients)
        row["accepted"] = len(result.accepted)
        sim.deliver_all()
        if Operation.PULL_REPORTS in entry.spec.capabilities.operations:
            reports = gw.pull_reports(name, PullQuery(message_ids=tuple(result.message_ids)))
            row["delivered"] = sum(1 for r in reports if r.status is Status.DELIVERED)
        row["ok"] = result.ok and row["delivered"] == row["accepted"]
        if not result.ok:
            row["error"] = "; ".join(str(r.reason) for r in result.rejected) or "unknown outcome"
    row["seconds"] = round(time.perf_counter() - started, 3)
    return row


def run_demo() -> list[dict[str, Any]]:
    from .plugins import PluginManager

    pm = PluginManager()
    rows = []
    for name in pm.names():
        try:
            rows.append(demo_provider(pm, name))
        except Exception as exc:  # one vendor's failure must not hide the others
            rows.append({"vendor": name, "sent": 0, "accepted": 0, "delivered": 0, "seconds": 0.0, "ok": False,
                         "error": f"{type(exc).__name__}: {exc}"})
    for broken in pm.broken:
        rows.append({"vendor": broken.name, "sent": 0, "accepted": 0, "delivered": 0, "seconds": 0.0, "ok": False,
                     "error": f"plugin failed to load: {broken.error}"})
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    header = f"{'vendor':<10} {'sent':>5} {'accepted':>9} {'delivered':>10} {'seconds':>8}  result"
    print(header)
    print("-" * len(header))
    for r in rows:
        status = "ok" if r.get("ok") else f"FAILED: {r.get('error', '')}"
        print(f"{r['vendor']:<10} {r['sent']:>5} {r['accepted']:>9} {r['delivered']:>10} {r['seconds']:>8.3f}  {status}")
