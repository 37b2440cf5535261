"""Limits: the rate notation, the [limits] settings, and the stores' rules — each rule run on the
memory store (with a fake clock) and on the real Redis (with real, short windows)."""

from __future__ import annotations

import collections
import time
import uuid

import pytest

from smsgate.errors import ConfigError, LimitsUnavailable, RateLimited
from smsgate.sending.limits import Limits, LimitsSettings, MemoryStore, Rate, limits_settings, parse_rate


Budget = collections.namedtuple("Budget", "name calls per")


# -- the notation ----------------------------------------------------------------------------

@pytest.mark.parametrize("text,calls,per", [("300/second", 300, 1.0), ("1/minute", 1, 60.0), ("5 per hour", 5, 3600.0),
                                            ("10/day", 10, 86400.0), ("1/15 seconds", 1, 15.0),
                                            ("3 / 2 minutes", 3, 120.0), ("2/0.5 second", 2, 0.5)])
def test_rates_are_read_in_the_limits_notation(text, calls, per):
    rate = parse_rate(text)
    assert (rate.calls, rate.per) == (calls, per)
    assert str(rate) == " ".join(text.split())


@pytest.mark.parametrize("text", ["", "300", "0/second", "5/fortnight", "five/hour", "1/0 seconds", 5])
def test_a_bad_rate_says_what_a_rate_looks_like(text):
    with pytest.raises(ValueError, match="COUNT/UNIT|at least 1 call"):
        parse_rate(text)


# -- settings --------------------------------------------------------------------------------

def test_settings_default_to_the_memory_store_and_no_quota():
    s = limits_settings({}, {})
    assert (s.store, s.per_phone, s.fail_open, dict(s.scopes)) == ("memory://", (), False, {})


def test_settings_read_limits_and_the_templates_quotas():
    s = limits_settings({"limits": {"store": "redis://127.0.0.1:6379/0", "per_phone": ["1/minute", "10/day"],
                                    "rate_wait": 2},
                         "templates": {"login": {"per_phone": ["1/minute", "5/hour"], "juse": "TPL1"},
                                       "notice": {"juse": "TPL2"}}}, {})
    assert [str(r) for r in s.per_phone] == ["1/minute", "10/day"]
    assert s.rate_wait == 2.0
    assert {k: [str(r) for r in v] for k, v in s.scopes.items()} == {"login": ["1/minute", "5/hour"]}


def test_the_environment_overrides_limits_and_a_password_is_never_shown():
    s = limits_settings({"limits": {"store": "memory://"}},
                        {"SMSGATE_LIMITS_STORE": "redis://:s3cret@127.0.0.1:6379/0",
                         "SMSGATE_LIMITS_PER_PHONE": "1/minute,5/hour", "SMSGATE_LIMITS_FAIL_OPEN": "yes"})
    assert s.store.startswith("redis://") and s.fail_open is True
    assert [str(r) for r in s.per_phone] == ["1/minute", "5/hour"]
    assert "s3cret" not in repr(s)


@pytest.mark.parametrize("extra,message", [
    ({"limits": {"per_phone": "1/minute"}}, "per_phone must be a list"),
    ({"limits": {"per_phone": ["1/minit"]}}, "per_phone: '1/minit' is not a rate"),
    ({"limits": {"per_phon": []}}, "unknown key 'per_phon'"),
    ({"limits": {"store": "mysql://x"}}, "store must be"),
    ({"limits": {"fail_open": "yes"}}, "fail_open must be bool"),
    ({"limits": {"rate_wait": 0}}, "rate_wait must be more than 0"),
    ({"templates": {"login": {"per_phone": ["x"]}}}, r"\[templates.login\] per_phone: 'x' is not a rate"),
    ({"templates": {"login": "TPL"}}, r"\[templates.login\] must be a table"),
])
def test_bad_limits_settings_are_one_config_error(extra, message):
    with pytest.raises(ConfigError, match=message):
        limits_settings(extra, {})


def test_a_bad_store_url_from_the_environment_is_not_echoed():
    with pytest.raises(ConfigError) as info:
        limits_settings({}, {"SMSGATE_LIMITS_STORE": "mysql://user:s3cret@host"})
    assert "s3cret" not in str(info.value)


# -- the stores' rules -----------------------------------------------------------------------

class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


class RealTime:
    def advance(self, seconds):
        time.sleep(seconds)


@pytest.fixture(params=["memory", "redis"])
def store(request):
    """(store, advance, key): each rule runs on both stores."""
    if request.param == "memory":
        clock = Clock()
        yield MemoryStore(clock), clock.advance, lambda name: name
        return
    redis_url = request.getfixturevalue("redis_url")
    run = request.getfixturevalue("service_run_id")
    from smsgate.sending.limits.redis_store import RedisStore

    s = RedisStore(redis_url)
    prefix = f"{run}:{uuid.uuid4().hex[:8]}:"
    yield s, RealTime().advance, lambda name: prefix + name
    for k in s.client.scan_iter(prefix + "*"):
        s.client.delete(k)
    s.close()


W = 0.6  # a short window, so the rules run on the real Redis clock quickly


def test_a_phone_over_any_of_its_quotas_is_refused_and_not_counted(store):
    s, advance, key = store
    rates = [Rate(1, W), Rate(2, 30.0)]
    a, b = key("a"), key("b")
    assert s.reserve([a, b], rates, "t1") == [None, None]
    waits = s.reserve([a, b], rates, "t2")
    assert all(w is not None and 0 < w <= W + 0.001 for w in waits)
    advance(W + 0.05)
    assert s.reserve([a], rates, "t3") == [None]  # second of two in 30 s
    advance(W + 0.05)
    [wait] = s.reserve([a], rates, "t4")  # the short window has room, the long one has not
    assert wait is not None and 25 < wait <= 30
    assert s.reserve([b], rates, "t5") == [None]  # t2's refusal counted nothing


def test_a_released_phone_has_its_quota_back(store):
    s, advance, key = store
    rates = [Rate(1, 30.0)]
    assert s.reserve([key("a"), key("b")], rates, "t1") == [None, None]
    s.release([key("a")], "t1")
    assert s.reserve([key("a"), key("b")], rates, "t2")[0] is None
    assert s.reserve([key("b")], rates, "t3")[0] is not None


def test_a_request_rate_counts_calls_in_a_moving_window(store):
    s, advance, key = store
    rate = Rate(3, W)
    assert [s.acquire([key("r")], [rate], f"t{i}") for i in range(3)] == [0.0, 0.0, 0.0]
    wait = s.acquire([key("r")], [rate], "t4")
    assert 0 < wait <= W + 0.001
    advance(wait + 0.01)
    assert s.acquire([key("r")], [rate], "t5") == 0.0


def test_a_held_call_runs_alone_and_counts_from_its_end(store):
    s, advance, key = store
    budgets = [Rate(2, 2.0), Rate(1, W / 2)]
    keys = [key("query"), key("balance")]
    assert s.acquire(keys, budgets, "c1", hold=30.0) == 0.0
    busy = s.acquire(keys, budgets, "c2", hold=30.0)
    assert 0 < busy <= 0.1  # in flight: look again soon
    advance(0.2)
    s.settle(keys, budgets, "c1")
    wait = s.acquire(keys, budgets, "c2", hold=30.0)
    assert W / 2 - 0.1 < wait <= W / 2 + 0.001  # counted from the end of c1, not its start
    advance(wait + 0.01)
    assert s.acquire(keys, budgets, "c2", hold=30.0) == 0.0
    s.settle(keys, budgets, "c2")
    advance(W / 2 + 0.01)
    wait = s.acquire(keys, budgets, "c3", hold=30.0)  # two in the long window now
    assert 1.0 < wait <= 2.0


def test_a_call_whose_process_died_frees_its_budget_when_its_hold_runs_out(store):
    s, advance, key = store
    budgets = [Rate(1, W)]
    assert s.acquire([key("q")], budgets, "dead", hold=0.2) == 0.0
    assert s.acquire([key("q")], budgets, "next", hold=0.2) > 0
    advance(0.25)
    wait = s.acquire([key("q")], budgets, "next", hold=0.2)  # counted as ended when its hold ran out
    assert 0 < wait <= W + 0.001
    advance(wait + 0.01)
    assert s.acquire([key("q")], budgets, "next", hold=0.2) == 0.0


# -- Limits over a store ---------------------------------------------------------------------

def limits_on(clock, **settings):
    slept = []

    def sleep(seconds):
        slept.append(seconds)
        clock.advance(seconds)

    return Limits(LimitsSettings(**settings), clock=clock, sleep=sleep), slept


def test_phones_over_quota_get_rate_limited_with_when_and_the_rest_are_held():
    clock = Clock()
    limits, _ = limits_on(clock, per_phone=(Rate(1, 60.0, "1/minute"),))
    first = limits.hold_phones(["13800138000"])
    assert list(first.held) == ["13800138000"] and not first.refused
    before = time.time()
    second = limits.hold_phones(["13800138000", "13900139000"])
    assert list(second.held) == ["13900139000"]
    reason = second.refused["13800138000"]
    assert (reason.code, reason.not_sent) == ("RATE_LIMITED", True)
    assert before + 59 <= reason.retry_at <= time.time() + 61
    assert "1/minute" in reason.message and "China time" in reason.message


def test_a_template_quota_replaces_the_default_and_counts_on_its_own():
    clock = Clock()
    limits, _ = limits_on(clock, per_phone=(Rate(5, 60.0),), scopes={"login": (Rate(1, 60.0, "1/minute"),)})
    assert not limits.hold_phones(["13800138000"], "login").refused
    refused = limits.hold_phones(["13800138000"], "login").refused
    assert "for 'login'" in refused["13800138000"].message
    assert not limits.hold_phones(["13800138000"], "shipping").refused  # the default, counted apart
    assert not limits.hold_phones(["13800138000"]).refused


def test_the_request_gate_waits_for_a_slot_up_to_rate_wait():
    clock = Clock()
    limits, slept = limits_on(clock, rate_wait=1.5)
    gate = limits.request_gate("opass", Rate(2, 1.0, "2/second"))
    assert [gate(i, None) for i in range(2)] == [None, None]
    assert gate(2, None) is None and 0.99 < sum(slept) < 1.01  # waited for the window to move
    assert gate(3, None) is None
    refused = gate(4, None)  # room only after the send's 1.5 s: refused without sleeping in vain
    assert refused.code == "RATE_LIMITED" and refused.not_sent and "2/second" in refused.message
    assert sum(slept) < 1.01


def test_a_store_that_is_down_fails_the_quotas_closed_unless_fail_open():
    down = "redis://127.0.0.1:9/0"  # the discard port: nothing listens there
    limits = Limits(LimitsSettings(store=down, per_phone=(Rate(1, 60.0),)))
    with pytest.raises(LimitsUnavailable, match="nothing was sent.*fail_open"):
        limits.hold_phones(["13800138000"])
    limits = Limits(LimitsSettings(store=down, per_phone=(Rate(1, 60.0),), fail_open=True))
    assert not limits.hold_phones(["13800138000"]).refused


def test_vendor_limits_fall_back_to_this_process_when_the_store_is_down():
    limits = Limits(LimitsSettings(store="redis://127.0.0.1:9/0", query_wait=1.0))
    gate = limits.request_gate("opass", Rate(1, 60.0))
    assert gate(0, None) is None
    assert gate(1, None).code == "RATE_LIMITED"  # still counted, here
    budget = Budget("balance", 1, 60.0)
    with limits.spend("opass", [budget], hold=5.0):
        pass
    with pytest.raises(RateLimited, match="query_wait"):
        with limits.spend("opass", [budget], hold=5.0):
            pass


def test_the_store_password_never_shows_in_an_error():
    limits = Limits(LimitsSettings(store="redis://:s3cret@127.0.0.1:9/0", per_phone=(Rate(1, 60.0),)))
    with pytest.raises(LimitsUnavailable) as info:
        limits.hold_phones(["13800138000"])
    assert "127.0.0.1:9" in str(info.value) and "s3cret" not in str(info.value)


def test_a_redis_store_without_redis_py_is_a_config_error(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "redis" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install 'smsgate\[limits\]'"):
        limits_settings({"limits": {"store": "redis://127.0.0.1:6379/0"}}, {})
