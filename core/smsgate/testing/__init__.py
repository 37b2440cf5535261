"""Testing kit for smsgate and provider plugins: simulator harness and conformance suite.

``from smsgate.testing import SimulatorServer, Fault, ProviderConformance``
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "SimulatorServer": "simulator", "SimRequest": "simulator", "Fault": "simulator",
    "load_simulator": "simulator", "ProviderConformance": "conformance",
    "LoopbackSimulator": "loopback", "FIXED_TIME": "conformance", "FIXED_NONCE": "conformance",
    "capture_logs": "logs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(name)
    import importlib

    return getattr(importlib.import_module(f"smsgate.testing.{module}"), name)
