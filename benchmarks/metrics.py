"""Observability overhead: the pipeline benchmark's one-recipient sends (over HTTP to the loopback
simulator in its own process) with no plugin, with the metrics plugin, and with the tracing plugin
(opentelemetry-api, no SDK: what an app that has not configured tracing pays), in alternating
rounds; the best rate of each is kept, and the least client CPU time per send (``process_time``
of this process: the simulator runs in its own, and CPU time moves less than the rate when the
machine is busy with other work). Goal: metrics/plain >= 0.90. Last line:
``metrics/plain c1=<rate ratio> c16=<rate ratio> cpu_c1=<ratio> cpu_c16=<ratio> med_c1=<ratio>
med_c16=<ratio>`` (rate ratios of the best rates; cpu ratios are plain's CPU per send over the
plugin's, 0.90 meaning the plugin adds a tenth; med ratios the median over rounds of the rate
ratio measured back to back in one round).

    python benchmarks/metrics.py [--n 2000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

from pipeline import POOL, app_logging, run_threads, start_simulator
from prometheus_client import CollectorRegistry

from smsgate import Gateway, Message, PluginManager
from smsgate.integrations.metrics import Metrics
from smsgate.integrations.tracing import Tracing
from smsgate.sending.transport import Transport


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000, help="sends per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; the best of each is kept")
    args = parser.parse_args()
    app_logging()

    proc, url = start_simulator()
    try:
        config = {"base_url": url, "api_key": "demo-key", "api_secret": "demo-secret", "max_concurrency": 1}
        transport = Transport(pool_maxsize=POOL)
        registry = CollectorRegistry()
        gateways = {}
        for name, plugin in (("plain", None), ("metrics", Metrics(registry)), ("tracing", Tracing())):
            pm = PluginManager(load_entrypoints=False)
            if plugin is not None:
                plugin.install(pm)
            gateways[name] = Gateway({"providers": {"loopback": config}}, plugins=pm, transport=transport)
        messages = [Message(to=[f"139{i:08d}"], template_id="LB_CODE", params=["1234"]) for i in range(args.n)]

        def sender(gw):
            def send(i: int) -> None:
                assert gw.send(messages[i]).ok
            return send

        for gw in gateways.values():  # warm up: connections, imports, label children
            run_threads(16, 200, sender(gw))
        best: dict[tuple[str, int], float] = {}
        cpu: dict[tuple[str, int], float] = {}
        rounds: list[dict[tuple[str, int], float]] = []
        names = list(gateways)
        for round_ in range(args.rounds):
            order = names[round_ % len(names):] + names[:round_ % len(names)]  # no variant always goes first
            rounds.append({})
            for conc in (1, 16):
                for name in order:
                    gw = gateways[name]
                    started = time.process_time()
                    rate = run_threads(conc, args.n, sender(gw))
                    per_send = (time.process_time() - started) / args.n
                    best[(name, conc)] = max(best.get((name, conc), 0.0), rate)
                    cpu[(name, conc)] = min(cpu.get((name, conc), float("inf")), per_send)
                    rounds[-1][(name, conc)] = rate
        sent = registry.get_sample_value("smsgate_recipients_total", {
            "provider": "loopback", "route": "", "operation": "send", "outcome": "accepted", "code": ""})
        print(f"metrics counted {sent:.0f} accepted recipients")
        for conc in (1, 16):
            print(f"c{conc}: " + "   ".join(
                f"{name} {best[(name, conc)]:6.0f} req/s {cpu[(name, conc)] * 1e6:4.0f} us CPU" for name in gateways))
        for name in ("tracing", "metrics"):
            rates = " ".join(f"c{conc}={best[(name, conc)] / best[('plain', conc)]:.2f}" for conc in (1, 16))
            cpus = " ".join(f"cpu_c{conc}={cpu[('plain', conc)] / cpu[(name, conc)]:.2f}" for conc in (1, 16))
            # each round measures the variants back to back: the median of those paired ratios
            # is steadier than the ratio of bests when other work comes and goes
            medians = {conc: statistics.median(r[(name, conc)] / r[("plain", conc)] for r in rounds) for conc in (1, 16)}
            paired = " ".join(f"med_c{conc}={ratio:.2f}" for conc, ratio in medians.items())
            print(f"{name}/plain {rates} {cpus} {paired}")
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
