"""``smsgate demo``: every installed provider against its simulator, over real HTTP on 127.0.0.1.

For each vendor: send the simulator's demo message through the full pipeline, have the simulator
deliver it, then receive the delivery reports the way that vendor gives them — a vendor that
pushes gets a real receiver (``Receiver`` on a local HTTP server, with its spool) and the
simulator pushes to it; a pull-only vendor is pulled through the poller into the same spool.
``delivered`` counts the delivered reports the handlers received.
"""

from __future__ import annotations

import tempfile
import time
from typing import Any


def receive_mode(entry: Any, sim: Any) -> str | None:
    from ..models import Operation

    caps = entry.spec.capabilities
    if "report" in caps.callbacks and (hasattr(sim, "push_pending") or hasattr(sim, "push_reports")):
        return "push"
    if Operation.PULL_REPORTS in caps.operations:
        return "pull"
    return None


def demo_provider(pm: Any, name: str) -> dict[str, Any]:
    """Send the simulator's demo message, then receive its delivery reports (push or pull)."""
    from ..receiving.receiver import Receiver
    from ..receiving.server import BackgroundServer
    from ..sending.gateway import Gateway
    from ..models import Operation, PullQuery, Status
    from ..receiving.poller import Poller
    from ..testing.simulator import load_simulator

    entry = pm.providers[name]
    started = time.perf_counter()
    row: dict[str, Any] = {"vendor": name, "sent": 0, "accepted": 0, "delivered": 0, "via": "-",
                           "seconds": 0.0, "ok": False}
    if not entry.spec.simulator:
        row["error"] = "no simulator declared"
        return row
    sim = load_simulator(entry.spec.simulator)()
    with sim, tempfile.TemporaryDirectory(prefix="smsgate-demo-") as tmp:
        gw = Gateway({"providers": {name: sim.demo_config()}}, plugins=pm)
        receiver = Receiver(gw, spool=f"{tmp}/spool.sqlite3", plugin_hooks=False, poll_interval=0.05)
        received: list[Any] = []
        receiver.add_handler(lambda items: received.extend(i.event for i in items), name="demo", kinds=["report"],
                             batch=True)
        try:
            message = sim.demo_message(Operation.SEND)
            result = gw.send(message, provider=name)
            row["sent"] = len(result.recipients)
            row["accepted"] = len(result.accepted)
            mode = receive_mode(entry, sim)
            row["via"] = mode or "-"
            if hasattr(sim, "push_pending") or mode != "push":
                sim.deliver_all()  # the loopback simulator's push_reports makes its reports itself
            if mode == "push":
                with BackgroundServer(receiver.wsgi_app) as server:
                    url = f"{server.url}{receiver.prefix}/{name}"
                    if hasattr(sim, "push_pending"):
                        answers = sim.push_pending(url)
                    else:  # the loopback simulator
                        answers = [sim.push_reports(url, time.time())]
                    refused = [a.status for a in answers if not 200 <= a.status < 300]
                    if refused:
                        row["error"] = f"receiver answered {refused}"
                    receiver.drain()
            elif mode == "pull":
                ids = tuple(result.message_ids)
                poller = Poller(gw, receiver.spool, providers=[name], query=lambda _: PullQuery(message_ids=ids))
                outcome = poller.pull(name, Operation.PULL_REPORTS)
                if outcome.error:
                    row["error"] = outcome.error
                receiver.drain()
            if mode is None:  # the vendor gives no delivery reports at all: nothing to wait for
                row["delivered"] = None
                row["note"] = "this vendor gives no delivery reports"
            else:
                row["delivered"] = sum(1 for r in received if r.status is Status.DELIVERED)
        finally:
            receiver.close()
        row["ok"] = (result.ok and "error" not in row
                     and (row["delivered"] is None or row["delivered"] == row["accepted"]))
        if not result.ok:
            row["error"] = "; ".join(str(r.reason) for r in result.rejected) or "unknown outcome"
    row["seconds"] = round(time.perf_counter() - started, 3)
    return row


def run_demo(plugins: Any = ()) -> list[dict[str, Any]]:
    """Every installed provider against its simulator; ``plugins`` (wrappers such as the metrics
    plugin) see every send, call and push of the run."""
    from ..plugins import PluginManager

    pm = PluginManager()
    for plugin in plugins:
        pm.register(plugin)
    rows = []
    for name in pm.names():
        try:
            rows.append(demo_provider(pm, name))
        except Exception as exc:  # one vendor's failure must not hide the others
            rows.append({"vendor": name, "sent": 0, "accepted": 0, "delivered": 0, "via": "-", "seconds": 0.0,
                         "ok": False, "error": f"{type(exc).__name__}: {exc}"})
    for broken in pm.broken:
        rows.append({"vendor": broken.name, "sent": 0, "accepted": 0, "delivered": 0, "via": "-", "seconds": 0.0,
                     "ok": False, "error": f"plugin failed to load: {broken.error}"})
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    header = f"{'vendor':<10} {'sent':>5} {'accepted':>9} {'delivered':>10} {'via':>5} {'seconds':>8}  result"
    print(header)
    print("-" * len(header))
    for r in rows:
        status = "ok" if r.get("ok") else f"FAILED: {r.get('error', '')}"
        if r.get("ok") and r.get("note"):
            status += f" ({r['note']})"
        delivered = "-" if r["delivered"] is None else r["delivered"]
        print(f"{r['vendor']:<10} {r['sent']:>5} {r['accepted']:>9} {delivered:>10} {r.get('via', '-'):>5} "
              f"{r['seconds']:>8.3f}  {status}")
