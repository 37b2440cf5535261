"""Fuzzing every installed provider's ``parse_response``, ``verify_callback`` and ``parse_callback``,
and the receiver, with hypothesis.

What must hold for any input: a hook raises nothing but :class:`smsgate.SmsError` subclasses; the
receiver answers only 2xx, 4xx or 503; after the fuzzed pushes the spool is not locked and a valid
push sent after each fuzzed one is stored.

The examples per test come from ``SMSGATE_FUZZ_EXAMPLES`` (default 120: a few thousand over the
suite, well under a minute). A long run, as in docs/receiving.md::

    SMSGATE_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest tests/test_fuzz.py -q
"""

from __future__ import annotations

import json
import os
import sqlite3
import time

import attrs

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from smsgate import CallbackRequest, Gateway, HttpResponse, Message, Operation, PullQuery, SmsError, StatisticsQuery  # noqa: E402
from smsgate.plugins import PluginManager  # noqa: E402
from smsgate.receiving import Receiver  # noqa: E402
from smsgate.testing.simulator import load_simulator  # noqa: E402
from smsgate.wire import load_json  # noqa: E402

EXAMPLES = int(os.environ.get("SMSGATE_FUZZ_EXAMPLES", "120"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize="CI" in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large, HealthCheck.filter_too_much])


@pytest.fixture(autouse=True)
def _all_plugins(monkeypatch):
    """Every installed plugin (tests/conftest.py hides them by default)."""
    monkeypatch.delenv("SMSGATE_PLUGINS", raising=False)


def _providers() -> list[str]:
    saved = os.environ.pop("SMSGATE_PLUGINS", None)
    try:
        pm = PluginManager()
        return sorted(name for name in pm.names() if pm.provider(name).spec.simulator)
    finally:
        if saved is not None:
            os.environ["SMSGATE_PLUGINS"] = saved


PROVIDERS = _providers()

# -- what a vendor (or anyone on the internet) may send -------------------------------------------

#: text with what breaks naive code: lone surrogates, NUL, RTL marks, emoji, long runs of digits
texts = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1, max_size=3),
    st.sampled_from(["", "null", "None", "NaN", "-1", "200", "0", "\x00", "\u202e", "😀", "13800138000",
                     "9" * 5000, "DELIVRD", "success", "TooFrequent", "IllegalMac"]),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10**30, max_value=10**40),
                    st.floats(allow_nan=True, allow_infinity=True), texts)
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)), max_leaves=20)


def _dumps(value) -> bytes:
    # ensure_ascii keeps lone surrogates as \u escapes, as a Java vendor writes them
    return json.dumps(value, ensure_ascii=True, allow_nan=True).encode("ascii")


deep = st.integers(min_value=1, max_value=100_000).map(lambda n: b"[" * n + b"]" * n)
bodies = st.one_of(json_values.map(_dumps), st.binary(max_size=200), deep,
                   st.sampled_from([b"", b"{", b'{"a":1}x', b"\xff\xfe", b"[1e999999]", b'"\\udfff"', b"{}"]))


def _mutate(template, data):
    """``template`` (parsed JSON) with one leaf or branch replaced by a fuzzed value."""
    if isinstance(template, dict) and template and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(template)))
        return {**template, key: _mutate(template[key], data)}
    if isinstance(template, list) and template and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(template) - 1))
        return template[:i] + [_mutate(template[i], data)] + template[i + 1:]
    return data.draw(json_values)


# -- each provider, set up once ---------------------------------------------------------------------

class Vendor:
    def __init__(self, name: str):
        self.name = name
        pm = PluginManager()
        self.spec = pm.provider(name).spec
        self.sim = load_simulator(self.spec.simulator)()
        self.sim.start()
        values = {**self.sim.demo_config(), "connect_retries": 0}
        if "push_auth" in {f.name for f in attrs.fields(self.spec.config_class)}:
            values.update(push_auth="none", push_allow_ips=[], push_path_secret="")  # fuzzed pushes pass the guard
        self.values = values
        self.gw = Gateway({"providers": {name: values}}, plugins=pm)
        self.hooks = self.gw.hooks(name)
        self.requests = {}
        for op in self.spec.capabilities.operations:
            request = self._request(op)
            if request is not None:  # an operation the demo setup cannot build is left out
                self.requests[op] = request
        # what the simulator really answers each request: the shapes the fuzzer mutates
        self.answers = {}
        for op, request in self.requests.items():
            try:
                self.answers[op] = self.hooks.transmit(ctx=self.gw.context(name, op), request=request)
            except SmsError:
                pass

    def _request(self, op: Operation):
        ctx = self.gw.context(self.name, op)
        if op in (Operation.SEND, Operation.SEND_BATCH):
            payload: object = self.sim.demo_message(op)
            payload = self.hooks.validate_message(ctx=ctx, message=payload) or payload
            if isinstance(payload, Message) and len(payload.to) > 1 and op is Operation.SEND_BATCH:
                limit = self.spec.capabilities.limit(op)
                if limit == 1:
                    payload = attrs.evolve(payload, to=payload.to[:1],
                                                         personal={payload.to[0]: payload.personal[payload.to[0]]})
        elif op is Operation.PULL_REPORTS:
            payload = PullQuery()
        elif op is Operation.STATISTICS:
            payload = StatisticsQuery(start="2024-09-18", end="2024-09-18")
        else:
            payload = None
        try:
            request = self.hooks.build_request(ctx=ctx, operation=op, payload=payload)
        except SmsError:
            if op is not Operation.PULL_REPORTS or "phones" not in attrs.fields_dict(PullQuery):
                return None
            request = self.hooks.build_request(ctx=ctx, operation=op, payload=PullQuery(phones=["13800138000"]))
        return self.hooks.sign(ctx=ctx, operation=op, request=request) or request

    def close(self):
        self.sim.stop()


@pytest.fixture(scope="module")
def vendors():
    os.environ.pop("SMSGATE_PLUGINS", None)
    made = {name: Vendor(name) for name in PROVIDERS}
    yield made
    for v in made.values():
        v.close()


def _only_sms_errors(call):
    try:
        call()
    except SmsError:
        pass


# -- the hooks ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", PROVIDERS)
@FUZZ
@given(data=st.data(), body=bodies, status=st.sampled_from([200, 200, 200, 201, 400, 401, 404, 429, 500, 502, 503]))
def test_parse_response_raises_only_sms_errors(vendors, name, data, body, status):
    vendor = vendors[name]
    op = data.draw(st.sampled_from(sorted(vendor.requests, key=lambda o: o.value)))
    real = vendor.answers.get(op)
    if real is not None and data.draw(st.booleans()):  # the vendor's own answer, one part changed
        try:
            body = _dumps(_mutate(json.loads(real.body), data))
        except ValueError:
            pass
    response = HttpResponse(status=status, headers={"Content-Type": "application/json"}, body=body)
    ctx = vendor.gw.context(name, op)
    _only_sms_errors(lambda: vendor.hooks.parse_response(ctx=ctx, operation=op, request=vendor.requests[op],
                                                         response=response))


#: answers that broke a plugin once: deep nesting (RecursionError), a 5,000-digit code (int() raises
#: ValueError), infinity (OverflowError), a lone surrogate, a body that is not UTF-8
POISON_ANSWERS = [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
                  b'{"code":"' + b"9" * 5000 + b'","mes":"x","rspcod":"' + b"9" * 5000 + b'"}',
                  b'{"code":"4' + b"0" * 5000 + b'"}', b'{"code":1e999,"data":[{"sendStatus":1e999}]}',
                  b'{"code":"\\udfff","message":"\\ud83d"}', b"\xff\xfe\x00",
                  b'{"appId":"\\udfff","apiKey":"\\udfff","type":"sms_report","data":[]}']
#: headers that get a push past the first checks of the signed vendors (to reach the body's checks)
POISON_HEADERS = {"X-message-Time": str(int(time.time())), "X-message-Nonce": "n", "X-message-Sign": "0" * 32,
                  "X-Timestamp": str(int(time.time())), "X-Nonce": "n", "X-Signature": "0" * 64}


@pytest.mark.parametrize("name", PROVIDERS)
@pytest.mark.parametrize("body", POISON_ANSWERS, ids=range(len(POISON_ANSWERS)))
def test_known_poison_answers_raise_only_sms_errors(vendors, name, body):
    vendor = vendors[name]
    for op, request in vendor.requests.items():
        for status in (200, 429, 500):
            response = HttpResponse(status=status, body=body)
            _only_sms_errors(lambda: vendor.hooks.parse_response(
                ctx=vendor.gw.context(name, op), operation=op, request=request, response=response))
        request_in = CallbackRequest(path=f"/callbacks/{name}", body=body, remote_addr="127.0.0.1",
                                     headers=POISON_HEADERS)
        _only_sms_errors(lambda: vendor.hooks.verify_callback(ctx=vendor.gw.context(name), request=request_in))
        _only_sms_errors(lambda: vendor.hooks.parse_callback(ctx=vendor.gw.context(name), request=request_in))


@pytest.mark.parametrize("name", PROVIDERS)
@FUZZ
@given(body=bodies, path=st.sampled_from(["/callbacks/x", "/callbacks/x/\udfff", "/"]),
       headers=st.dictionaries(st.sampled_from(["Content-Type", "X-Timestamp", "X-Nonce", "X-Signature",
                                                "X-message-Time", "X-message-Nonce", "X-message-Sign"]),
                               st.text(alphabet=st.characters(max_codepoint=255), max_size=20), max_size=4),
       query=st.text(max_size=30))
def test_verify_and_parse_callback_raise_only_sms_errors(vendors, name, body, path, headers, query):
    vendor = vendors[name]
    ctx = vendor.gw.context(name)
    request = CallbackRequest(path=path, headers=headers, body=body, remote_addr="127.0.0.1", query=query)
    _only_sms_errors(lambda: vendor.hooks.verify_callback(ctx=ctx, request=request))
    _only_sms_errors(lambda: vendor.hooks.parse_callback(ctx=ctx, request=request))


# -- the receiver ----------------------------------------------------------------------------------------

def _valid_push(vendor: Vendor, url: str) -> list:
    """What the vendor's simulator pushes after a real send (captured, not sent): (body, headers) pairs."""
    from smsgate.testing import SimulatorServer

    captured: list = []

    class Capture(SimulatorServer):
        def handle(self, request):
            captured.append((request.body, dict(request.headers)))
            return HttpResponse.of_json({"code": 200, "result": 0})

    assert vendor.gw.send(vendor.sim.demo_message(Operation.SEND), provider=vendor.name).recipients
    with Capture() as capture:
        if hasattr(vendor.sim, "push_pending"):
            vendor.sim.deliver_all()
            vendor.sim.push_pending(capture.url + url)
        else:  # the loopback's simulator makes its reports as it pushes (after deliver_all it had none)
            vendor.sim.push_reports(capture.url + url, time.time())
    return captured


def _resign(vendor: Vendor, body: bytes, headers: dict, n: int) -> dict:
    """Fresh time, nonce and signature for a signed vendor's push (unsigned ones are returned as they are)."""
    ts, nonce = str(int(time.time())), f"fuzz{n}{time.monotonic_ns()}"
    if vendor.name == "juse":
        from smsgate_juse import dialect

        try:
            data = load_json(body)
            app_id, kind = str(data.get("appId")), str(data.get("type"))
        except (ValueError, AttributeError):
            app_id, kind = "", ""
        key = vendor.values.get("app_key", "message")
        try:
            sig = dialect.callback_signature(vendor.values["app_secret"], ts, nonce, app_id, kind)
        except UnicodeEncodeError:  # an appId no signer could write: the push goes unsigned
            sig = "0" * 32
        return {**headers, f"X-{key}-Time": ts, f"X-{key}-Nonce": nonce, f"X-{key}-Sign": sig}
    if vendor.name == "loopback":
        from smsgate.default_plugins.loopback import signature

        return {**headers, "X-Timestamp": ts, "X-Nonce": nonce,
                "X-Signature": signature(vendor.values["api_secret"], ts, nonce, body)}
    return headers


def _pushers() -> list[str]:
    pm = PluginManager()
    return [n for n in PROVIDERS if pm.provider(n).spec.capabilities.callbacks]  # cmas, acme: pulls only


PUSHERS = _pushers()


@pytest.mark.parametrize("name", PUSHERS)
def test_receiver_answers_only_2xx_4xx_503_and_stores_every_valid_push(vendors, name, tmp_path):
    vendor = vendors[name]
    templates = _valid_push(vendor, f"/callbacks/{name}")
    if not templates:
        pytest.skip(f"{name}'s simulator pushed nothing")
    rc = Receiver(vendor.gw, spool=tmp_path / "spool.sqlite3", plugin_hooks=False, synchronous="NORMAL")
    counter = iter(range(10**9))
    try:
        @FUZZ
        @given(data=st.data())
        def run(data):
            n = next(counter)
            body, headers = data.draw(st.sampled_from(templates))
            how = data.draw(st.sampled_from(["mutate", "mutate", "raw"]))
            if how == "raw":
                fuzzed = data.draw(bodies)
            else:
                fuzzed = _dumps(_mutate(json.loads(body), data))
            request = CallbackRequest(path=f"/callbacks/{name}", headers=_resign(vendor, fuzzed, headers, n),
                                      body=fuzzed, remote_addr="127.0.0.1")
            answer = rc.handle(name, request)
            assert 200 <= answer.status < 300 or 400 <= answer.status < 500 or answer.status == 503, answer
            # a valid push right after it is answered 2xx and stored
            valid = CallbackRequest(path=f"/callbacks/{name}", headers=_resign(vendor, body, headers, n),
                                    body=body, remote_addr="127.0.0.1")
            assert 200 <= rc.handle(name, valid).status < 300

        run()
        # nothing holds the write lock
        other = sqlite3.connect(rc.spool.path, timeout=1)
        other.execute("BEGIN IMMEDIATE")
        other.execute("ROLLBACK")
        other.close()
        assert rc.spool.counts()["events"] >= 1
    finally:
        rc.close()
