"""Real services for the tests that need them: PostgreSQL, Redis, RabbitMQ on 127.0.0.1.

A test asks for ``postgres_url``, ``redis_url`` or ``amqp_url``. When the service is not reachable
the test is skipped with the reason, and the run ends with one line naming what was skipped and
why; with ``CI=true`` a missing service fails the test instead (CI must run them all).
Every run gets its own ``service_run_id``: use it for the schema, key prefix or queue names so
concurrent runs never collide. Override the addresses with SMSGATE_TEST_POSTGRES, _REDIS, _AMQP.
"""

from __future__ import annotations

import os
import socket
import urllib.parse
import uuid

import pytest

SERVICES = {
    "postgres": ("PostgreSQL", os.environ.get("SMSGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")),
    "redis": ("Redis", os.environ.get("SMSGATE_TEST_REDIS", "redis://127.0.0.1:6379/0")),
    "amqp": ("RabbitMQ", os.environ.get("SMSGATE_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672//")),
}
_skipped: dict[str, int] = {}
_RUN_ID = f"sg{uuid.uuid4().hex[:10]}"


def _reachable(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 0), timeout=2):
            return True
    except OSError:
        return False


def _service(name: str) -> str:
    label, url = SERVICES[name]
    if _reachable(url):
        return url
    parts = urllib.parse.urlsplit(url)
    reason = f"{label} not reachable at {parts.hostname}:{parts.port}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI=true: tests that need it must run)")
    _skipped[reason] = _skipped.get(reason, 0) + 1
    pytest.skip(reason)


@pytest.fixture(scope="session")
def service_run_id() -> str:
    """Unique per test run: a schema name, Redis key prefix or queue-name prefix."""
    return _RUN_ID


@pytest.fixture
def postgres_url() -> str:
    return _service("postgres")


@pytest.fixture
def redis_url() -> str:
    return _service("redis")


@pytest.fixture
def amqp_url() -> str:
    return _service("amqp")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for reason, count in _skipped.items():
        terminalreporter.write_line(f"smsgate: skipped {count} test(s): {reason}")
