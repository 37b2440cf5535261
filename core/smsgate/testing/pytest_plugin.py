"""pytest plugin (entry point ``pytest11``): fixtures for apps and plugin authors."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def smsgate_outbox() -> Any:
    """The loopback provider's outbox, emptied before and after the test."""
    from smsgate.default_plugins import loopback

    loopback.clear_outbox()
    yield loopback.outbox
    loopback.clear_outbox()


@pytest.fixture
def loopback_simulator() -> Any:
    """A running :class:`smsgate.testing.LoopbackSimulator` on 127.0.0.1."""
    from smsgate.testing.loopback import LoopbackSimulator

    with LoopbackSimulator() as sim:
        yield sim


@pytest.fixture
def fixed_clock() -> Any:
    """``(clock, nonce)`` callables fixed to the juse document's header-table values."""
    from smsgate.testing.conformance import FIXED_NONCE, FIXED_TIME

    return (lambda: FIXED_TIME), (lambda: FIXED_NONCE)
