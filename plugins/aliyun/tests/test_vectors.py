"""The references' own worked examples, byte for byte.

* Signature V3 ("V3版本请求体&签名机制", its fixed-parameter example): RunInstances on
  ecs.cn-shanghai.aliyuncs.com, key YourAccessKeyId / YourAccessKeySecret. Checked against the
  plugin's dialect and, separately, against the simulator's own verifier.
* The RPC signature (the SMS reference's "签名机制" example): SendSms with testId / testSecret,
  checked against the simulator's verifier of the official SDK's ``signature_algorithm='v2'``.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from smsgate_aliyun import dialect, simulator

V3_QUERY = {"ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd", "RegionId": "cn-shanghai"}
V3_HEADERS = {
    "host": "ecs.cn-shanghai.aliyuncs.com",
    "x-acs-action": "RunInstances",
    "x-acs-version": "2014-05-26",
    "x-acs-date": "2023-10-26T10:22:32Z",
    "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
    "x-acs-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
}
V3_CANONICAL_QUERY = "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai"
V3_CANONICAL_HEADERS = (
    "host:ecs.cn-shanghai.aliyuncs.com\n"
    "x-acs-action:RunInstances\n"
    "x-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
    "x-acs-date:2023-10-26T10:22:32Z\n"
    "x-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\n"
    "x-acs-version:2014-05-26\n"
)
V3_SIGNED_HEADERS = "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version"
V3_STRING_TO_SIGN = "ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
V3_SIGNATURE = "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
V3_AUTHORIZATION = ("ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=" + V3_SIGNED_HEADERS
                    + ",Signature=" + V3_SIGNATURE)

RPC_PARAMS = {
    "SignatureMethod": "HMAC-SHA1", "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "AccessKeyId": "testId", "SignatureVersion": "1.0", "Timestamp": "2017-07-12T02:42:19Z", "Format": "XML",
    "Action": "SendSms", "Version": "2017-05-25", "RegionId": "cn-hangzhou", "PhoneNumbers": "15300000001",
    "SignName": "阿里云短信测试专用", "TemplateParam": '{"customer":"test"}', "TemplateCode": "SMS_71390007",
    "OutId": "123",
}
RPC_SIGNATURE = "zJDF+Lrzhj/ThnlvIToysFRq6t4="
RPC_URL = (
    "http://dysmsapi.aliyuncs.com/?Signature=zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D&AccessKeyId=testId"
    "&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001&RegionId=cn-hangzhou"
    "&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94%A8"
    "&SignatureMethod=HMAC-SHA1&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466&SignatureVersion=1.0"
    "&TemplateCode=SMS_71390007&TemplateParam=%7B%22customer%22%3A%22test%22%7D"
    "&Timestamp=2017-07-12T02%3A42%3A19Z&Version=2017-05-25"
)


def test_v3_example_through_the_dialect_step_by_step():
    assert dialect.canonical_query(V3_QUERY) == V3_CANONICAL_QUERY
    assert dialect.sha256_hex(b"") == V3_HEADERS["x-acs-content-sha256"]
    names = dialect.signed_header_names(V3_HEADERS)
    assert ";".join(names) == V3_SIGNED_HEADERS
    assert dialect.canonical_headers(V3_HEADERS, names) == V3_CANONICAL_HEADERS
    canonical = dialect.canonical_request("POST", "/", V3_CANONICAL_QUERY, V3_HEADERS, names,
                                          V3_HEADERS["x-acs-content-sha256"])
    assert dialect.string_to_sign(canonical) == V3_STRING_TO_SIGN
    assert dialect.signature("YourAccessKeySecret", V3_STRING_TO_SIGN) == V3_SIGNATURE
    assert dialect.sign("POST", "/", V3_CANONICAL_QUERY, V3_HEADERS, "YourAccessKeyId",
                        "YourAccessKeySecret") == V3_AUTHORIZATION


def test_v3_example_through_the_simulators_own_verifier():
    text = simulator.v3_string_to_sign("POST", "/", list(V3_QUERY.items()), V3_HEADERS,
                                       V3_SIGNED_HEADERS.split(";"), V3_HEADERS["x-acs-content-sha256"])
    assert text == V3_STRING_TO_SIGN
    assert simulator.v3_signature("YourAccessKeySecret", text) == V3_SIGNATURE


def test_v3_a_changed_byte_changes_the_signature():
    headers = {**V3_HEADERS, "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703e"}
    assert dialect.sign("POST", "/", V3_CANONICAL_QUERY, headers, "YourAccessKeyId",
                        "YourAccessKeySecret") != V3_AUTHORIZATION


def test_rpc_example_through_the_simulators_verifier():
    assert simulator.v1_signature("GET", RPC_PARAMS, "testSecret") == RPC_SIGNATURE
    # the example's final URL carries exactly these parameters and this signature
    params = dict(parse_qsl(urlsplit(RPC_URL).query))
    assert params.pop("Signature") == RPC_SIGNATURE and params == RPC_PARAMS
    assert simulator.v1_signature("GET", {**params, "Signature": RPC_SIGNATURE}, "testSecret") == RPC_SIGNATURE


def test_percent_encoding_is_rfc3986_on_both_sides():
    for text in ["a b*c~d+e/f", "阿里云", "{\"k\":\"v\"}", "-_.~", "%"]:
        assert dialect.percent_encode(text) == simulator.rfc3986(text)
    assert dialect.percent_encode("a b*c~") == "a%20b%2Ac~"
