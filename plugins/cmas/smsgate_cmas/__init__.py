"""smsgate provider plugin for cmas.

``PROVIDER`` declares the provider: smsgate's plugin discovery reads it (the entry point names it)
without importing the hooks, the Config class or the vendor's dialect, which are in
:mod:`smsgate_cmas.plugin` and imported when the provider is first used.
"""

from __future__ import annotations

from smsgate import Budget, Capabilities, Operation, Provider

#: the most mobiles one ``/sms/submit`` or ``/sms/tmpsubmit`` takes
MAX_MOBILES = 5000
#: many-to-many submits carry *fewer than* 1000 numbers
MAX_PERSONAL = 999
#: 注3: pulls at most once per 5 seconds (taken as one budget for both pulls together)
PULL_INTERVAL = 5.0

CAPABILITIES = Capabilities(
    operations={Operation.SEND, Operation.SEND_BATCH, Operation.PULL_REPORTS, Operation.PULL_INBOUND},
    max_recipients={Operation.SEND: MAX_MOBILES, Operation.SEND_BATCH: MAX_PERSONAL},
    templates=True,
    text=True,
    named_params=False,  # params travel as a JSON array
    positional_params=True,
    scheduling=False,
    callbacks=frozenset(),
    # 注3 "在获取状态报告和上行短息请求5秒钟内只能请求一次" may mean one call per 5 s for each
    # pull or for both together: the cautious reading, one budget for both, can never be refused
    budgets=(Budget("pull", {Operation.PULL_REPORTS, Operation.PULL_INBOUND}, calls=1, per=PULL_INTERVAL),),
    max_text_length=None,  # the document gives none
)

PROVIDER = Provider(
    name="cmas",
    hooks="smsgate_cmas.plugin",
    config_class="smsgate_cmas.plugin:CmasConfig",
    capabilities=CAPABILITIES,
    description="China Mobile 云MAS HTTPS (submit, tmpsubmit, report and inbound pulls)",
    simulator="smsgate_cmas.simulator:CmasSimulator",
)
