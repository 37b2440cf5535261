"""OpenTelemetry traces: a span per send and, inside it, one per vendor call, with provider,
operation, outcome, vendor code and request id; no-op without an SDK. The SDK (test-only) records
spans in memory; sends go over real HTTP to the loopback simulator."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from smsgate import Gateway, Message, PluginManager, ValidationError
from smsgate.integrations.tracing import Tracing
from smsgate.testing import Fault, LoopbackSimulator

SECRET = "trace-secret"
OK, REFUSED = "13800138000", "13900139000"


@pytest.fixture
def traced():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    sim = LoopbackSimulator(api_key="k", api_secret=SECRET, reject_numbers=[REFUSED]).start()
    pm = PluginManager(load_entrypoints=False)
    Tracing(tracer_provider=provider).install(pm)
    gw = Gateway({"providers": {
        "loopback": {"base_url": sim.url, "api_key": "k", "api_secret": SECRET, "max_concurrency": 4},
        "lb-badkey": {"provider": "loopback", "base_url": sim.url, "api_key": "k", "api_secret": "wrong"},
        "lb-down": {"provider": "loopback", "base_url": "http://127.0.0.1:9", "connect_retries": 0},
    }, "default_provider": "loopback"}, plugins=pm)
    try:
        yield sim, gw, exporter
    finally:
        sim.stop()


def spans(exporter):
    done = exporter.get_finished_spans()
    sends = [s for s in done if s.kind is SpanKind.INTERNAL]
    calls = [s for s in done if s.kind is SpanKind.CLIENT]
    return sends, calls


def test_a_send_of_two_requests_is_one_span_with_two_children(traced):
    _, gw, exporter = traced
    phones = [f"137{i:08d}" for i in range(150)] + [REFUSED]  # 100 per request: two requests, in threads
    result = gw.send(Message(to=phones, template_id="T1", params=["1"]))
    assert len(result.accepted) == 150
    (send,), calls = spans(exporter)
    assert len(calls) == 2
    assert send.name == "smsgate send"
    a = send.attributes
    assert (a["smsgate.provider"], a["smsgate.operation"], a["smsgate.recipients"]) == ("loopback", "send", 151)
    assert (a["smsgate.outcome"], a["smsgate.accepted"], a["smsgate.rejected"], a["smsgate.unknown"]) == \
        ("partial", 150, 1, 0)
    assert tuple(a["smsgate.vendor_codes"]) == ("REJECTED",)
    assert sorted(a["smsgate.request_ids"]) == sorted(result.request_ids)
    assert send.status.status_code is StatusCode.ERROR
    for call in calls:  # children of the send's span although they ran in worker threads
        assert call.parent is not None and call.parent.span_id == send.context.span_id
        assert call.context.trace_id == send.context.trace_id
        assert call.name == "smsgate loopback send"
        assert call.attributes["smsgate.outcome"] == "ok"
        assert call.attributes["smsgate.request_id"] in result.request_ids
        assert call.status.status_code is StatusCode.UNSET
    assert sorted(c.attributes["smsgate.request_index"] for c in calls) == [0, 1]
    assert sorted(c.attributes["smsgate.recipients"] for c in calls) == [51, 100]


def test_each_failure_is_on_its_vendor_span(traced):
    sim, gw, exporter = traced
    gw.send(Message(to=[OK], text="hi"), provider="lb-badkey")
    gw.send(Message(to=[OK], text="hi"), provider="lb-down")
    sim.inject(Fault.HTTP_500)
    gw.send(Message(to=[OK], text="hi"))
    sends, calls = spans(exporter)
    auth, down, broken = calls
    assert auth.attributes["smsgate.outcome"] == "rejected"
    assert auth.attributes["smsgate.vendor_code"] == "AUTH"
    assert auth.attributes["smsgate.request_id"].startswith("lb-")
    assert down.attributes["smsgate.outcome"] == "not_sent"
    assert down.attributes["smsgate.transport_error"] == "connect"
    assert broken.attributes["smsgate.outcome"] == "unknown"
    assert broken.attributes["smsgate.vendor_code"] == "HTTP500"
    assert all(c.status.status_code is StatusCode.ERROR for c in calls)
    assert [s.attributes["smsgate.outcome"] for s in sends] == ["rejected", "rejected", "unknown"]


def test_invalid_message_span_names_the_field_not_the_numbers(traced):
    _, gw, exporter = traced
    with pytest.raises(ValidationError):
        gw.send(Message(to=["12345", OK], text="hi"))
    (send,), calls = spans(exporter)
    assert calls == []
    assert send.attributes["smsgate.outcome"] == "invalid"
    assert send.status.status_code is StatusCode.ERROR and send.status.description == "invalid message (to)"
    assert "12345" not in repr(dict(send.attributes)) + str(send.status.description)
    assert not send.events  # no exception event carrying the message's text


def test_pulls_and_balance_get_vendor_spans(traced):
    sim, gw, exporter = traced
    gw.send(Message(to=[OK], text="hi"))
    sim.deliver_all()
    assert len(gw.pull_reports("loopback")) == 1
    gw.balance("loopback")
    _, calls = spans(exporter)
    pull, balance = calls[1:]
    assert pull.name == "smsgate loopback pull_reports" and pull.attributes["smsgate.events"] == 1
    assert balance.name == "smsgate loopback balance" and balance.attributes["smsgate.outcome"] == "ok"


def test_without_an_sdk_the_spans_are_no_ops():
    from opentelemetry import trace

    seen = []

    class Probe:  # registered after Tracing: runs inside its span
        from smsgate import hookimpl

        @hookimpl(wrapper=True)
        def vendor_request(self):
            seen.append(trace.get_current_span())
            return (yield)

    pm = PluginManager(load_entrypoints=False)
    Tracing().install(pm)  # the global provider: no SDK configured in this process
    pm.register(Probe())
    assert Gateway({"providers": {"loopback": {}}}, plugins=pm).send(Message(to=[OK], text="hi")).ok
    assert len(seen) == 1 and not seen[0].is_recording()


def test_tracing_table_turns_the_plugin_on():
    pm = PluginManager(load_entrypoints=False)
    Gateway({"providers": {"loopback": {}}, "tracing": {}}, plugins=pm)
    assert pm.pm.is_registered(Tracing.default())
    pm2 = PluginManager(load_entrypoints=False)
    Gateway({"providers": {"loopback": {}}, "tracing": {"enabled": False}}, plugins=pm2)
    assert not pm2.pm.is_registered(Tracing.default())


def test_an_async_send_is_a_child_of_the_callers_span(traced):
    import asyncio

    from smsgate.integrations.aio import AsyncGateway

    _, gw, exporter = traced
    tracer = [p for p in gw.plugins.pm.get_plugins() if isinstance(p, Tracing)][0].tracer

    async def handler():
        async with AsyncGateway(gateway=gw) as agw:
            with tracer.start_as_current_span("web request"):
                return await agw.send(Message(to=[OK], text="hi"))

    assert asyncio.run(handler()).ok
    done = {s.name: s for s in exporter.get_finished_spans()}
    request, send, call = done["web request"], done["smsgate send"], done["smsgate loopback send"]
    assert send.parent.span_id == request.context.span_id
    assert call.parent.span_id == send.context.span_id
