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


def test_an_unreadable_answer_names_the_field_and_leaves_recipients_unknown():
    from smsgate import HttpResponse

    class Odd(AcmeSimulator):
        def handle(self, request):
            return HttpResponse.of_json({"status": "ok", "batch": "B1", "bad": "13800138000"})

    with Odd() as sim:
        result = Gateway({"providers": {"acme": sim.demo_config()}}).send(Message(to=["13800138000"], text="x"))
    assert result.unknown == ["13800138000"]
    assert "bad: expected a JSON array" in result.recipients[0].reason.message
