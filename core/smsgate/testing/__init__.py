"""Testing kit for smsgate and provider plugins: simulator harness, conformance suite, CLI runner.

``from smsgate.testing import SimulatorServer, Fault, ProviderConformance``
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

_EXPORTS = {
    "SimulatorServer": "simulator", "SimRequest": "simulator", "Fault": "simulator",
    "load_simulator": "simulator", "ProviderConformance": "conformance",
    "LoopbackSimulator": "loopback", "FIXED_TIME": "conformance", "FIXED_NONCE": "conformance",
    "capture_logs": "logs", "write_config": "cli", "run_cli": "cli",
}

__all__ = [  # written out for type checkers; equal to sorted(_EXPORTS)
    "FIXED_NONCE", "FIXED_TIME", "Fault", "LoopbackSimulator", "ProviderConformance", "SimRequest",
    "SimulatorServer", "capture_logs", "load_simulator", "run_cli", "write_config",
]


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover - what type checkers see behind the lazy names
    from ..log import capture_logs
    from .cli import run_cli, write_config
    from .conformance import FIXED_NONCE, FIXED_TIME, ProviderConformance
    from .loopback import LoopbackSimulator
    from .simulator import Fault, SimRequest, SimulatorServer, load_simulator
