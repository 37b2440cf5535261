"""Fixtures for the cmas tests: a running simulator and a Gateway pointed at it."""

from __future__ import annotations

from typing import Any

import pytest

from smsgate import Gateway, HttpResponse
from smsgate.testing import SimRequest, SimulatorServer
from smsgate_cmas.simulator import CmasSimulator


@pytest.fixture
def sim():
    with CmasSimulator() as simulator:
        yield simulator


@pytest.fixture
def make_gateway():
    """``make_gateway(sim, gateway_kwargs=None, **config_overrides)``: a Gateway with the cmas provider set up for ``sim``."""
    made: list[Gateway] = []

    def make(simulator: Any, gateway_kwargs: dict[str, Any] | None = None, **overrides: Any) -> Gateway:
        gw = Gateway({"providers": {"cmas": {**simulator.demo_config(), **overrides}}}, **(gateway_kwargs or {}))
        made.append(gw)
        return gw

    yield make


class ScriptedCmas(SimulatorServer):
    """Answers every request with the next scripted answer (to exercise every rspcod mapping)."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: list[HttpResponse] = []

    def handle(self, request: SimRequest) -> HttpResponse:
        return self.answers.pop(0)

    def demo_config(self) -> dict[str, Any]:
        return {"base_url": self.url, "ec_name": "企业", "ap_id": "ap", "secret_key": "k", "sign": "s1"}


@pytest.fixture
def scripted():
    with ScriptedCmas() as simulator:
        yield simulator
