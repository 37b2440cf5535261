"""Limits in the send flow and the Gateway, on the memory store, against the loopback simulator."""

from __future__ import annotations

import json

import pytest

from smsgate import ConfigError, Gateway, LimitsUnavailable, Message, Outcome
from smsgate.testing import LoopbackSimulator

A, B = "13800138000", "13900139000"


@pytest.fixture
def sim():
    with LoopbackSimulator() as s:
        yield s


def gateway(sim, limits=None, templates=None, fake_time=False, ledger=None, **provider):
    config = {"providers": {"loopback": {**sim.demo_config(), **provider}}}
    if ledger is not None:
        config["ledger"] = ledger
    if limits is not None:
        config["limits"] = limits
    if templates is not None:
        config["templates"] = templates
    gw = Gateway(config)
    if fake_time:  # every wait of the limits passes at once, on a clock of their own
        now = [100.0]
        gw.monotonic = lambda: now[0]
        gw.sleep = lambda s: now.__setitem__(0, now[0] + s)
    return gw


def sent_phones(sim):
    return [p for r in sim.requests if r.path.endswith("/send") for p in r.json()["phones"]]


def code(to=(A,), template="LB_CODE", key=None):
    return Message(to=list(to), template_id=template, params=["1234"], key=key)


def test_a_phone_over_its_quota_is_rejected_rate_limited_and_the_others_go_out(sim):
    gw = gateway(sim, limits={"per_phone": ["1/minute", "5/hour"]})
    assert gw.send(code()).ok
    result = gw.send(code([A, B]))
    [refused] = result.rejected
    assert (refused.phone, refused.reason.code, refused.reason.not_sent) == (A, "RATE_LIMITED", True)
    assert "may be sent again at" in refused.reason.message and refused.reason.retry_at is not None
    assert result.accepted == [B]
    assert sent_phones(sim) == [A, B]  # the refused phone never reached the vendor
    row = result.to_json_dict()["rejected"][0]
    assert row["code"] == "RATE_LIMITED" and row["retry_at"].endswith("+08:00")


def test_a_send_whose_every_phone_is_over_quota_sends_nothing(sim):
    gw = gateway(sim, limits={"per_phone": ["1/minute"]})
    gw.send(code([A, B]))
    result = gw.send(code([B, A]))
    assert [r.phone for r in result.rejected] == [B, A]
    assert len([r for r in sim.requests if r.path.endswith("/send")]) == 1


def test_a_personalised_send_keeps_each_phone_its_own_content(sim):
    gw = gateway(sim, limits={"per_phone": ["1/minute"]})
    gw.send(code([A]))
    result = gw.send(Message.personalised({A: ["1111"], B: ["2222"]}, template_id="LB_CODE"))
    assert result.accepted == [B] and result.rejected[0].phone == A
    assert sim.requests[-1].json()["personal"] == {B: ["2222"]}


def test_only_phones_handed_to_a_vendor_use_their_quota(sim):
    import socket

    with socket.socket() as s:  # a port nothing listens on: every connection is refused
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    gw = gateway(sim, limits={"per_phone": ["1/minute"]}, base_url=f"http://127.0.0.1:{closed}",
                 connect_retries=0)
    [refused] = gw.send(code()).rejected
    assert refused.reason.code == "CONNECT"
    assert not gw.limits.hold_phones([A]).refused  # the quota was given back
    # a phone the vendor itself refused was handed to it: it counts
    with LoopbackSimulator(reject_numbers=[B]) as refusing:
        gw = gateway(refusing, limits={"per_phone": ["1/minute"]})
        assert gw.send(code([B])).rejected[0].reason.code != "RATE_LIMITED"
        assert gw.send(code([B])).rejected[0].reason.code == "RATE_LIMITED"


def test_a_template_quota_replaces_the_default_and_a_send_may_name_its_scope(sim):
    gw = gateway(sim, limits={"per_phone": ["3/minute"]},
                 templates={"LB_CODE": {"per_phone": ["1/minute"]}, "login": {"per_phone": ["1/hour"]}})
    assert gw.send(code()).ok
    assert gw.send(code()).rejected[0].reason.code == "RATE_LIMITED"  # LB_CODE: 1/minute
    assert "for 'LB_CODE'" in gw.send(code()).rejected[0].reason.message
    notice = Message(to=[A], text="your parcel is on its way")
    assert gw.send(notice).ok and gw.send(notice).ok and gw.send(notice).ok  # the default: 3/minute
    assert gw.send(notice).rejected[0].reason.code == "RATE_LIMITED"
    other = code(template="LB_OTHER")  # named scope: counted under "login", whatever its template
    assert gw.send(other, limit_scope="login").ok
    assert "1/hour for 'login'" in gw.send(other, limit_scope="login").rejected[0].reason.message


def test_requests_beyond_the_provider_rate_are_rejected_not_sent_and_keep_the_quota(sim):
    gw = gateway(sim, limits={"per_phone": ["10/minute"], "rate_wait": 0.5}, fake_time=True, rate="2/second")
    phones = [f"1380013{i:04d}" for i in range(250)]  # three requests: 100, 100 and 50 phones
    result = gw.send(code(phones))
    # the requests run concurrently, so which one finds no slot depends on the threads' order:
    # exactly two reach the vendor, and the third's phones (all of them, none other) are refused
    sent = sent_phones(sim)
    assert len([r for r in sim.requests if r.path.endswith("/send")]) == 2
    assert sorted(result.accepted) == sorted(sent) and len(sent) in (150, 200)
    unsent = [r.phone for r in result.rejected]
    assert sorted(unsent) == sorted(set(phones) - set(sent)) and len(unsent) == 250 - len(sent)
    assert {r.reason.code for r in result.rejected} == {"RATE_LIMITED"}
    assert all(r.reason.not_sent and "2/second" in r.reason.message for r in result.rejected)
    counts = gw.limits.store._logs
    assert all(len(counts[gw.limits._phone_key("*", p)].ended) == 0 for p in unsent)  # given back


def test_a_send_waits_for_the_rate_within_rate_wait(sim):
    gw = gateway(sim, limits={"rate_wait": 5}, fake_time=True, rate="1/second")
    assert all(gw.send(code([f"1380013{i:04d}"])).ok for i in range(4))  # each waited a second
    assert len(sim.requests) == 4


def test_the_plugin_declares_the_default_rate_and_the_config_replaces_or_removes_it(sim):
    assert gateway(sim).rate("loopback") is None  # loopback declares none
    assert str(gateway(sim, rate="50/second").rate("loopback")) == "50/second"
    assert gateway(sim, rate="none").rate("loopback") is None
    with pytest.raises(ConfigError, match="field 'rate' must be a rate"):
        gateway(sim, rate="fast").rate("loopback")


def test_quotas_fail_closed_when_the_store_is_down_and_open_when_asked(sim):
    down = "redis://127.0.0.1:9/0"  # the discard port: nothing listens there
    gw = gateway(sim, limits={"store": down, "per_phone": ["1/minute"]})
    with pytest.raises(LimitsUnavailable, match="nothing was sent"):
        gw.send(code())
    assert sim.requests == []
    gw = gateway(sim, limits={"store": down, "per_phone": ["1/minute"], "fail_open": True})
    assert gw.send(code()).ok and gw.send(code()).ok


def test_without_quotas_a_store_that_is_down_stops_nothing(sim):
    gw = gateway(sim, limits={"store": "redis://127.0.0.1:9/0"}, rate="100/second")
    assert gw.send(code()).ok


def test_the_cli_prints_a_quota_refusal_and_exits_1(sim, tmp_path, capsys):
    from smsgate.cli import main

    cfg = tmp_path / "smsgate.toml"
    cfg.write_text("[providers.loopback]\n" + "".join(f"{k} = {json.dumps(v)}\n" for k, v in sim.demo_config().items())
                   + '[limits]\nstore = "redis://127.0.0.1:9/0"\nper_phone = ["1/minute"]\n', encoding="utf-8")
    assert main(["send", "--config", str(cfg), "--to", A, "--template", "LB_CODE"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("smsgate: error: per-phone quotas cannot be checked") and "Traceback" not in err
    assert sim.requests == []


def test_limits_problems_are_reported_with_every_other_config_problem():
    with pytest.raises(ConfigError) as info:
        Gateway({"providers": {"loopback": {"rate": "fast"}}, "limits": {"per_phon": [], "rate_wait": -1},
                 "templates": {"login": {"per_phone": ["1/minit"]}}})
    text = str(info.value)
    assert "4 problems" in text
    assert "did you mean 'per_phone'" in text and "rate_wait must be more than 0" in text
    assert "[templates.login] per_phone: '1/minit' is not a rate" in text and "field 'rate'" in text


def test_a_ledger_replay_answers_refused_phones_as_recorded_and_counts_nothing(sim, tmp_path):
    gw = gateway(sim, limits={"per_phone": ["1/minute"]}, ledger={"url": f"sqlite:///{tmp_path}/ledger.sqlite3"})
    assert gw.send(code([A])).ok
    first = gw.send(code([A, B], key="signup-42"))
    assert first.accepted == [B] and first.rejected[0].reason.code == "RATE_LIMITED"
    again = gw.send(code([A, B], key="signup-42"))  # a redelivered task: answered from the ledger
    assert again.replayed and again.accepted == [B]
    assert [(r.phone, r.reason.code) for r in again.rejected] == [(A, "RATE_LIMITED")]
    assert sent_phones(sim) == [A, B]
    assert len(gw.limits.store._logs[gw.limits._phone_key("*", B)].ended) == 1  # the replay counted nothing
    every = gw.send(code([A], key="again-7"))  # every phone refused: nothing sent, and recorded so
    assert every.rejected[0].reason.code == "RATE_LIMITED"
    assert gw.send(code([A], key="again-7")).rejected[0].reason.code == "RATE_LIMITED"
    assert sent_phones(sim) == [A, B]
