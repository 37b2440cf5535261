from smsgate import Gateway, Message
from smsgate.testing import ProviderConformance
from smsgate_acme.simulator import AcmeSimulator


class TestAcmeConformance(ProviderConformance):
    provider = "acme"


def test_large_send_is_cut_into_requests_of_50():
    with AcmeSimulator() as sim:
        gw = Gateway({"providers": {"acme": sim.demo_config()}})
        result = gw.send(Message(to=[f"139{i:08d}" for i in range(120)], text="hello"))
    assert result.ok and len(sim.requests) == 3 and len(result.message_ids) == 3
