"""smsgate provider plugin for opass.

``PROVIDER`` declares the provider: smsgate's plugin discovery reads it (the entry point names it)
without importing the hooks, the Config class or the vendor's dialect, which are in
:mod:`smsgate_opass.plugin` and imported when the provider is first used.
"""

from __future__ import annotations

from smsgate import Budget, Capabilities, Operation, Provider

MAX_PHONES = 1000  #: /message/send and /message/sendBatch: "最多可以向1000个手机号码"
#: the query interfaces the FAQ's three calls a minute cover
QUERY_OPERATIONS = frozenset({Operation.PULL_REPORTS, Operation.BALANCE, Operation.STATISTICS})

CAPABILITIES = Capabilities(
    operations={Operation.SEND, Operation.SEND_BATCH, Operation.PULL_REPORTS, Operation.BALANCE,
                Operation.STATISTICS},
    max_recipients={Operation.SEND: MAX_PHONES, Operation.SEND_BATCH: MAX_PHONES},
    templates=True,
    text=False,  # template only; free text needs a one-variable template (the document's "大变量")
    named_params=False,  # variables are positional: a JSON array
    positional_params=True,
    scheduling=False,  # FAQ: "接口短信是否支持定时发送？不支持"
    callbacks={"report", "inbound"},
    budgets=(
        # FAQ: "查询类接口默认每个企业每分钟只允许请求三次": every query call counts together
        Budget("query", QUERY_OPERATIONS, calls=3, per=60.0),
        Budget("balance", {Operation.BALANCE}, calls=1, per=15.0),  # "默认限制15秒一次"
        Budget("statistics", {Operation.STATISTICS}, calls=4, per=60.0),  # "单用户QPS限制4次/分钟"
    ),
    # the report pull section: "建议查询频次1分钟"; it also leaves room in the query budget
    poll_interval=60.0,
    rate="300/second",  # FAQ: "当前短信API接口吞吐量约300/TPS"
)

PROVIDER = Provider(
    name="opass",
    hooks="smsgate_opass.plugin",
    config_class="smsgate_opass.plugin:OpassConfig",
    capabilities=CAPABILITIES,
    description="经分助手 / infocloud (opassapi.infocloud.com.cn): HMAC-signed template SMS, report pull and pushes",
    simulator="smsgate_opass.simulator:OpassSimulator",
)
