"""TC3-HMAC-SHA256 against the reference's own worked example, byte for byte.

Tencent Cloud's "签名方法 v3" page signs a CVM ``DescribeInstances`` call at X-TC-Timestamp
1551113065. Its current (Chinese) text signs ``content-type;host;x-tc-action`` with SecretId
``AKID`` + 32 asterisks and SecretKey 32 asterisks, and prints every intermediate value; its English
text signs ``content-type;host`` with SecretKey ``Gu5t9xGARNpq86cd98joQYCN3EXAMPLE``. Both are checked.
"""

from __future__ import annotations

from smsgate import Gateway, Message, Operation
from smsgate_tencent import dialect
from smsgate_tencent.simulator import TencentSimulator

TIMESTAMP = 1551113065
PAYLOAD = b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
HEADERS = {
    "Content-Type": "application/json; charset=utf-8",
    "Host": "cvm.tencentcloudapi.com",
    "X-TC-Action": "DescribeInstances",
    "X-TC-Timestamp": "1551113065",
    "X-TC-Version": "2017-03-12",
    "X-TC-Region": "ap-guangzhou",
}

# -- the current reference (签名方法 v3, Chinese) -----------------------------------------------------
SECRET_ID = "AKID" + "*" * 32
SECRET_KEY = "*" * 32
CANONICAL_REQUEST = (
    "POST\n"
    "/\n"
    "\n"
    "content-type:application/json; charset=utf-8\n"
    "host:cvm.tencentcloudapi.com\n"
    "x-tc-action:describeinstances\n"
    "\n"
    "content-type;host;x-tc-action\n"
    "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
)
STRING_TO_SIGN = (
    "TC3-HMAC-SHA256\n"
    "1551113065\n"
    "2019-02-25/cvm/tc3_request\n"
    "7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84"
)
SECRET_DATE = "da98fb70dcf6b112dc21038d1eeeb3a95c74b4dcb12c1131f864f6066bd02be0"
SECRET_SERVICE = "8d70cbefb03939f929db64d32dc2ba89b1095620119fe3e050e2b18c5bd2752f"
SECRET_SIGNING = "b596b923aad85185e2d1f6659d2a062e0a86731226e021e61bfe06f7ed05f5af"
SIGNATURE = "10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f"
AUTHORIZATION = (
    "TC3-HMAC-SHA256 Credential=AKID********************************/2019-02-25/cvm/tc3_request, "
    "SignedHeaders=content-type;host;x-tc-action, "
    "Signature=10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f"
)


def test_payload_hash_and_date_are_the_references():
    assert dialect.sha256_hex(PAYLOAD) == "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    # 2019-02-26 00:44:25 in UTC+8, but the scope takes the UTC date
    assert dialect.utc_date(TIMESTAMP) == "2019-02-25"
    assert dialect.credential_scope(TIMESTAMP, "cvm") == "2019-02-25/cvm/tc3_request"


def test_current_reference_example_byte_for_byte():
    signed = dialect.sign(secret_id=SECRET_ID, secret_key=SECRET_KEY, service="cvm", timestamp=TIMESTAMP,
                          method="POST", headers=HEADERS, payload=PAYLOAD)
    assert signed.canonical_request == CANONICAL_REQUEST
    assert signed.string_to_sign == STRING_TO_SIGN
    assert [k.hex() for k in dialect.signing_keys(SECRET_KEY, "2019-02-25", "cvm")] == [
        SECRET_DATE, SECRET_SERVICE, SECRET_SIGNING]
    assert signed.signature == SIGNATURE
    assert signed.authorization == AUTHORIZATION


def test_english_reference_example_with_two_signed_headers():
    signed = dialect.sign(secret_id="AKID**********************0123456789EXAMPLE",
                          secret_key="Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", service="cvm", timestamp=TIMESTAMP,
                          method="POST", headers=HEADERS, payload=PAYLOAD, signed=("content-type", "host"))
    assert signed.canonical_request == (
        "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n"
        "content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064")
    assert signed.string_to_sign.endswith("\n5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031")
    assert signed.authorization == (
        "TC3-HMAC-SHA256 Credential=AKID**********************0123456789EXAMPLE/2019-02-25/cvm/tc3_request, "
        "SignedHeaders=content-type;host, "
        "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168")


def test_a_changed_byte_changes_the_signature():
    base = dialect.sign(secret_id=SECRET_ID, secret_key=SECRET_KEY, service="cvm", timestamp=TIMESTAMP,
                        method="POST", headers=HEADERS, payload=PAYLOAD).signature
    for changed in (
        dict(payload=PAYLOAD.replace(b"1", b"2", 1)),
        dict(headers={**HEADERS, "X-TC-Action": "RunInstances"}),
        dict(timestamp=TIMESTAMP + 1),
        dict(secret_key="*" * 31 + "x"),
    ):
        args = {**dict(secret_id=SECRET_ID, secret_key=SECRET_KEY, service="cvm", timestamp=TIMESTAMP,
                       method="POST", headers=HEADERS, payload=PAYLOAD), **changed}
        assert dialect.sign(**args).signature != base, changed


def test_plugin_request_under_a_fixed_clock():
    """The plugin's own SendSms at the reference's timestamp: the headers it sends are the ones it
    signs, and the signature is the dialect's over exactly those bytes."""
    with TencentSimulator() as sim:
        gw = Gateway({"providers": {"tencent": {**sim.demo_config(), "base_url": "https://sms.tencentcloudapi.com"}}},
                     clock=lambda: float(TIMESTAMP))
        hooks = gw.hooks("tencent")
        ctx = gw.context("tencent", Operation.SEND)
        msg = hooks.validate_message(ctx=ctx, message=Message(to=["13800138000"], template_id="1110",
                                                              params=["4370"]))
        request = hooks.build_request(ctx=ctx, operation=Operation.SEND, payload=msg)
        request = hooks.sign(ctx=ctx, operation=Operation.SEND, request=request)
    assert request.url == "https://sms.tencentcloudapi.com/"
    assert request.body == ('{"PhoneNumberSet":["+8613800138000"],"SmsSdkAppId":"1400006666","TemplateId":"1110",'
                            '"SignName":"腾讯云","TemplateParamSet":["4370"]}').encode("utf-8")
    assert dict(request.headers) == {
        "Content-Type": "application/json; charset=utf-8",
        "Host": "sms.tencentcloudapi.com",
        "X-TC-Action": "SendSms",
        "X-TC-Version": "2021-01-11",
        "X-TC-Region": "ap-guangzhou",
        "X-TC-Timestamp": "1551113065",
        "Authorization": dialect.sign(
            secret_id=sim.secret_id, secret_key=sim.secret_key, service="sms", timestamp=TIMESTAMP,
            method="POST", headers=dict(request.headers), payload=request.body).authorization,
    }
    assert request.header("Authorization").startswith(
        f"TC3-HMAC-SHA256 Credential={sim.secret_id}/2019-02-25/sms/tc3_request, "
        "SignedHeaders=content-type;host;x-tc-action, Signature=")
