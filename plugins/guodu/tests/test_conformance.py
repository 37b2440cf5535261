from smsgate import Message, Operation
from smsgate.testing import ProviderConformance


class TestGuoduConformance(ProviderConformance):
    provider = "guodu"
    signs_requests = False  # the account and password travel in the body; nothing is signed

    def message(self, simulator, operation):
        if operation is Operation.SEND_BATCH:
            # The suite's determinism test calls build_request on the whole message without
            # cutting it into requests; a personalised guodu request holds one phone (submitJson
            # has one Content), so give it a one-phone personalised message. Sending several
            # personalised phones through Gateway is tested in test_send.py.
            return Message.personalised({"13800138000": "【smsgate】您的验证码是 1234"})
        return super().message(simulator, operation)
