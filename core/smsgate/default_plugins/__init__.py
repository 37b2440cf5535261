"""Built-in plugins, written exactly like third-party ones: each provider declared here (what
discovery reads), its hooks and Config class in its own module (imported on first use)."""

from __future__ import annotations

from ..provider import Capabilities, Operation, Provider

LOOPBACK = Provider(
    name="loopback",
    hooks="smsgate.default_plugins.loopback",
    config_class="smsgate.default_plugins.loopback:LoopbackConfig",
    capabilities=Capabilities(
        operations={Operation.SEND, Operation.SEND_BATCH, Operation.PULL_REPORTS, Operation.BALANCE},
        max_recipients={Operation.SEND: 100, Operation.SEND_BATCH: 100},
        templates=True,
        text=True,
        scheduling=True,
        callbacks={"report"},
        max_text_length=1000,
    ),
    description="In-process (memory://) or loopback-HTTP fake vendor for tests and demos",
    simulator="smsgate.testing.loopback:LoopbackSimulator",
)
