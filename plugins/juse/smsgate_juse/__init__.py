"""smsgate provider plugin for juse.

``PROVIDER`` declares the provider: smsgate's plugin discovery reads it (the entry point names it)
without importing the hooks, the Config class or the vendor's dialect, which are in
:mod:`smsgate_juse.plugin` and imported when the provider is first used.
"""

from __future__ import annotations

from smsgate import Capabilities, Operation, Provider

#: most phones one sendSmsTask request carries (the document's limit)
MAX_TASK_PHONES = 1000

CAPABILITIES = Capabilities(
    operations={Operation.SEND},
    max_recipients={Operation.SEND: MAX_TASK_PHONES},
    templates=True,
    text=False,
    named_params=True,
    positional_params=True,
    scheduling=True,
    callbacks={"report", "inbound", "task"},
)

PROVIDER = Provider(
    name="juse",
    hooks="smsgate_juse.plugin",
    config_class="smsgate_juse.plugin:JuseConfig",
    capabilities=CAPABILITIES,
    description="juse message center (消息中心): template SMS, signed headers, AES-encrypted phones",
    simulator="smsgate_juse.simulator:JuseSimulator",
)
