"""smsgate provider plugin for Tencent Cloud SMS.

``PROVIDER`` declares the provider: smsgate's plugin discovery reads it (the entry point names it)
without importing the hooks, the Config class or the vendor's dialect, which are in
:mod:`smsgate_tencent.plugin` and imported when the provider is first used.
"""

from __future__ import annotations

from smsgate import Capabilities, Operation, Provider

MAX_PHONES = 200  #: PhoneNumberSet: "单次请求最多支持200个手机号"

CAPABILITIES = Capabilities(
    operations={Operation.SEND, Operation.SEND_BATCH, Operation.PULL_REPORTS, Operation.PULL_INBOUND},
    max_recipients={Operation.SEND: MAX_PHONES, Operation.SEND_BATCH: 1},
    templates=True,
    text=False,  # SendSms takes an approved template only
    named_params=False,  # template variables are {1}, {2} ...: positional
    positional_params=True,
    scheduling=False,  # SendSms has no send time
    callbacks={"report", "inbound"},
)

PROVIDER = Provider(
    name="tencent",
    hooks="smsgate_tencent.plugin",
    config_class="smsgate_tencent.plugin:TencentConfig",
    capabilities=CAPABILITIES,
    description="Tencent Cloud SMS (腾讯云短信, API 2021-01-11): TC3-HMAC-SHA256, per-number outcomes, "
                "status and reply pulls and pushes",
    simulator="smsgate_tencent.simulator:TencentSimulator",
    docs_url="https://cloud.tencent.com/document/product/382/55981",
)
