"""Provider hooks run only for their provider; wrappers see every stage of every request."""

import attrs

from smsgate import (Capabilities, Gateway, PluginManager, HttpRequest, HttpResponse, Message, Operation, Provider,
                     ProviderConfig, SendReply, hookimpl)
from smsgate.testing import LoopbackSimulator


@attrs.frozen(kw_only=True)
class EchoConfig(ProviderConfig):
    base_url: str = "memory://echo"


class Echo:
    """A second provider that answers in-process; it must never see loopback's work."""

    def __init__(self):
        self.seen = []

    @hookimpl
    def smsgate_provider(self):
        return Provider(name="echo", config_class=EchoConfig,
                        capabilities=Capabilities(operations={Operation.SEND}, max_recipients={Operation.SEND: 2},
                                                  text=True))

    @hookimpl
    def build_request(self, ctx, operation, payload):
        self.seen.append(("build_request", ctx.provider))
        return HttpRequest(url="memory://echo/send", body=",".join(payload.to).encode())

    @hookimpl
    def transmit(self, ctx, request):
        self.seen.append(("transmit", ctx.provider))
        return HttpResponse(status=200, body=request.body)

    @hookimpl
    def parse_response(self, ctx, operation, request, response):
        self.seen.append(("parse_response", ctx.provider))
        return SendReply(message_id="echo-" + response.text)


class Recorder:
    """Wraps every stage of every provider, as an audit or metrics plugin would."""

    def __init__(self):
        self.stages = []

    def _record(self, stage, ctx):
        self.stages.append((ctx.provider, ctx.request_index, stage))

    @hookimpl(wrapper=True)
    def validate_message(self, ctx, message):
        self._record("validate_message", ctx)
        return (yield)

    @hookimpl(wrapper=True)
    def build_request(self, ctx, operation, payload):
        self._record("build_request", ctx)
        return (yield)

    @hookimpl(wrapper=True)
    def sign(self, ctx, operation, request):
        self._record("sign", ctx)
        return (yield)

    @hookimpl(wrapper=True)
    def transmit(self, ctx, request):
        self._record("transmit", ctx)
        response = yield
        self.stages.append((ctx.provider, ctx.request_index, f"status {response.status}"))
        return response

    @hookimpl(wrapper=True)
    def parse_response(self, ctx, operation, request, response):
        self._record("parse_response", ctx)
        return (yield)


def test_wrapper_records_each_stage_of_each_request_for_every_provider():
    echo, recorder = Echo(), Recorder()
    with LoopbackSimulator() as sim:
        plugins = PluginManager()  # a provider plugin is registered before the Gateway checks its config
        plugins.register(echo, name="echo")
        gw = Gateway({"providers": {"loopback": sim.demo_config(), "echo": {}}}, plugins=plugins)
        gw.plugins.register(recorder, name="recorder")
        r1 = gw.send(Message(to=["13800138000"], text="hi"), provider="loopback")
        r2 = gw.send(Message(to=["13800138000", "13900139000", "13700137000"], text="hi"), provider="echo")
    assert r1.ok and r2.ok
    stages = ["build_request", "sign", "transmit", "status 200", "parse_response"]
    assert recorder.stages[:6] == [("loopback", 0, "validate_message")] + [("loopback", 0, s) for s in stages]
    echo_stages = sorted(s for s in recorder.stages if s[0] == "echo")
    expected = sorted([("echo", 0, "validate_message")]
                      + [("echo", i, s) for i in (0, 1) for s in stages])
    assert echo_stages == expected
    # echo's own hooks ran only for echo's two requests, never for loopback's
    assert echo.seen.count(("build_request", "echo")) == 2
    assert all(p == "echo" for _, p in echo.seen)
    assert r2.message_ids == ["echo-13800138000,13900139000", "echo-13700137000"]


def test_fixed_clock_and_nonce_reach_the_hooks():
    with LoopbackSimulator() as sim:
        gw = Gateway({"providers": {"loopback": sim.demo_config()}}, clock=lambda: 1726631416.0,
                     nonce=lambda: "n-1")
        ctx = gw.context("loopback", Operation.SEND)
        hooks = gw.hooks("loopback")
        req = hooks.build_request(ctx=ctx, operation=Operation.SEND, payload=Message(to=["13800138000"], text="x"))
        signed = hooks.sign(ctx=ctx, operation=Operation.SEND, request=req)
    assert signed.header("X-Timestamp") == "1726631416" and signed.header("X-Nonce") == "n-1"
    from smsgate.default_plugins.loopback import signature

    assert signed.header("X-Signature") == signature("demo-secret", "1726631416", "n-1", req.body)


def test_hook_call_monitoring_sees_every_provider_hook_call():
    seen = []
    gw = Gateway({"providers": {"loopback": {}}})
    undo = gw.plugins.pm.add_hookcall_monitoring(lambda name, impls, kwargs: seen.append(name),
                                                 lambda outcome, name, impls, kwargs: None)
    try:
        assert gw.send(Message(to=["13800138000"], text="hi")).ok
    finally:
        undo()
    assert ["build_request", "sign", "transmit", "parse_response"] == [
        n for n in seen if n in ("build_request", "sign", "transmit", "parse_response")]


def test_registering_a_wrapper_after_first_use_takes_effect():
    gw = Gateway({"providers": {"loopback": {}}})
    assert gw.send(Message(to=["13800138000"], text="hi")).ok  # scoped callers built here
    recorder = Recorder()
    gw.plugins.register(recorder, name="late-recorder")
    assert gw.send(Message(to=["13800138000"], text="hi")).ok
    assert ("loopback", 0, "transmit") in recorder.stages
    gw.plugins.unregister(recorder)
    recorder.stages.clear()
    assert gw.send(Message(to=["13800138000"], text="hi")).ok
    assert recorder.stages == []
