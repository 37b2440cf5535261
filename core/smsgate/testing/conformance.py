"""The conformance suite every provider plugin runs.

A plugin's test module subclasses :class:`ProviderConformance` and names its provider::

    from smsgate.testing import ProviderConformance

    class TestJuseConformance(ProviderConformance):
        provider = "juse"

Everything else has defaults taken from the provider's declaration: the simulator class
(``Provider.simulator``), its ``demo_config()`` and ``demo_message()``. Override
:meth:`make_simulator`, :meth:`config`, :meth:`message` or :meth:`tampered_config` where the
defaults do not fit.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from .. import hookspecs
from ..config import ProviderConfig, is_secret, structure_config
from ..errors import ConfigError
from ..sending.gateway import Gateway
from ..models import (Balance, DeliveryReport, HttpRequest, InboundMessage, Message, Operation, Outcome,
                      PullQuery)
from ..plugins import PluginManager
from .simulator import Fault, SimulatorServer, load_simulator

FIXED_TIME = 1726631416.0
FIXED_NONCE = "6bab44992f9e4164812824e4aaf51628"

SEND_OPS = (Operation.SEND, Operation.SEND_BATCH)


def _rotate(value: str) -> str:
    """A same-length, same-alphabet variant of a secret (keeps base64 and hex secrets well-formed)."""
    if not value:
        return "x"
    first = value[0]
    for alphabet in ("0123456789", "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
        if first in alphabet:
            return alphabet[(alphabet.index(first) + 1) % len(alphabet)] + value[1:]
    return "A" + value[1:]


class ProviderConformance:
    """Subclass with ``provider = "<name>"``; pytest collects the inherited tests."""

    provider: str = ""
    #: set False for a vendor that signs nothing (a wrong secret is then still refused, as bad credentials)
    signs_requests: bool = True

    # -- hooks a plugin may override -------------------------------------------------------
    def make_simulator(self) -> SimulatorServer:
        path = self.spec().simulator
        assert path, f"provider {self.provider!r} declares no simulator"
        simulator: SimulatorServer = load_simulator(path)()
        return simulator

    def config(self, simulator: SimulatorServer) -> dict[str, Any]:
        return simulator.demo_config()

    def message(self, simulator: SimulatorServer, operation: Operation) -> Message:
        message: Message = simulator.demo_message(operation)
        return message

    def tampered_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """The config with every secret changed (same length and alphabet)."""
        fields = attrs.fields(self.spec().config_class)
        return {k: (_rotate(v) if isinstance(v, str) and any(f.name == k and is_secret(f) for f in fields) else v)
                for k, v in config.items()}

    # -- helpers ---------------------------------------------------------------------------
    def spec(self) -> Any:
        return self.plugin_manager().provider(self.provider).spec

    _pm: PluginManager | None = None

    @classmethod
    def plugin_manager(cls) -> PluginManager:
        if cls._pm is None:
            cls._pm = PluginManager()
        return cls._pm

    def gateway(self, values: dict[str, Any], **kwargs: Any) -> Gateway:
        return Gateway({"providers": {self.provider: values}}, plugins=self.plugin_manager(), **kwargs)

    def send_ops(self) -> list[Operation]:
        return [op for op in SEND_OPS if op in self.spec().capabilities.operations]

    @pytest.fixture
    def simulator(self) -> Iterator[SimulatorServer]:
        sim = self.make_simulator()
        sim.start()
        try:
            yield sim
        finally:
            sim.stop()

    # -- the suite -------------------------------------------------------------------------
    def test_provider_is_declared(self) -> None:
        assert self.provider, "set `provider = <name>` on the conformance subclass"
        pm = self.plugin_manager()
        assert not [b for b in pm.broken if b.name == self.provider], pm.broken
        spec = self.spec()
        assert spec.name == self.provider
        assert attrs.has(spec.config_class) and issubclass(spec.config_class, ProviderConfig)
        caps = spec.capabilities
        assert Operation.SEND in caps.operations, "every provider sends"
        for op in self.send_ops():
            assert caps.max_recipients.get(op, 0) >= 1, f"declare max_recipients for {op.value}"
        assert caps.templates or caps.text

    def test_provider_is_declared_without_importing_its_hooks(self) -> None:
        """Discovery (``smsgate providers``, every command's start) reads the plugin's declaration
        only: a :class:`smsgate.Provider` naming its ``hooks`` module and ``config_class``, which
        are imported when the provider is first used (docs/writing-a-plugin.md, "Declare")."""
        import subprocess
        import sys

        code = (
            "import json, sys\n"
            "from smsgate import PluginManager, Provider\n"
            f"entry = PluginManager().providers.get({self.provider!r})\n"
            "spec = entry and entry.spec\n"
            "hooks = spec.hooks if isinstance(spec, Provider) else None\n"
            "package = (hooks or '').rpartition('.')[0]\n"
            "config = spec.config_class if isinstance(spec and spec.config_class, str) else None\n"
            "imported = sorted(m for m in sys.modules if package and m.startswith(package + '.'))\n"
            "from smsgate.entrypoints import entry_points\n"
            f"values = [e.value for e in entry_points('smsgate') if e.name == {self.provider!r}]\n"
            "print(json.dumps({'found': entry is not None, 'loaded': bool(entry and entry.plugin is not None),\n"
            "                  'hooks': hooks, 'config': config, 'imported': imported, 'entry_point': values}))\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        seen = json.loads(out.stdout.strip().splitlines()[-1])
        assert seen["found"], f"provider {self.provider!r} not found by discovery"
        how = ("declare it with a smsgate.Provider(name=..., hooks='pkg.plugin', config_class='pkg.plugin:Config', "
               "capabilities=...) in the package and point the entry point at it (docs/writing-a-plugin.md)")
        assert seen["hooks"], f"provider {self.provider!r} is declared by its hooks module: {how}"
        stale = [v for v in seen["entry_point"] if v == seen["hooks"]]
        assert not stale, (f"the installed entry point {self.provider} = {stale[0]!r} names the hooks module, not "
                           "the declaration: name it ('package:PROVIDER'), and reinstall (pip install -e) if "
                           "pyproject.toml already does")
        assert seen["config"], f"provider {self.provider!r}: give config_class as 'module:Class': {how}"
        assert not seen["loaded"] and not seen["imported"], (
            f"listing providers imported {seen['imported']} of {self.provider!r}: its declaration must not "
            "import the hooks, the Config class, the dialect or the vendor's JSON classes")

    def test_hooks_exist_in_specs_and_are_documented(self) -> None:
        pm = self.plugin_manager()
        implemented = set(pm.implemented_hooks(self.provider))
        for name in implemented:
            spec = getattr(hookspecs, name, None)
            assert spec is not None, f"{name} is not an smsgate hook"
            assert (inspect.getdoc(spec) or "").strip(), f"hook {name} has no documentation"
        for required in ("build_request", "parse_response"):
            assert required in implemented, f"provider must implement {required}"
        assert "smsgate_provider" not in implemented, (
            "the provider is declared twice: by its Provider declaration and by a smsgate_provider hook")
        callbacks = self.spec().capabilities.callbacks
        if callbacks:
            assert {"verify_callback", "parse_callback"} <= implemented, "pushes need verify/parse_callback"

    def test_config_rejects_unknown_and_missing_keys(self, simulator: SimulatorServer) -> None:
        cls = self.spec().config_class
        values = self.config(simulator)
        with pytest.raises(ConfigError) as err:
            structure_config(self.provider, cls, {**values, "no_such_key": 1}, environ={})
        assert "no_such_key" in str(err.value) and self.provider in str(err.value)
        required = [f.name for f in attrs.fields(cls) if f.default is attrs.NOTHING]
        for name in required:
            partial = {k: v for k, v in values.items() if k != name}
            with pytest.raises(ConfigError) as err:
                structure_config(self.provider, cls, partial, environ={})
            assert name in str(err.value)

    def test_secrets_stay_out_of_repr(self, simulator: SimulatorServer) -> None:
        cls = self.spec().config_class
        config = structure_config(self.provider, cls, self.config(simulator), environ={})
        text = repr(config)
        for field in attrs.fields(cls):
            value = getattr(config, field.name)
            if is_secret(field) and isinstance(value, str) and value:
                assert value not in text, f"secret {field.name} shows in repr"

    def test_signing_is_deterministic_under_fixed_clock_and_nonce(self, simulator: SimulatorServer) -> None:
        gw = self.gateway(self.config(simulator), clock=lambda: FIXED_TIME, nonce=lambda: FIXED_NONCE)
        hooks = gw.hooks(self.provider)
        for op in self.send_ops():
            from ..sending.pipeline import normalise_recipients

            from ..sending.pipeline import plan

            msg = normalise_recipients(self.message(simulator, op))
            built = []
            for _ in range(2):
                ctx = gw.context(self.provider, op)
                msg2 = hooks.validate_message(ctx=ctx, message=msg) or msg
                limit = hooks.request_limit(ctx=ctx, operation=op) or self.spec().capabilities.limit(op)
                req = hooks.build_request(ctx=ctx, operation=op, payload=plan(msg2, limit)[0])
                assert isinstance(req, HttpRequest)
                req = hooks.sign(ctx=ctx, operation=op, request=req) or req
                built.append(req)
            assert built[0] == built[1], f"{op.value}: same clock and nonce must give the same bytes"

    def _roundtrip_send(self, simulator: SimulatorServer, op: Operation) -> Any:
        gw = self.gateway(self.config(simulator))
        msg = self.message(simulator, op)
        result = gw.send(msg)
        assert result.ok, result.to_json_dict()
        assert result.message_ids
        assert len(result.recipients) == len({r for r in msg.to})
        assert simulator.requests, "the simulator saw no request"
        return gw, result

    def test_send_round_trips_through_simulator(self, simulator: SimulatorServer) -> None:
        self._roundtrip_send(simulator, Operation.SEND)

    def test_personalised_send_round_trips(self, simulator: SimulatorServer) -> None:
        if Operation.SEND_BATCH not in self.spec().capabilities.operations:
            pytest.skip("no personalised send")
        self._roundtrip_send(simulator, Operation.SEND_BATCH)

    def test_report_pull_round_trips(self, simulator: SimulatorServer) -> None:
        if Operation.PULL_REPORTS not in self.spec().capabilities.operations:
            pytest.skip("no report pull")
        gw, result = self._roundtrip_send(simulator, Operation.SEND)
        made = simulator.deliver_all()
        reports = gw.pull_reports(self.provider, PullQuery(message_ids=result.message_ids,
                                                               phones=tuple(result.accepted)))
        assert made >= 1 and len(reports) == made
        assert all(isinstance(r, DeliveryReport) for r in reports)
        assert {r.phone for r in reports} <= set(result.accepted)

    def test_inbound_pull_round_trips(self, simulator: SimulatorServer) -> None:
        if Operation.PULL_INBOUND not in self.spec().capabilities.operations:
            pytest.skip("no inbound pull")
        gw = self.gateway(self.config(simulator))
        inbound = gw.pull_inbound(self.provider)
        assert all(isinstance(m, InboundMessage) for m in inbound)

    def test_balance_round_trips(self, simulator: SimulatorServer) -> None:
        if Operation.BALANCE not in self.spec().capabilities.operations:
            pytest.skip("no balance query")
        balance = self.gateway(self.config(simulator)).balance(self.provider)
        assert isinstance(balance, Balance)

    def test_wrong_secret_is_refused_and_classified(self, simulator: SimulatorServer) -> None:
        gw = self.gateway(self.tampered_config(self.config(simulator)))
        result = gw.send(self.message(simulator, Operation.SEND))
        assert not result.ok
        assert result.rejected and not result.unknown, result.to_json_dict()
        assert all(r.reason is not None and r.reason.not_sent for r in result.rejected)

    # -- faults: never resend what may have arrived --------------------------------------
    def _fault_gateway(self, simulator: SimulatorServer) -> Gateway:
        return self.gateway({**self.config(simulator), "read_timeout": 0.5, "connect_timeout": 1.0})

    @pytest.mark.parametrize("fault", [Fault.HTTP_500, Fault.SLOW, Fault.RESET_AFTER_READ, Fault.MALFORMED])
    def test_fault_after_sending_is_unknown_and_not_resent(self, simulator: SimulatorServer, fault: Fault) -> None:
        simulator.slow_seconds = 1.2
        gw = self._fault_gateway(simulator)
        msg = self.message(simulator, Operation.SEND)
        simulator.inject(fault)
        result = gw.send(msg)
        assert result.unknown and not result.accepted, result.to_json_dict()
        assert len(simulator.requests) == 1, "the request must not be sent again"

    def test_reset_before_read_is_unknown_and_not_resent(self, simulator: SimulatorServer) -> None:
        gw = self._fault_gateway(simulator)
        simulator.inject(Fault.RESET_BEFORE_READ)
        result = gw.send(self.message(simulator, Operation.SEND))
        assert result.unknown and not result.accepted, result.to_json_dict()
        assert simulator.resets_before_read == 1 and not simulator.requests

    def test_refused_connection_is_retried_then_rejected(self, simulator: SimulatorServer) -> None:
        values = {**self.config(simulator), "connect_retries": 2}
        simulator.stop()
        gw = self.gateway(values)
        result = gw.send(self.message(simulator, Operation.SEND))
        assert result.rejected and not result.unknown and not result.accepted
        reason = result.rejected[0].reason
        assert reason is not None and reason.code == "CONNECT" and reason.not_sent
        assert "3 attempt" in reason.message

    def test_logs_mask_phones_and_hide_secrets(self, simulator: SimulatorServer) -> None:
        from ..log import capture_logs

        values = self.config(simulator)
        cls = self.spec().config_class
        secrets = [v for f in attrs.fields(cls) if is_secret(f) for k, v in values.items()
                   if k == f.name and isinstance(v, str) and v]
        msg = self.message(simulator, Operation.SEND)
        with capture_logs() as logs:
            self.gateway(values).send(msg)
            self.gateway(self.tampered_config(values)).send(msg)
        text = json.dumps(logs, default=str, ensure_ascii=False)
        assert logs, "sending should log"
        from ..phones import normalise_phone

        for phone in msg.to:
            assert str(normalise_phone(phone)) not in text, "a full phone number reached the logs"
        for value in secrets:
            assert value not in text, "a secret reached the logs"
