"""Routing over two simulators (opass and juse) with faults injected: only recipients whose outcome
proves nothing was sent move to the next provider; unknown never moves; weighted 3:1 is exactly 3:1;
breakers open and close on an injected clock; logical templates give each vendor its own id and
param shape; a replayed key sends nothing anywhere; the config is checked when the Gateway is built."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import uuid

import pytest

from smsgate import Gateway, Message
from smsgate.errors import ConfigError, ValidationError
from smsgate.sending.routing import SmoothWeighted
from smsgate.sending.routing.breaker import CLOSED, TRIAL, MemoryBreakerState
from smsgate.testing import Fault

opass_sim = pytest.importorskip("smsgate_opass.simulator")
juse_sim = pytest.importorskip("smsgate_juse.simulator")

LOGIN_OPASS = "574277763210051999"  # an opass template with one variable (the code)
PHONES = ["13800138000", "13900139000", "15000150000"]


@pytest.fixture(autouse=True)
def _vendor_plugins(monkeypatch):
    monkeypatch.delenv("SMSGATE_PLUGINS", raising=False)  # tests/conftest.py hides them by default


@pytest.fixture
def opass():
    templates = (*opass_sim.DEFAULT_TEMPLATES, opass_sim.Template(LOGIN_OPASS, 1))
    with opass_sim.OpassSimulator(templates=templates) as sim:
        yield sim


@pytest.fixture
def juse():
    with juse_sim.JuseSimulator() as sim:
        yield sim


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


TEMPLATES = {"login": {"per_phone": ["100/minute"],
                       "opass": {"template_id": LOGIN_OPASS, "params": ["code"]},
                       "juse": {"template_id": "MSG_2024090901", "sign_name": "登录验证",
                                "params": {"param1": "code"}}},
             "notice": {"juse": {"template_id": "MSG_NOTICE", "sign_name": "通知", "params": {"param1": "code"}}}}


def config(opass, juse, *, opass_down=False, route=None, ledger=None, **opass_keys):
    opass_conf = {**opass.demo_config(), "connect_retries": 0, **opass_keys}
    if opass_down:
        opass_conf["base_url"] = f"http://127.0.0.1:{closed_port()}"
    data = {"providers": {"opass": opass_conf, "juse": juse.demo_config()},
            "routes": {"otp": {"providers": ["opass", "juse"], **(route or {})}},
            "templates": TEMPLATES}
    if ledger:
        data["ledger"] = {"url": ledger}
    return data


LOGIN = Message(to=PHONES, template_id="login", params={"code": "1234"})


def juse_phones(juse):
    return [r.phone for r in juse.records]


def test_first_down_everything_goes_to_the_second(opass, juse):
    with Gateway(config(opass, juse, opass_down=True)) as gw:
        result = gw.send(LOGIN, route="otp")
    assert result.ok and result.provider == "opass"  # the route's first provider, as the ledger has it
    assert [r.provider for r in result.recipients] == ["juse"] * 3
    assert sorted(juse_phones(juse)) == sorted(PHONES)
    for r in result.recipients:
        (tried,) = r.earlier
        assert (tried.provider, tried.outcome.value, tried.reason.code, tried.reason.not_sent) == (
            "opass", "rejected", "CONNECT", True)
    data = result.to_json_dict()["recipients"][0]
    assert [(a["provider"], a["outcome"]) for a in data["attempts"]] == [("opass", "rejected"), ("juse", "accepted")]
    assert data["provider"] == "juse" and data["message_id"]


def test_vendor_refusing_some_phones_moves_only_those(opass, juse):
    opass.blocked_phones = {PHONES[1]}  # answered in failPhones: refused, not sent
    with Gateway(config(opass, juse)) as gw:
        result = gw.send(LOGIN, route="otp")
    assert result.ok
    assert juse_phones(juse) == [PHONES[1]]  # only the refused phone reached juse
    assert sorted(s.phone for s in opass.sent) == [PHONES[0], PHONES[2]]
    assert [r.provider for r in result.recipients] == [None, "juse", None]
    assert result.recipients[1].earlier[0].reason.code == "failPhones"


@pytest.mark.parametrize("code", [40002, 60007])  # no balance; phone parameter badly formatted
def test_not_sent_codes_move_the_request_s_phones(opass, juse, code):
    with Gateway(config(opass, juse)) as gw:
        first = gw.send(Message(to=PHONES[:1], template_id="login", params={"code": "1"}), route="otp")
        opass.force_code(code)  # the next request is refused as a whole
        second = gw.send(Message(to=PHONES[1:], template_id="login", params={"code": "2"}), route="otp")
    assert first.ok and first.recipients[0].provider is None  # opass took it
    assert second.ok and [r.provider for r in second.recipients] == ["juse", "juse"]
    assert juse_phones(juse) == PHONES[1:]
    assert {r.earlier[0].reason.code for r in second.recipients} == {str(code)}


def test_read_timeout_leaves_unknown_and_the_second_never_sees_them(opass, juse):
    opass.slow_seconds = 1.0
    opass.inject(Fault.SLOW)
    with Gateway(config(opass, juse, read_timeout=0.3)) as gw:
        result = gw.send(LOGIN, route="otp")
    assert result.unknown == PHONES
    assert juse.requests == []  # unknown never moves
    assert all(r.provider is None and r.earlier == () for r in result.recipients)


def test_vendor_answer_without_proof_is_unknown_and_does_not_move(opass, juse):
    opass.force_code(-1)  # "system busy or other reason": may have been taken
    with Gateway(config(opass, juse)) as gw:
        result = gw.send(LOGIN, route="otp")
    assert result.unknown == PHONES and juse.requests == []


def test_weighted_three_to_one_over_400_sends_is_exact(opass, juse):
    route = {"strategy": "weighted", "weights": {"opass": 3, "juse": 1}}
    with Gateway(config(opass, juse, route=route)) as gw:
        carriers = []
        for i in range(400):
            result = gw.send(Message(to=[f"1380013{i:04d}"], template_id="login", params={"code": "1"}),
                             route="otp")
            assert result.ok
            carriers.append(result.recipients[0].provider or result.provider)
    assert carriers[:8] == ["opass", "opass", "juse", "opass"] * 2  # spread out, not 300 then 100
    assert (carriers.count("opass"), carriers.count("juse")) == (300, 100)
    assert (len(opass.sent), len(juse.records)) == (300, 100)


def test_smooth_weighted_is_deterministic():
    a, b = SmoothWeighted(["a", "b", "c"], {"a": 5, "b": 1, "c": 1}), SmoothWeighted(["a", "b", "c"],
                                                                                    {"a": 5, "b": 1, "c": 1})
    picks = [a.pick() for _ in range(70)]
    assert picks == [b.pick() for _ in range(70)]
    assert picks[:7] == ["a", "a", "b", "a", "c", "a", "a"]
    assert (picks.count("a"), picks.count("b"), picks.count("c")) == (50, 10, 10)


class Clock:
    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


def one(i):
    return Message(to=[f"1390013{i:04d}"], template_id="login", params={"code": "1"})


def test_breaker_opens_after_n_failures_skips_then_one_trial_closes_it(opass, juse):
    route = {"breaker_failures": 3, "breaker_cooldown": 10}
    opass.ip_allowed = False  # every opass call refused (2000, not sent): the route fails over
    with Gateway(config(opass, juse, route=route)) as gw:
        clock = gw.breakers.clock = Clock()
        for i in range(3):
            assert gw.send(one(i), route="otp").recipients[0].provider == "juse"
        assert len(opass.requests) == 3  # three failures: open
        result = gw.send(one(3), route="otp")
        assert len(opass.requests) == 3 and result.ok  # skipped: straight to juse
        assert result.provider == "juse" and result.recipients[0].earlier == ()
        clock.now += 9.9
        gw.send(one(4), route="otp")
        assert len(opass.requests) == 3  # still cooling down
        clock.now += 0.2
        gw.send(one(5), route="otp")  # the one trial: fails, opens again
        assert len(opass.requests) == 4
        gw.send(one(6), route="otp")
        assert len(opass.requests) == 4
        clock.now += 10.1
        opass.ip_allowed = True
        trial = gw.send(one(7), route="otp")  # the trial succeeds: closed
        assert trial.ok and trial.recipients[0].provider is None and len(opass.sent) == 1
        assert all(gw.send(one(8 + i), route="otp").recipients[0].provider is None for i in range(3))
    assert len(opass.sent) == 4


def test_breaker_counts_consecutive_failures_only(opass, juse):
    route = {"breaker_failures": 2}
    with Gateway(config(opass, juse, route=route)) as gw:
        gw.breakers.clock = Clock()
        opass.force_code(40002)
        gw.send(one(0), route="otp")  # failure 1
        gw.send(one(1), route="otp")  # success: the count starts again
        opass.force_code(40002)
        gw.send(one(2), route="otp")  # failure 1
        assert gw.send(one(3), route="otp").recipients[0].provider is None  # still closed
    assert len(opass.requests) == 4


def test_breaker_off_with_zero_failures(opass, juse):
    with Gateway(config(opass, juse, opass_down=True, route={"breaker_failures": 0})) as gw:
        for i in range(8):
            assert gw.send(one(i), route="otp").recipients[0].earlier[0].reason.code == "CONNECT"


def test_breaker_state_machine_one_trial_at_a_time():
    state = MemoryBreakerState()
    for t in range(2):
        assert state.allow("p", t, 5) == CLOSED
        state.record("p", False, t, 2, 10, trial=False)
    assert state.allow("p", 5, 5) is None  # open until 11
    assert state.allow("p", 11, 5) == TRIAL
    assert state.allow("p", 12, 5) is None  # the trial is out: the others keep skipping
    state.record("p", None, 12, 2, 10, trial=True)  # the trial said nothing of the provider
    assert state.allow("p", 12, 5) == TRIAL
    state.record("p", True, 13, 2, 10, trial=True)
    assert state.allow("p", 13, 5) == CLOSED


@contextlib.contextmanager
def two_gateways_on_redis(opass, juse, redis_url, service_run_id):
    """Two Gateways sharing breakers (two breaker_failures, 30 s) through Redis; opass refuses."""
    prefix = f"{service_run_id}:{uuid.uuid4().hex[:8]}:"
    data = config(opass, juse, route={"breaker_failures": 2, "breaker_cooldown": 30})
    data["limits"] = {"store": redis_url, "prefix": prefix}
    opass.ip_allowed = False
    with Gateway(data) as a, Gateway(data) as b:
        a.breakers.clock = b.breakers.clock = Clock()
        try:
            yield a, b
        finally:
            a.limits.store.client.delete(f"{prefix}breaker:opass", f"{prefix}breaker:juse")


def test_breaker_shared_through_redis(opass, juse, redis_url, service_run_id):
    with two_gateways_on_redis(opass, juse, redis_url, service_run_id) as (a, b):
        a.send(one(0), route="otp")
        a.send(one(1), route="otp")  # opened, in Redis
        assert len(opass.requests) == 2
        assert b.send(one(2), route="otp").recipients[0].earlier == ()  # b skips opass too
        assert len(opass.requests) == 2
        b.breakers.clock.now += 31
        opass.ip_allowed = True
        assert b.send(one(3), route="otp").recipients[0].provider is None  # b's trial closes it for both
        assert a.send(one(4), route="otp").recipients[0].provider is None


def breaker_gauge(registry, provider="opass"):
    """The provider's breaker as the metrics show it: its state and its failure count."""
    states = {state: registry.get_sample_value("smsgate_circuit_breaker_state",
                                               {"provider": provider, "state": state})
              for state in ("closed", "open", "half_open")}
    on = [state for state, value in states.items() if value == 1]
    assert sorted(states.values()) == [0, 0, 1], states
    return on[0], registry.get_sample_value("smsgate_circuit_breaker_failures", {"provider": provider})


def test_breaker_status_and_its_gauge_follow_the_breaker(opass, juse):
    prometheus = pytest.importorskip("prometheus_client")
    from smsgate.integrations.metrics import Metrics

    registry = prometheus.CollectorRegistry()
    opass.ip_allowed = False
    with Gateway(config(opass, juse, route={"breaker_failures": 2, "breaker_cooldown": 10})) as gw:
        clock = gw.breakers.clock = Clock()
        Metrics(registry).install(gw.plugins).watch(gw)
        assert breaker_gauge(registry) == ("closed", 0) and breaker_gauge(registry, "juse") == ("closed", 0)
        gw.send(one(0), route="otp")
        assert breaker_gauge(registry) == ("closed", 1)
        gw.send(one(1), route="otp")
        assert breaker_gauge(registry) == ("open", 2)
        status = gw.breakers.status(["opass", "juse"])
        assert status["opass"].open_until == clock.now + 10 and status["juse"].state == "closed"
        clock.now += 10
        assert breaker_gauge(registry) == ("half_open", 2)  # reading it does not take the trial
        opass.ip_allowed = True
        assert gw.send(one(2), route="otp").recipients[0].provider is None  # the trial closes it
        assert breaker_gauge(registry) == ("closed", 0)
    assert len(opass.requests) == 3


def test_breaker_gauge_shared_through_redis(opass, juse, redis_url, service_run_id):
    prometheus = pytest.importorskip("prometheus_client")
    from smsgate.integrations.metrics import BreakerCollector

    with two_gateways_on_redis(opass, juse, redis_url, service_run_id) as (a, b):
        registry = prometheus.CollectorRegistry()
        registry.register(BreakerCollector(b))  # b only reads: a sends
        a.send(one(0), route="otp")
        assert breaker_gauge(registry) == ("closed", 1)
        a.send(one(1), route="otp")
        assert breaker_gauge(registry) == ("open", 2)
        assert b.breakers.status(["opass"])["opass"].open_until == a.breakers.clock.now + 30
        b.breakers.clock.now += 30
        assert breaker_gauge(registry) == ("half_open", 2)
        assert breaker_gauge(registry, "juse") == ("closed", 0)


def test_breaker_status_with_the_store_down_reads_this_process(opass, juse):
    data = config(opass, juse, opass_down=True, route={"breaker_failures": 1})
    data["limits"] = {"store": f"redis://127.0.0.1:{closed_port()}/0", "fail_open": True}
    with Gateway(data) as gw:
        gw.breakers.clock = Clock()
        gw.send(one(0), route="otp")  # breakers fall back to this process: opened here
        assert gw.breakers.status(["opass"])["opass"].state == "open"


def test_a_metrics_table_exports_the_breakers(opass, juse, monkeypatch):
    pytest.importorskip("prometheus_client")
    from smsgate.integrations.metrics import exposition_registry

    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    opass.ip_allowed = False
    data = {**config(opass, juse, route={"breaker_failures": 1}), "metrics": {}}
    data["routes"]["spare"] = {"providers": ["juse"], "breaker_failures": 0}  # no breaker: not shown
    data["providers"]["unrouted"] = {**juse.demo_config(), "provider": "juse"}
    with Gateway(data) as gw:
        gw.breakers.clock = Clock()
        gw.send(one(0), route="otp")
        registry = exposition_registry()
        assert breaker_gauge(registry) == ("open", 1)
        assert breaker_gauge(registry, "juse") == ("closed", 0)
        assert registry.get_sample_value("smsgate_circuit_breaker_failures", {"provider": "unrouted"}) is None


def test_every_breaker_open_refuses_without_sending(opass, juse):
    opass.ip_allowed = False
    juse.fail_next(401, "鉴权失败", times=2)
    with Gateway(config(opass, juse, route={"breaker_failures": 2})) as gw:
        gw.breakers.clock = Clock()
        gw.send(one(0), route="otp")
        gw.send(one(1), route="otp")
        requests = len(opass.requests) + len(juse.requests)
        result = gw.send(one(2), route="otp")
    assert len(opass.requests) + len(juse.requests) == requests
    assert result.recipients[0].reason.code == "CIRCUIT_OPEN" and result.recipients[0].reason.not_sent


def test_template_without_an_entry_for_the_first_goes_straight_to_the_second(opass, juse):
    with Gateway(config(opass, juse)) as gw:
        result = gw.send(Message(to=PHONES[:1], template_id="notice", params={"code": "7"}), route="otp")
    assert result.ok and result.provider == "juse" and result.recipients[0].earlier == ()
    assert opass.requests == []
    assert (juse.records[0].template_id, juse.records[0].sign_name, juse.records[0].params) == (
        "MSG_NOTICE", "通知", {"param1": "7"})


def test_each_vendor_gets_its_own_template_id_sign_and_param_shape(opass, juse):
    opass.blocked_phones = {PHONES[0]}
    with Gateway(config(opass, juse)) as gw:
        assert gw.send(LOGIN, route="otp").ok
    assert {(s.template, tuple(s.params)) for s in opass.sent} == {(LOGIN_OPASS, ("1234",))}
    (record,) = juse.records
    assert (record.phone, record.template_id, record.sign_name, record.params) == (
        PHONES[0], "MSG_2024090901", "登录验证", {"param1": "1234"})


def test_content_is_checked_for_every_provider_before_anything_is_sent(opass, juse):
    with Gateway(config(opass, juse)) as gw:
        with pytest.raises(ValidationError, match="'cdoe'.*did you mean 'code'"):
            gw.send(Message(to=PHONES, template_id="login", params={"cdoe": "1"}), route="otp")
        with pytest.raises(ValidationError, match="by name"):
            gw.send(Message(to=PHONES, template_id="login", params=["1234"]), route="otp")
        with pytest.raises(ValidationError, match="needs param 'code'"):
            gw.send(Message(to=PHONES, template_id="login", params={}), route="otp")
        # a raw vendor template through the route: juse needs a sign name, so nothing goes to opass either
        with pytest.raises(ValidationError, match="sign name"):
            gw.send(Message(to=PHONES, template_id=LOGIN_OPASS, params=["1"]), route="otp")
    assert opass.requests == [] and juse.requests == []


def test_replayed_key_sends_nothing_anywhere(opass, juse, tmp_path):
    ledger = f"sqlite:///{tmp_path}/ledger.sqlite3"
    message = Message(to=PHONES, template_id="login", params={"code": "1234"}, key="login-42")
    opass.blocked_phones = {PHONES[2]}
    with Gateway(config(opass, juse, ledger=ledger)) as gw:
        result = gw.send(message, route="otp")
        assert result.ok and juse_phones(juse) == [PHONES[2]]
        opass.blocked_phones = set()
        again = gw.send(message, route="otp")
        assert again.replayed and again.recipients == result.recipients  # earlier attempts included
        assert len(opass.requests) == 1 and len(juse.requests) == 1  # nothing sent anywhere
        assert gw.send(message, provider="juse").replayed  # through one provider too: the key names the message
        rows = gw.status("login-42").rows
    assert [(r.phone, r.provider, r.outcome, r.request_index) for r in rows if r.phone == PHONES[2]] == [
        (PHONES[2], "opass", "rejected", 0), (PHONES[2], "juse", "accepted", 1)]
    assert again.to_json_dict()["recipients"] == result.to_json_dict()["recipients"]


def test_replay_of_a_first_provider_down_send(opass, juse, tmp_path):
    ledger = f"sqlite:///{tmp_path}/ledger.sqlite3"
    message = Message(to=PHONES[:2], template_id="login", params={"code": "9"}, key="k-down")
    with Gateway(config(opass, juse, opass_down=True, ledger=ledger)) as gw:
        result = gw.send(message, route="otp")
        again = gw.send(message, route="otp")
    assert again.replayed and again.recipients == result.recipients and len(juse.requests) == 1


def test_quota_refusal_does_not_move(opass, juse):
    data = config(opass, juse)
    data["templates"] = {**TEMPLATES, "login": {**TEMPLATES["login"], "per_phone": ["1/minute"]}}
    with Gateway(data) as gw:
        assert gw.send(Message(to=PHONES[:1], template_id="login", params={"code": "1"}), route="otp").ok
        again = gw.send(Message(to=PHONES[:1], template_id="login", params={"code": "2"}), route="otp")
    assert again.recipients[0].reason.code == "RATE_LIMITED" and again.recipients[0].earlier == ()
    assert len(opass.requests) == 1 and juse.requests == []  # the phone's quota is the phone's, not opass's


def route_quota_config(opass, juse, per_phone=("1/minute",), opass_down=False, juse_down=False, **route):
    """Route otp over opass and juse with its own per-phone quota; template login without one."""
    data = config(opass, juse, opass_down=opass_down, route={"per_phone": list(per_phone), **route})
    data["templates"] = {**TEMPLATES, "login": {k: v for k, v in TEMPLATES["login"].items() if k != "per_phone"}}
    if juse_down:
        data["providers"]["juse"] = {**juse.demo_config(), "base_url": f"http://127.0.0.1:{closed_port()}",
                                     "connect_retries": 0}
    return data


def code_to(phone, code="1"):
    return Message(to=[phone], template_id="login", params={"code": code})


def test_a_route_quota_is_counted_once_per_routed_send(opass, juse):
    a, b = PHONES[:2]
    with Gateway(route_quota_config(opass, juse, opass_down=True)) as gw:
        first = gw.send(code_to(a), route="otp")  # opass refuses the connection, juse takes it
        assert first.ok and first.recipients[0].provider == "juse"  # one count, not one per provider
        again = gw.send(code_to(a), route="otp")
        reason = again.recipients[0].reason
        assert (reason.code, reason.not_sent, again.recipients[0].earlier) == ("RATE_LIMITED", True, ())
        assert "1/minute for route 'otp'" in reason.message
        assert gw.send(code_to(b), route="otp").ok  # another phone: its own count
        assert gw.send(code_to(a, "2"), provider="juse").ok  # not routed: the route's quota does not apply
    assert juse_phones(juse) == [a, b, a]


def test_a_route_quota_is_given_back_for_phones_no_provider_was_handed(opass, juse):
    a, b = PHONES[:2]
    with Gateway(route_quota_config(opass, juse, opass_down=True, juse_down=True)) as gw:
        for _ in range(2):  # both refuse the connection: never sent, so never counted
            [r] = gw.send(code_to(a), route="otp").recipients
            assert [t.reason.code for t in r.attempts] == ["CONNECT", "CONNECT"]
        assert not gw.limits.hold_phones([a], "login", "otp").refused  # the quota is whole
    with Gateway(route_quota_config(opass, juse, juse_down=True, breaker_failures=1, breaker_cooldown=60)) as gw:
        gw.breakers.clock = Clock()
        opass.ip_allowed = False  # opass refuses it as not sent (it was handed to opass), juse is down
        [r] = gw.send(code_to(a), route="otp").recipients
        assert [(t.provider, t.reason.code) for t in r.attempts] == [("opass", "2000"), ("juse", "CONNECT")]
        assert gw.send(code_to(a), route="otp").recipients[0].reason.code == "RATE_LIMITED"  # handed: counted
        skipped = gw.send(code_to(b), route="otp")  # both breakers open: nothing sent anywhere
        assert skipped.recipients[0].reason.code == "CIRCUIT_OPEN"
        assert not gw.limits.hold_phones([b], "login", "otp").refused  # so b's quota was given back


def test_a_template_quota_or_a_named_scope_comes_before_the_route_s(opass, juse):
    data = route_quota_config(opass, juse)
    data["templates"]["login"]["per_phone"] = ["2/minute"]
    data["templates"]["urgent"] = {"per_phone": []}
    with Gateway(data) as gw:
        outcomes = [gw.send(code_to(PHONES[0]), route="otp").recipients[0].outcome.value for _ in range(3)]
        assert outcomes == ["accepted", "accepted", "rejected"]  # login's 2/minute, not the route's 1/minute
        assert all(gw.send(code_to(PHONES[1]), route="otp", limit_scope="urgent").ok for _ in range(3))
        assert gw.send(code_to(PHONES[2]), route="otp", limit_scope="unknown").ok  # no such scope: the route's
        assert not gw.send(code_to(PHONES[2]), route="otp", limit_scope="unknown").ok


def test_a_route_quota_is_shared_through_redis(opass, juse, redis_url, service_run_id):
    prefix = f"{service_run_id}:{uuid.uuid4().hex[:8]}:"
    data = route_quota_config(opass, juse, opass_down=True)
    data["limits"] = {"store": redis_url, "prefix": prefix}
    with Gateway(data) as a, Gateway(data) as b:
        client = a.limits.store.client
        try:
            assert a.send(code_to(PHONES[0]), route="otp").recipients[0].provider == "juse"
            assert b.send(code_to(PHONES[0]), route="otp").recipients[0].reason.code == "RATE_LIMITED"
            assert [k.decode() for k in client.scan_iter(f"{prefix}phone:*")] == [
                a.limits._phone_key("r:otp", PHONES[0])]
        finally:
            for key in client.scan_iter(f"{prefix}*"):
                client.delete(key)
    assert juse_phones(juse) == PHONES[:1]


def test_a_bad_route_quota_is_a_config_error(opass, juse):
    with pytest.raises(ConfigError, match=r"\[routes.otp\] per_phone"):
        Gateway(route_quota_config(opass, juse, per_phone=["5/fortnight"]))


def test_default_route_and_logical_template_to_one_provider(opass, juse):
    data = config(opass, juse)
    data["default_route"] = "otp"
    with Gateway(data) as gw:
        assert gw.send(LOGIN).recipients[0].provider is None  # through the route: opass first
        direct = gw.send(Message(to=PHONES[:1], template_id="login", params={"code": "5"}), provider="juse")
        assert direct.ok and direct.provider == "juse"
        with pytest.raises(ValidationError, match="no entry"):
            gw.send(Message(to=PHONES[:1], template_id="notice", params={"code": "5"}), provider="opass")
        with pytest.raises(ConfigError, match="did you mean 'otp'"):
            gw.send(LOGIN, route="opt")
    assert juse.records[0].params == {"param1": "5"}


def test_config_problems_reported_at_once(opass, juse):
    data = config(opass, juse)
    data["routes"] = {"otp": {"providers": ["opass", "jsue"], "strategy": "weighted", "wieghts": {}},
                      "bulk": {"providers": ["opass"], "weights": {"opass": 1}, "breaker_cooldown": 0}}
    data["default_route"] = "opt"
    data["templates"] = {"login": {"opass": {"template_id": "1", "params": {"p": "code"}},
                                   "jsue": {"template_id": "2"},
                                   "juse": {"template": "x"}}}
    with pytest.raises(ConfigError) as info:
        Gateway(data)
    text = str(info.value)
    for expected in ["[routes.otp] unknown key 'wieghts' (did you mean 'weights'?)",
                     "[routes.otp] provider 'jsue' is not configured (did you mean 'juse'?)",
                     '[routes.otp] weights is needed with strategy = "weighted"',
                     '[routes.bulk] weights goes with strategy = "weighted"',
                     "[routes.bulk] breaker_cooldown must be",
                     "default_route 'opt' names no [routes.NAME] table (did you mean 'otp'?)",
                     "[templates.login.opass] provider 'opass' takes positional params",
                     "[templates.login.jsue]: provider 'jsue' is not configured (did you mean 'juse'?)",
                     "[templates.login.juse] unknown key 'template' (did you mean 'template_id'?)",
                     "[templates.login.juse] template_id must be"]:
        assert expected in text, text
    assert len(info.value.problems) == 10


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "smsgate.cli", *args], capture_output=True, text=True, timeout=60)


def toml_config(path, opass, juse, opass_url=None):
    def table(values):
        return "".join(f"{k} = {json.dumps(v, ensure_ascii=False)}\n" for k, v in values.items())

    opass_conf = {**opass.demo_config(), "connect_retries": 0}
    if opass_url:
        opass_conf["base_url"] = opass_url
    path.write_text(
        f"default_provider = \"opass\"\n[providers.opass]\n{table(opass_conf)}\n[providers.juse]\n"
        f"{table(juse.demo_config())}\n"
        "[routes.otp]\nproviders = [\"opass\", \"juse\"]\n\n"
        f"[templates.login.opass]\ntemplate_id = \"{LOGIN_OPASS}\"\nparams = [\"code\"]\n\n"
        "[templates.login.juse]\ntemplate_id = \"MSG_2024090901\"\nsign_name = \"登录验证\"\n"
        "params = { param1 = \"code\" }\n", encoding="utf-8")
    return str(path)


def test_cli_send_route_template_params(opass, juse, tmp_path):
    opass.blocked_phones = {PHONES[1]}  # so that both vendors get a request
    path = toml_config(tmp_path / "smsgate.toml", opass, juse)
    out = run_cli("send", "--config", path, "--route", "otp", "--template", "login", "--params", '{"code":"1234"}',
                  "--to", ",".join(PHONES[:2]), "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [(r["phone"], r["provider"]) for r in data["recipients"]] == [(PHONES[0], "opass"), (PHONES[1], "juse")]
    assert [a["provider"] for a in data["recipients"][1]["attempts"]] == ["opass", "juse"]
    assert [(s.phone, s.template, s.params) for s in opass.sent] == [(PHONES[0], LOGIN_OPASS, ["1234"])]
    assert [(r.phone, r.template_id, r.params) for r in juse.records] == [
        (PHONES[1], "MSG_2024090901", {"param1": "1234"})]
    text = run_cli("send", "--config", path, "--route", "otp", "--template", "login", "--params", '{"code":"1"}',
                   "--to", PHONES[2])
    assert text.returncode == 0 and text.stdout.split("\t")[:3] == [PHONES[2], "accepted", "opass"]
    bad = run_cli("send", "--config", path, "--route", "otp", "--provider", "juse", "--template", "login",
                  "--to", PHONES[2])
    assert bad.returncode == 2 and "not allowed with" in bad.stderr


def test_cli_route_first_down(opass, juse, tmp_path):
    path = toml_config(tmp_path / "smsgate.toml", opass, juse, opass_url=f"http://127.0.0.1:{closed_port()}")
    out = run_cli("send", "--config", path, "--route", "otp", "--template", "login", "--params", '{"code":"1234"}',
                  "--to", ",".join(PHONES), "--json")
    assert out.returncode == 0, out.stderr
    assert {r["provider"] for r in json.loads(out.stdout)["recipients"]} == {"juse"}
    assert sorted(juse_phones(juse)) == sorted(PHONES)


def test_metrics_count_a_routed_recipient_under_its_final_provider_and_the_route(opass, juse):
    prometheus = pytest.importorskip("prometheus_client")
    from smsgate import PluginManager
    from smsgate.integrations.metrics import Metrics

    registry = prometheus.CollectorRegistry()
    plugins = PluginManager()
    Metrics(registry).install(plugins)
    opass.blocked_phones = {PHONES[1]}
    with Gateway(config(opass, juse), plugins=plugins) as gw:
        assert gw.send(LOGIN, route="otp").ok

    def recipients(provider):
        return registry.get_sample_value("smsgate_recipients_total", {
            "provider": provider, "route": "otp", "operation": "send", "outcome": "accepted", "code": ""}) or 0

    assert (recipients("opass"), recipients("juse")) == (2, 1)


def test_personalised_logical_template(opass, juse):
    personal = {PHONES[0]: {"code": "1111"}, PHONES[1]: {"code": "2222"}}
    with Gateway(config(opass, juse)) as gw:
        result = gw.send(Message.personalised(personal, template_id="login"), provider="opass")
        assert result.ok
        with pytest.raises(ValidationError, match="'juse' cannot send_batch"):  # every provider of the route is checked
            gw.send(Message.personalised(personal, template_id="login"), route="otp")
    assert sorted((s.phone, tuple(s.params)) for s in opass.sent) == [(PHONES[0], ("1111",)), (PHONES[1], ("2222",))]
    assert juse.requests == []
