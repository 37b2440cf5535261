"""Fixtures: a running Alibaba Cloud SMS simulator, gateways on it, an HTTP push receiver, the official SDK."""

from __future__ import annotations

import os
import types
from typing import Any

import pytest

from smsgate import AuthError, Gateway, HttpResponse, ValidationError
from smsgate.testing import SimulatorServer
from smsgate_aliyun.simulator import AliyunSimulator


@pytest.fixture
def sdk():
    """The official SDK's modules ``(Client, models, utils_models, Utils)``, a test-only dependency.
    Missing: a skip locally, a failure under CI, where scripts/test.sh installs it."""
    try:
        from alibabacloud_dysmsapi20170525 import models
        from alibabacloud_dysmsapi20170525.client import Client
        from alibabacloud_tea_openapi import utils_models
        from alibabacloud_tea_openapi.utils import Utils
    except ImportError as exc:  # pragma: no cover - depends on the environment
        if os.environ.get("CI") == "true":
            pytest.fail(f"the official SDK is not installed: {exc}")
        pytest.skip(f"the official SDK is not installed: {exc}")
    return types.SimpleNamespace(Client=Client, models=models, utils_models=utils_models, Utils=Utils)


@pytest.fixture
def sim():
    with AliyunSimulator() as simulator:
        yield simulator


@pytest.fixture
def make_gateway(sim):
    """``make_gateway(**config_overrides, clock=..., nonce=...)`` -> Gateway on the simulator."""

    def make(**overrides: Any) -> Gateway:
        kwargs = {k: overrides.pop(k) for k in ("clock", "nonce") if k in overrides}
        return Gateway({"providers": {"aliyun": {**sim.demo_config(), **overrides}}}, **kwargs)

    return make


class Receiver(SimulatorServer):
    """An HTTP endpoint on 127.0.0.1 (the simulator harness's server) that hands every push to
    ``gateway.handle_callback``, answering 401 when refused and 400 when malformed."""

    def __init__(self, gw: Gateway):
        super().__init__()
        self.gw = gw
        self.events: list[Any] = []

    def handle(self, request: Any) -> HttpResponse:
        try:
            result = self.gw.handle_callback("aliyun", request.as_callback())
        except AuthError:
            return HttpResponse.of_json({"code": 401, "msg": "refused"}, status=401)
        except ValidationError:
            return HttpResponse.of_json({"code": 400, "msg": "malformed"}, status=400)
        self.events.extend(result.events)
        return result.response

    @property
    def push_url(self) -> str:
        return self.url + "/callbacks/aliyun"


@pytest.fixture
def receiver_for():
    made: list[Receiver] = []

    def make(gw: Gateway) -> Receiver:
        r = Receiver(gw).start()
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()
