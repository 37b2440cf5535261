from smsgate import Message, Operation
from smsgate.testing import ProviderConformance


class TestAliyunConformance(ProviderConformance):
    provider = "aliyun"

    def message(self, simulator, operation):
        # QuerySendDetails looks up one phone a call, so the suite's send-then-pull round trip
        # sends to one phone; many-number sends are covered by test_send.py.
        if operation == Operation.SEND:
            return Message(to=["13800138000"], template_id="SMS_154950909", params={"code": "1234"})
        return simulator.demo_message(operation)
