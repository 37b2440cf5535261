"""Tutorial plugin: the Acme SMS API (see docs/writing-a-plugin.md).

``PROVIDER`` declares the provider. smsgate reads it to list providers (the entry point names
it) without importing the hooks, which are in plugin.py and imported when the provider is used.
"""

from smsgate import Capabilities, Operation, Provider

PROVIDER = Provider(
    name="acme",
    hooks="smsgate_acme.plugin",  # the module with the hooks
    config_class="smsgate_acme.plugin:AcmeConfig",
    capabilities=Capabilities(operations={Operation.SEND}, max_recipients={Operation.SEND: 50},
                              templates=False, text=True, max_text_length=300),
    description="Acme SMS (tutorial)",
    simulator="smsgate_acme.simulator:AcmeSimulator",
)
