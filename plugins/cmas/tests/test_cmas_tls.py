"""The TLS switch against an HTTPS simulator with a certificate made for the test.

The document tells customers to skip certificate checks (注4). smsgate keeps them on: with
``verify_tls`` left at true a self-signed platform is refused before anything is sent; with
``verify_tls = false`` the send goes through and the transport logs a warning.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest
from smsgate.testing import capture_logs

from smsgate import Gateway, Message
from smsgate.sending.transport import Transport
from smsgate_cmas.simulator import CmasSimulator

pytestmark = [
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
    # urllib3's own warning for unverified requests is expected where verify_tls = false
    pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning"),
]


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )
    return str(cert), str(key)


@pytest.fixture
def tls_sim(self_signed):
    with CmasSimulator(tls=self_signed) as sim:
        yield sim


def _gateway(sim, **overrides):
    # a transport of its own, so that its once-per-provider warning is not used up elsewhere
    return Gateway({"providers": {"cmas": {**sim.demo_config(), "connect_retries": 0, **overrides}}},
                   transport=Transport())


def test_simulator_speaks_https(tls_sim):
    assert tls_sim.url.startswith("https://127.0.0.1:")


def test_certificate_is_checked_by_default_and_refusal_proves_not_sent(tls_sim):
    with capture_logs() as logs:
        result = _gateway(tls_sim).send(Message(to=["13800138000"], text="验证码 1234"))
    assert not result.ok and not result.unknown and not result.accepted, result.to_json_dict()
    [rejected] = result.rejected
    assert rejected.reason.not_sent and rejected.reason.code == "CONNECT"
    assert "TLS" in rejected.reason.message
    assert not tls_sim.requests and not tls_sim.accepted
    assert not [e for e in logs if e["event"] == "smsgate.transport.tls_unverified"]


def test_verify_tls_false_sends_and_logs_the_warning(tls_sim):
    with capture_logs() as logs:
        result = _gateway(tls_sim, verify_tls=False).send(Message(to=["13800138000"], text="验证码 1234"))
    assert result.ok, result.to_json_dict()
    assert result.message_ids == [tls_sim.accepted[0]["mgsGroup"]]
    warnings = [e for e in logs if e["event"] == "smsgate.transport.tls_unverified"]
    assert len(warnings) == 1 and warnings[0]["provider"] == "cmas" and warnings[0]["log_level"] == "warning"


def test_verify_tls_false_also_for_pulls(tls_sim):
    tls_sim.add_inbound("13800138000", "你好")
    [msg] = _gateway(tls_sim, verify_tls=False).pull_inbound("cmas")
    assert msg.content == "你好"
