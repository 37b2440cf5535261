from smsgate.testing import ProviderConformance


class TestJuseConformance(ProviderConformance):
    provider = "juse"
