"""smsgate provider plugin for Alibaba Cloud SMS (阿里云短信服务, Dysmsapi 2017-05-25).

``PROVIDER`` declares the provider: smsgate's plugin discovery reads it (the entry point names it)
without importing the hooks, the Config class or the vendor's dialect, which are in
:mod:`smsgate_aliyun.plugin` and imported when the provider is first used.
"""

from __future__ import annotations

from smsgate import Capabilities, Operation, Provider

MAX_SEND_PHONES = 1000  #: SendSms: "上限为1000个手机号码"
MAX_BATCH_PHONES = 100  #: SendBatchSms: at most 100 numbers a request

CAPABILITIES = Capabilities(
    operations={Operation.SEND, Operation.SEND_BATCH, Operation.PULL_REPORTS},
    max_recipients={Operation.SEND: MAX_SEND_PHONES, Operation.SEND_BATCH: MAX_BATCH_PHONES},
    templates=True,
    text=False,  # templates only (approved in the console)
    named_params=True,  # TemplateParam is a JSON object: {"code":"1234"} for ${code}
    positional_params=False,
    scheduling=False,
    callbacks={"report", "inbound"},
)

PROVIDER = Provider(
    name="aliyun",
    hooks="smsgate_aliyun.plugin",
    config_class="smsgate_aliyun.plugin:AliyunConfig",
    capabilities=CAPABILITIES,
    description="Alibaba Cloud SMS (Dysmsapi 2017-05-25): ACS3-HMAC-SHA256, SendSms/SendBatchSms, "
                "QuerySendDetails, SmsReport/SmsUp pushes",
    simulator="smsgate_aliyun.simulator:AliyunSimulator",
)
