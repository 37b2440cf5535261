from smsgate.testing import ProviderConformance


class TestTencentConformance(ProviderConformance):
    provider = "tencent"
