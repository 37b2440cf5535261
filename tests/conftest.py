import pytest


@pytest.fixture(autouse=True)
def _only_builtin_plugins_unless_asked(monkeypatch):
    """Core tests see only the built-in plugins unless a test sets SMSGATE_PLUGINS itself."""
    monkeypatch.setenv("SMSGATE_PLUGINS", "")
    yield
