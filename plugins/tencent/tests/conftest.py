from __future__ import annotations

from typing import Any

import pytest

from smsgate import Gateway
from smsgate_tencent.simulator import TencentSimulator


@pytest.fixture
def sim():
    with TencentSimulator() as simulator:
        yield simulator


def _make_gateway(sim: TencentSimulator, **overrides: Any) -> Gateway:
    kwargs = {k: overrides.pop(k) for k in ("clock", "nonce") if k in overrides}
    # pushes built in the tests carry no source address: accept them knowingly
    values = {**sim.demo_config(), "push_allow_ips": [], "push_auth": "none", **overrides}
    return Gateway({"providers": {"tencent": values}}, **kwargs)


@pytest.fixture
def make_gateway():
    """``make_gateway(sim, **config_overrides, clock=...)`` -> a Gateway on the simulator."""
    return _make_gateway


@pytest.fixture
def gateway(sim):
    return _make_gateway(sim)
