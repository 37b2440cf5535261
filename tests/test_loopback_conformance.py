from smsgate.testing import ProviderConformance


class TestLoopbackConformance(ProviderConformance):
    provider = "loopback"
