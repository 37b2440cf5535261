"""Start-up time of the CLI: wall milliseconds, median of N runs, bare interpreter included.

- ``providers``: ``smsgate providers --json`` (discovery of every installed plugin);
- ``send``: ``smsgate send`` of one message to the loopback provider's in-process ``memory://``
  simulator (no network), with a config file;
- ``import``: ``import smsgate`` and plugin discovery (``PluginManager().names()``), a Python
  library's own start-up; ``import_ms`` is its wall time over ``bare``;
- ``bare``: ``python -c pass`` (what any Python command costs on this machine).

Also prints the CPU time (user + system of the child) of each, which a busy machine disturbs
less than the wall time.

The children run with their bytecode caches, as an installed package has them (pip compiles
them at install; a checkout writes them on first import): ``PYTHONDONTWRITEBYTECODE`` is dropped
from their environment, and the warm-up run writes the caches. ``--no-bytecode-cache`` keeps the
variable instead, so a checkout without caches compiles every smsgate module it imports, on
every run (what a development shell with that variable set measures).

    python benchmarks/startup.py [--runs 10] [--no-bytecode-cache]

Last line: ``startup providers_ms=<m> send_ms=<m> bare_ms=<m> import_ms=<m>``. Goals (issue #18):
providers and send <= 150 ms, import <= 80 ms.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

CONFIG = """\
default_provider = "loopback"
[providers.loopback]
base_url = "memory://loopback"
api_key = "demo-key"
api_secret = "demo-secret"
"""


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall ms, child CPU ms) of one run of ``cmd``; it must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="keep PYTHONDONTWRITEBYTECODE (if set): modules without a cache compile each run")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="smsgate-startup-")
    config = os.path.join(tmp, "smsgate.toml")
    with open(config, "w") as f:
        f.write(CONFIG)
    env = {**os.environ, "SMSGATE_CONFIG": config}
    if not args.no_bytecode_cache:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    smsgate = [sys.executable, "-m", "smsgate.cli"]
    commands = {
        "providers": smsgate + ["providers", "--json"],
        "send": smsgate + ["send", "--config", config, "--to", "13800138000", "--template", "LB_CODE",
                            "--params", '["1234"]'],
        "import": [sys.executable, "-c", "import smsgate; smsgate.PluginManager().names()"],
        "bare": [sys.executable, "-c", "pass"],
    }
    for cmd in commands.values():  # warm the file cache; a failing command stops here, loudly
        timed(cmd, env)
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.runs):  # interleaved: the machine's load falls on each alike
        for name, cmd in commands.items():
            wall, cpu = timed(cmd, env)
            walls[name].append(wall)
            cpus[name].append(cpu)
    for name in commands:
        print(f"{name}: wall median {statistics.median(walls[name]):.0f} ms (min {min(walls[name]):.0f}), "
              f"CPU median {statistics.median(cpus[name]):.0f} ms")
    med = {name: statistics.median(v) for name, v in walls.items()}
    print(f"bytecode caches: {'as the environment has them' if args.no_bytecode_cache else 'written and used'}")
    print(f"startup providers_ms={med['providers']:.0f} send_ms={med['send']:.0f} bare_ms={med['bare']:.0f} "
          f"import_ms={med['import'] - med['bare']:.0f}")


if __name__ == "__main__":
    main()
