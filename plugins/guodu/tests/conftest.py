from __future__ import annotations

import pytest

from smsgate import Gateway
from smsgate_guodu.simulator import GuoduSimulator

FIXED_TIME = 1726631416.0  # 2024-09-18 11:50:16 China time


@pytest.fixture
def sim():
    with GuoduSimulator(clock=lambda: FIXED_TIME) as server:
        yield server


@pytest.fixture
def make_gateway(sim):
    def make(**overrides):
        # pushes built in the tests carry no source address: accept them knowingly
        values = {**sim.demo_config(), "push_allow_ips": [], "push_auth": "none", **overrides}
        return Gateway({"providers": {"guodu": values}}, clock=lambda: FIXED_TIME, environ={})
    return make


@pytest.fixture
def gw(make_gateway):
    return make_gateway()
