"""smsgate provider plugin for guodu.

``PROVIDER`` declares the provider: smsgate's plugin discovery reads it (the entry point names it)
without importing the hooks, the Config class or the vendor's dialect, which are in
:mod:`smsgate_guodu.plugin` and imported when the provider is first used.
"""

from __future__ import annotations

from smsgate import Capabilities, Operation, Provider

MAX_TEXT_LENGTH = 500

CAPABILITIES = Capabilities(
    operations={Operation.SEND, Operation.SEND_BATCH},
    # SEND: the default of max_phones (the request_limit hook answers the configured value).
    # SEND_BATCH: submitJson has one Content, so a personalised send is one request a phone.
    max_recipients={Operation.SEND: 200, Operation.SEND_BATCH: 1},
    templates=False,
    text=True,
    scheduling=True,
    callbacks={"report", "inbound"},
    max_text_length=MAX_TEXT_LENGTH,
)

PROVIDER = Provider(
    name="guodu",
    hooks="smsgate_guodu.plugin",
    config_class="smsgate_guodu.plugin:GuoduConfig",
    capabilities=CAPABILITIES,
    description="国都企信通 submitJson: free text to up to 200 phones a request, report pushes",
    simulator="smsgate_guodu.simulator:GuoduSimulator",
)
