from smsgate.testing import ProviderConformance


class TestOpassConformance(ProviderConformance):
    provider = "opass"
