from smsgate.testing import ProviderConformance


class TestCmasConformance(ProviderConformance):
    provider = "cmas"
