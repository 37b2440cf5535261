"""The ledger from the command line: send --key twice, the same key with other params, status, prune."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from smsgate import Gateway
from smsgate.testing import LoopbackSimulator


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "smsgate.cli", *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def setup(tmp_path):
    with LoopbackSimulator() as sim:
        path = tmp_path / "smsgate.toml"
        provider = "".join(f'{k} = "{v}"\n' for k, v in sim.demo_config().items())
        path.write_text(f'[providers.lb]\nprovider = "loopback"\n{provider}\n'
                        f'[ledger]\nurl = "sqlite:///{tmp_path}/ledger.sqlite3"\n')
        yield str(path), sim


SEND = ("send", "--provider", "lb", "--to", "13800138000,13900139000", "--template", "T1", "--params", '["1234"]')


def test_send_key_twice_then_other_params_then_status_with_delivery(setup, push_reports):
    path, sim = setup
    first = run_cli(*SEND, "--config", path, "--key", "K-1", "--json")
    again = run_cli(*SEND, "--config", path, "--key", "K-1", "--json")
    assert first.returncode == 0 and again.returncode == 0, first.stderr + again.stderr
    one, two = json.loads(first.stdout), json.loads(again.stdout)
    assert (one["replayed"], two["replayed"]) == (False, True)
    assert one["recipients"] == two["recipients"]
    assert [(r["phone"], r["outcome"], r["provider"]) for r in two["recipients"]] == [
        ("13800138000", "accepted", "lb"), ("13900139000", "accepted", "lb")]
    assert len(sim.requests_to("/send")) == 1
    assert "sent before" in again.stderr

    other = run_cli(*SEND[:-1], '["9999"]', "--config", path, "--key", "K-1", "--json")
    assert other.returncode == 2 and other.stdout == ""
    assert "'K-1'" in other.stderr and "Traceback" not in other.stderr
    assert len(sim.requests_to("/send")) == 1

    status = run_cli("status", "K-1", "--config", path, "--json")
    rows = json.loads(status.stdout)["rows"]
    assert [r["delivery"] for r in rows] == [None, None]

    with Gateway(path) as gw:
        push_reports(sim, gw, "lb")
    status = run_cli("status", "K-1", "--config", path, "--json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["key"] == "K-1" and data["in_flight"] is False
    assert [(r["phone"], r["outcome"], r["provider"], r["message_id"], r["delivery"]["status"])
            for r in data["rows"]] == [(p, "accepted", "lb", one["message_ids"][0], "delivered")
                                       for p in ("13800138000", "13900139000")]
    text = run_cli("status", "K-1", "--config", path)
    assert text.returncode == 0 and text.stdout.count("delivered") == 2
    # a bulk send's key: counts, not a line per recipient
    summary = run_cli("status", "K-1", "--config", path, "--summary", "--json")
    assert summary.returncode == 0, summary.stderr
    assert json.loads(summary.stdout)["counts"] == [
        {"outcome": "accepted", "settled": True, "delivery": "delivered", "recipients": 2}]
    text = run_cli("status", "K-1", "--config", path, "--summary")
    assert text.stdout.splitlines() == ["K-1\t2 recipient(s)\tlb", "accepted\tdelivered\t2"]


def test_status_and_prune_errors_are_one_line(setup, tmp_path):
    path, _ = setup
    missing = run_cli("status", "nope", "--config", path)
    assert missing.returncode == 2 and "'nope'" in missing.stderr and "Traceback" not in missing.stderr
    bad = run_cli("ledger", "prune", "--older-than", "soon", "--config", path)
    assert bad.returncode == 2 and "--older-than" in bad.stderr
    ok = run_cli("ledger", "prune", "--older-than", "30d", "--config", path)
    assert ok.returncode == 0 and "pruned 0" in ok.stderr
    plain = tmp_path / "plain.toml"
    plain.write_text('[providers.lb]\nprovider = "loopback"\n')
    for args in (("status", "K"), ("ledger", "prune", "--older-than", "1d"),
                 ("send", "--to", "13800138000", "--content", "x", "--key", "K")):
        out = run_cli(*args, "--config", str(plain))
        assert out.returncode == 2 and "[ledger]" in out.stderr, out.stderr


def test_bad_ledger_tables_are_config_errors(tmp_path):
    for table, needle in (('url = "mysql://x"', "mysql"), ('url = 3', "url"), ('uri = "sqlite:///x"', "'uri'"),
                          (f'url = "sqlite:///{tmp_path}/no/such/dir/l.sqlite3"', "does not exist"),
                          (f'url = "sqlite:///{tmp_path}/l.sqlite3"\nsynchronous = "SOMETIMES"', "synchronous")):
        path = tmp_path / "c.toml"
        path.write_text(f'[providers.lb]\nprovider = "loopback"\n\n[ledger]\n{table}\n')
        out = run_cli("send", "--to", "13800138000", "--content", "x", "--config", str(path))
        assert out.returncode == 2 and needle in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_reports_pulled_by_the_cli_are_matched_to_the_ledger(setup):
    path, sim = setup
    assert run_cli(*SEND, "--config", path, "--key", "K-2").returncode == 0
    sim.deliver_all()  # kept for a pull
    pulled = run_cli("reports", "--provider", "lb", "--config", path, "--json")
    assert pulled.returncode == 0 and len(json.loads(pulled.stdout)) == 2, pulled.stderr
    rows = json.loads(run_cli("status", "K-2", "--config", path, "--json").stdout)["rows"]
    assert [r["delivery"]["status"] for r in rows] == ["delivered", "delivered"]
