"""Running the ``smsgate`` command in tests as a user types it: a config file for one provider,
and the CLI in a subprocess (it configures logging for its own process, so it must not run in
the test's)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any


def write_config(path: str | Path, provider: str, values: dict[str, Any]) -> str:
    """Write ``[providers.<provider>]`` with ``values`` (text, numbers, booleans) to ``path``;
    returns the path as text, ready for ``--config``."""

    def toml(value: Any) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return repr(value)
        return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string

    lines = [f"[providers.{provider}]"] + [f"{k} = {toml(v)}" for k, v in values.items() if v is not None]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m smsgate.cli <args>`` with this interpreter; text output, not checked."""
    return subprocess.run([sys.executable, "-m", "smsgate.cli", *args], capture_output=True, text=True,
                          encoding="utf-8", timeout=timeout)
