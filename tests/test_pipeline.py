import threading
import time

import pytest

from smsgate import (Gateway, Message, Operation, Outcome, ValidationError, hookimpl)
from smsgate.testing import Fault, LoopbackSimulator


def gateway(**values):
    return Gateway({"providers": {"loopback": values}})


def test_one_validation_error_names_every_bad_number(smsgate_outbox):
    with pytest.raises(ValidationError) as err:
        gateway().send(Message(to=["12345", "13800138000", "+1 555 0100", "138-0013-800"], text="hi"))
    assert err.value.invalid == ("12345", "+1 555 0100", "138-0013-800")
    for bad in err.value.invalid:
        assert repr(bad) in str(err.value)
    assert smsgate_outbox == []  # nothing sent


def test_duplicates_removed_after_normalising(smsgate_outbox):
    result = gateway().send(Message(to=["13800138000", "+86 138 0013 8000", "0086-13800138000"], text="hi"))
    assert result.accepted == ["13800138000"]
    assert len(smsgate_outbox) == 1


def test_work_is_cut_by_the_providers_limit_and_every_recipient_has_an_outcome():
    phones = [f"139{i:08d}" for i in range(250)]
    with LoopbackSimulator() as sim:
        result = Gateway({"providers": {"loopback": sim.demo_config()}}).send(Message(to=phones, text="hi"))
        assert [len(r.json()["phones"]) for r in sim.requests] == [100, 100, 50] or sorted(
            len(r.json()["phones"]) for r in sim.requests) == [50, 100, 100]
    assert result.ok and [r.phone for r in result.recipients] == phones
    assert len(result.message_ids) == 3


def test_requests_run_concurrently_within_the_bound():
    in_flight, peak, lock = [0], [0], threading.Lock()

    class Gauge:
        @hookimpl(wrapper=True)
        def transmit(self, ctx, request):
            with lock:
                in_flight[0] += 1
                peak[0] = max(peak[0], in_flight[0])
            try:
                time.sleep(0.05)
                return (yield)
            finally:
                with lock:
                    in_flight[0] -= 1

    with LoopbackSimulator() as sim:
        gw = Gateway({"providers": {"loopback": {**sim.demo_config(), "max_concurrency": 3}}})
        gw.plugins.register(Gauge())
        result = gw.send(Message(to=[f"139{i:08d}" for i in range(1000)], text="hi"))
    assert result.ok and len(sim.requests) == 10
    assert 1 < peak[0] <= 3


def test_rejections_in_a_batch_are_per_recipient(smsgate_outbox):
    gw = gateway(reject_numbers=["13900139000"])
    result = gw.send(Message(to=["13800138000", "13900139000"], template_id="T", params={"code": "1"}))
    assert not result.ok
    assert result.accepted == ["13800138000"]
    assert [(r.phone, r.reason.code) for r in result.rejected] == [("13900139000", "REJECTED")]


def test_personalised_message(smsgate_outbox):
    msg = Message.personalised({"+86 13800138000": "hello A", "13900139000": "hello B"})
    result = gateway().send(msg)
    assert result.ok and msg.operation is Operation.SEND_BATCH
    assert {(r.phone, r.text) for r in smsgate_outbox} == {("13800138000", "hello A"), ("13900139000", "hello B")}


def test_personalised_duplicate_with_different_content_is_refused():
    with pytest.raises(ValidationError, match="twice"):
        gateway().send(Message.personalised({"13800138000": "a", "+8613800138000": "b"}))


@pytest.mark.parametrize("kwargs,field", [
    (dict(to=[], text="x"), "to"),
    (dict(to=["13800138000"]), "template_id"),
    (dict(to=["13800138000"], text="   "), "text"),
    (dict(to=["13800138000"], text="x", template_id="T"), "text"),
    (dict(to=["13800138000"], text="x" * 1001), "text"),
])
def test_content_errors_name_the_field(kwargs, field):
    with pytest.raises(ValidationError) as err:
        gateway().send(Message(**kwargs))
    assert err.value.field == field


def test_segments_are_reported_for_text(smsgate_outbox):
    assert gateway().send(Message(to=["13800138000"], text="字" * 71)).segments == 2
    assert gateway().send(Message(to=["13800138000"], template_id="T")).segments is None


def test_a_plugin_bug_before_sending_rejects_that_request_without_losing_others():
    calls = []

    class Buggy:
        @hookimpl(wrapper=True)
        def build_request(self, ctx, operation, payload):
            calls.append(ctx.request_index)
            if ctx.request_index == 1:
                raise KeyError("boom")
            return (yield)

    with LoopbackSimulator() as sim:
        gw = Gateway({"providers": {"loopback": {**sim.demo_config(), "max_concurrency": 1}}})
        gw.plugins.register(Buggy())
        result = gw.send(Message(to=[f"139{i:08d}" for i in range(300)], text="hi"))
    assert len(result.accepted) == 200
    assert len(result.rejected) == 100 and result.rejected[0].reason.code == "PLUGIN"
    assert len(sim.requests) == 2


def test_read_timeout_gives_unknown_and_is_not_resent():
    with LoopbackSimulator() as sim:
        sim.slow_seconds = 1.0
        gw = Gateway({"providers": {"loopback": {**sim.demo_config(), "read_timeout": 0.3}}})
        sim.inject(Fault.SLOW)
        result = gw.send(Message(to=["13800138000", "13900139000"], text="hi"))
        assert result.unknown == ["13800138000", "13900139000"] and not result.ok
        assert result.recipients[0].outcome is Outcome.UNKNOWN
        assert "not resent" in result.recipients[0].reason.message
        time.sleep(1.1)
        assert len(sim.requests) == 1
        assert len(sim.records) == 2  # the vendor did take both: which is why they must not be resent


def test_connect_failure_is_retried_until_the_server_is_there():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    sim = LoopbackSimulator(port=port)
    gw = Gateway({"providers": {"loopback": {**{"base_url": f"http://127.0.0.1:{port}", "api_key": "demo-key",
                                                "api_secret": "demo-secret"}, "connect_retries": 5}}})
    gw.transport.backoff = 0.2
    timer = threading.Timer(0.1, sim.start)
    timer.start()
    try:
        result = gw.send(Message(to=["13800138000"], text="hi"))
    finally:
        timer.join()
        sim.stop()
    assert result.ok, result.to_json_dict()
    assert len(sim.requests) == 1


def test_refused_connection_is_rejected_after_retries():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    gw = Gateway({"providers": {"loopback": {"base_url": f"http://127.0.0.1:{port}", "connect_retries": 3}}})
    gw.transport.backoff = 0.01
    result = gw.send(Message(to=["13800138000"], text="hi"))
    reason = result.rejected[0].reason
    assert reason.code == "CONNECT" and reason.not_sent and "4 attempt" in reason.message


def test_a_tls_failure_that_is_not_the_certificate_is_unknown_and_not_resent():
    with LoopbackSimulator() as sim:  # speaks plain HTTP: TLS with it fails
        gw = Gateway({"providers": {"loopback": {**sim.demo_config(), "base_url": sim.url.replace("http:", "https:")}}})
        result = gw.send(Message(to=["13800138000"], text="hi"))
    # urllib3 cannot say whether such a TLS error came before or after the request was written
    assert result.unknown == ["13800138000"] and "TLS" in result.recipients[0].reason.message
    assert not sim.requests


def test_only_a_certificate_failure_proves_not_sent():
    import ssl

    from urllib3.exceptions import SSLError

    from smsgate.sending.transport import _certificate_refused

    cert = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed")
    assert _certificate_refused(SSLError(cert))
    assert not _certificate_refused(SSLError(ssl.SSLError(1, "[SSL: BAD_RECORD_TYPE] bad record type")))
    assert not _certificate_refused(SSLError(ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")))


def paced_gateway(sim, now, slept):
    """A gateway to ``sim`` whose loopback pulls reports at most every 0.3 s, on a fake clock
    (``now[0]``) whose sleeps are recorded in ``slept``."""
    import attrs

    from smsgate import Capabilities
    from smsgate.default_plugins import loopback

    caps = Capabilities(operations=loopback.CAPABILITIES.operations, max_recipients={Operation.SEND: 100},
                        min_interval={Operation.PULL_REPORTS: 0.3}, text=True)
    gw = Gateway({"providers": {"loopback": sim.demo_config()}})
    entry = gw.plugins.providers["loopback"]
    gw.plugins.providers["loopback"] = attrs.evolve(entry, spec=attrs.evolve(entry.spec, capabilities=caps))
    gw.monotonic = lambda: now[0]
    gw.sleep = lambda s: (slept.append(s), now.__setitem__(0, now[0] + s))
    return gw


def test_pull_interval_is_respected():
    now, slept = [100.0], []
    with LoopbackSimulator() as sim:
        gw = paced_gateway(sim, now, slept)
        gw.pull_reports("loopback")
        now[0] += 0.1
        gw.pull_reports("loopback")
        now[0] += 5
        gw.pull_reports("loopback")
    assert slept == [pytest.approx(0.2)]  # waited out the rest of the interval once, not the third time
    assert len(sim.requests) == 3


def test_anything_raised_after_sending_leaves_that_request_unknown_and_keeps_the_others():
    class Audit:
        """An audit wrapper that refuses request 1's answer after the vendor took it."""

        @hookimpl(wrapper=True)
        def parse_response(self, ctx, operation, request, response):
            result = yield
            if ctx.request_index == 1:
                raise ValidationError("audit: unexpected field in vendor answer")
            return result

    with LoopbackSimulator() as sim:
        gw = Gateway({"providers": {"loopback": {**sim.demo_config(), "max_concurrency": 1}}})
        gw.plugins.register(Audit())
        result = gw.send(Message(to=[f"139{i:08d}" for i in range(150)], text="hi"))
        assert len(sim.records) == 150  # the vendor took all of them
    assert len(result.accepted) == 100 and len(result.unknown) == 50
    assert all(not r.reason.not_sent for r in result.recipients if r.outcome is Outcome.UNKNOWN)


def test_a_wrong_reply_type_is_unknown_not_an_exception():
    class Odd:
        @hookimpl(wrapper=True)
        def parse_response(self, ctx, operation, request, response):
            yield
            return {"not": "a SendReply"}

    with LoopbackSimulator() as sim:
        gw = Gateway({"providers": {"loopback": sim.demo_config()}})
        gw.plugins.register(Odd())
        result = gw.send(Message(to=["13800138000"], text="hi"))
    assert result.unknown == ["13800138000"] and result.recipients[0].reason.code == "PLUGIN"


def test_pull_interval_counts_from_the_answer_and_holds_up_only_its_own_kind():
    now, slept = [100.0], []

    class SlowVendor:
        @hookimpl(wrapper=True)
        def transmit(self, ctx, request):
            response = yield
            now[0] += 0.2  # each answer takes 0.2 s of (fake) time
            return response

    with LoopbackSimulator() as sim:
        gw = paced_gateway(sim, now, slept)
        gw.plugins.register(SlowVendor())
        gw.pull_reports("loopback")
        gw.balance("loopback")  # another kind: no wait
        gw.pull_reports("loopback")
    # 0.2 s passed (the balance call) since the first pull's answer: 0.1 s left to wait
    assert slept == [pytest.approx(0.1)]


def test_a_derived_context_keeps_every_field():
    import attrs

    from smsgate import HookContext

    ctx = HookContext(provider="p", config=object(), operation=Operation.SEND, clock=lambda: 1.0,
                      nonce_factory=lambda: "n", request_index=2, extras={"a": 1})
    assert ctx.derive(request_index=5) == attrs.evolve(ctx, request_index=5)
    assert ctx.derive(extras={"b": 2}) == attrs.evolve(ctx, extras={"b": 2})
    assert ctx.derive() == ctx


def test_a_plugin_registered_after_a_send_sees_the_next_one(smsgate_outbox):
    gw = Gateway({"providers": {"loopback": {}}})
    assert gw.send(Message(to=["13800138000"], text="hi")).ok
    seen = []

    class Watcher:
        @hookimpl(wrapper=True)
        def build_request(self, ctx, operation, payload):
            seen.append(ctx.provider)
            return (yield)

    gw.plugins.register(Watcher(), name="watcher")
    assert gw.send(Message(to=["13800138000"], text="hi")).ok
    assert seen == ["loopback"]
