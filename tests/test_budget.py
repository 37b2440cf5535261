"""Vendor call budgets declared as Capabilities.budgets, kept by the limits store: the rule, on a
fake clock."""

from __future__ import annotations

import pytest

from smsgate import Budget, Capabilities, Operation
from smsgate.sending.limits import Limits

Q = Budget("query", {Operation.PULL_REPORTS, Operation.BALANCE}, calls=3, per=60.0)
B = Budget("balance", {Operation.BALANCE}, calls=1, per=15.0)


class Clock:
    def __init__(self):
        self.now, self.slept = 1000.0, []

    def __call__(self):
        return self.now

    def sleep(self, s):
        self.slept.append(round(s, 3))
        self.now += s


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def limits(clock):
    return Limits(clock=clock, sleep=clock.sleep)


def spend(limits, clock, account, *budgets, takes=0.0):
    with limits.spend(account, budgets, hold=30.0):
        clock.now += takes  # the call's own duration


def test_n_calls_a_window_counted_from_each_answer(limits, clock):
    for _ in range(3):
        spend(limits, clock, "a", Q, takes=1.0)
    assert clock.slept == []
    spend(limits, clock, "a", Q)  # the first ended at 1001: wait until 1061
    assert sum(clock.slept) == pytest.approx(58.0)


def test_an_operation_in_two_budgets_waits_for_both_and_spends_both(limits, clock):
    spend(limits, clock, "a", Q, B)
    spend(limits, clock, "a", Q)  # the query budget has room; balance's 15 s do not hold this up
    assert clock.slept == []
    spend(limits, clock, "a", Q, B)  # balance waits its 15 s (the query budget has its third call)
    assert sum(clock.slept) == pytest.approx(15.0)
    spend(limits, clock, "a", Q)  # three query calls in the minute: wait for the first to leave it
    assert sum(clock.slept) == pytest.approx(60.0)


def test_a_failed_call_still_counts_and_accounts_are_separate(limits, clock):
    with pytest.raises(RuntimeError):
        with limits.spend("a", [B], hold=30.0):
            raise RuntimeError("the vendor may have counted it")
    spend(limits, clock, "b", B)
    assert clock.slept == []
    spend(limits, clock, "a", B)
    assert sum(clock.slept) == pytest.approx(15.0)


def test_capabilities_fold_min_interval_into_budgets():
    caps = Capabilities(operations={Operation.PULL_REPORTS, Operation.BALANCE}, budgets=[Q],
                        min_interval={Operation.BALANCE: 15.0})
    assert [b.name for b in caps.budgets_for(Operation.BALANCE)] == ["query", "balance"]
    assert caps.spacing(Operation.PULL_REPORTS) == 20.0 and caps.spacing(Operation.SEND) == 0.0
    assert caps.to_json_dict()["budgets"] == [{"name": "query", "operations": ["balance", "pull_reports"],
                                                "calls": 3, "per": 60.0}]
    with pytest.raises(ValueError):
        Budget("none", {Operation.BALANCE}, calls=0, per=1.0)
