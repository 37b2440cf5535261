import pytest


@pytest.fixture(autouse=True)
def _only_builtin_plugins_unless_asked(monkeypatch):
    """Core tests see only the built-in plugins unless a test sets SMSGATE_PLUGINS itself."""
    monkeypatch.setenv("SMSGATE_PLUGINS", "")
    yield


@pytest.fixture
def push_reports(tmp_path):
    """``push_reports(sim, gateway, name="loopback")``: the loopback simulator pushes every report it
    has to a Receiver of ``gateway`` (over HTTP), which stores and handles them before this returns."""
    import time

    from smsgate.receiving import BackgroundServer, Receiver

    def push(sim, gateway, name="loopback"):
        rc = Receiver(gateway, spool=tmp_path / "push-spool.sqlite3", poll_interval=0.05)
        try:
            with BackgroundServer(rc.wsgi_app) as srv:
                assert sim.push_reports(f"{srv.url}/callbacks/{name}", time.time()).status == 200
                assert rc.drain()
        finally:
            rc.close()

    return push
