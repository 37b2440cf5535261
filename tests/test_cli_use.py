"""The CLI for real use: --json recipients, --to @FILE / -, --personal CSV, --at ISO 8601, a
progress bar for bulk sends, --handler from the current directory, smsgate simulate, /healthz."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import time

import pytest

from smsgate import Gateway, Message, Receiver
from smsgate.cli import main
from smsgate.models import CHINA_TZ
from smsgate.receiving import BackgroundServer
from smsgate.testing import LoopbackSimulator


@pytest.fixture
def sim():
    with LoopbackSimulator(reject_numbers=["13900139000"]) as s:
        yield s


@pytest.fixture
def config(sim, tmp_path):
    path = tmp_path / "smsgate.toml"
    values = sim.demo_config()
    path.write_text("[providers.loopback]\n" + "".join(f'{k} = "{v}"\n' for k, v in values.items()))
    return str(path)


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_recipients_map_each_phone_to_outcome_message_id_and_reason(config, capsys):
    code, out, _ = run(capsys, "send", "--config", config, "--to", "13800138000,13900139000", "--content", "hi",
                       "--json")
    assert code == 1
    rows = {r["phone"]: r for r in json.loads(out)["recipients"]}
    assert rows["13800138000"]["outcome"] == "accepted" and rows["13800138000"]["message_id"]
    assert rows["13800138000"]["provider"] == "loopback" and rows["13800138000"]["reason"] is None
    assert rows["13900139000"]["outcome"] == "rejected" and rows["13900139000"]["message_id"] is None
    assert rows["13900139000"]["reason"]["code"] == "REJECTED" and rows["13900139000"]["reason"]["not_sent"]


def test_json_recipients_give_unknown_ones_their_reason(config, sim, capsys):
    sim.inject("http_500")
    code, out, _ = run(capsys, "send", "--config", config, "--to", "13800138000", "--content", "hi", "--json")
    row = json.loads(out)["recipients"][0]
    assert code == 1 and row["outcome"] == "unknown" and row["reason"]["code"] and row["reason"]["message"]


def test_to_from_a_file_and_from_stdin(config, sim, tmp_path, capsys, monkeypatch):
    numbers = tmp_path / "numbers.txt"
    numbers.write_text("13800138000\n\n  +86 137-0013-7000 \n13600136000\n")
    code, out, _ = run(capsys, "send", "--config", config, "--to", f"@{numbers}", "--content", "hi", "--json")
    assert code == 0 and json.loads(out)["accepted"] == ["13800138000", "13700137000", "13600136000"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("13500135000\n13400134000\n"))
    code, out, _ = run(capsys, "send", "--config", config, "--to", "-", "--content", "hi", "--json")
    assert code == 0 and json.loads(out)["accepted"] == ["13500135000", "13400134000"]
    code, _, err = run(capsys, "send", "--config", config, "--to", f"@{tmp_path}/missing.txt", "--content", "hi")
    assert code == 2 and "cannot read" in err and "missing.txt" in err


def test_personal_csv_positional_named_and_text(config, sim, tmp_path, capsys):
    plain = tmp_path / "codes.csv"
    plain.write_text("13800138000,1234,5\n13700137000,9999,10\n")
    code, out, err = run(capsys, "send", "--config", config, "--personal", f"@{plain}", "--template", "LB_CODE",
                         "--json")
    assert code == 0, err
    assert json.loads(out)["accepted"] == ["13800138000", "13700137000"]
    assert json.loads(sim.requests[-1].body)["personal"] == {"13800138000": ["1234", "5"],
                                                             "13700137000": ["9999", "10"]}
    named = tmp_path / "named.csv"
    named.write_text("phone,code,minutes\n13800138000,1234,5\n")
    code, _, err = run(capsys, "send", "--config", config, "--personal", f"@{named}", "--template", "LB_CODE")
    assert code == 0, err
    assert json.loads(sim.requests[-1].body)["personal"] == {"13800138000": {"code": "1234", "minutes": "5"}}
    texts = tmp_path / "texts.csv"
    texts.write_text('13800138000,"Hello, Li"\n13700137000,Hi Wang\n')
    code, _, err = run(capsys, "send", "--config", config, "--personal", f"@{texts}", "--content", "-")
    assert code == 0, err
    assert json.loads(sim.requests[-1].body)["personal"] == {"13800138000": "Hello, Li", "13700137000": "Hi Wang"}
    bad = tmp_path / "bad.csv"
    bad.write_text("phone,code\n13800138000,1,2\n")
    code, _, err = run(capsys, "send", "--config", config, "--personal", f"@{bad}", "--template", "LB_CODE")
    assert code == 2 and "line 2" in err and "named params code" in err


@pytest.mark.parametrize("text", ["2030-01-01T09:00", "2030-01-01 09:00:00", "2030-01-01T01:00:00Z",
                                  "2030-01-01T09:00+08:00"])
def test_at_takes_iso_8601_in_china_time_unless_an_offset_is_given(text):
    from smsgate.cli.sending import _parse_at

    assert _parse_at(text) == dt.datetime(2030, 1, 1, 9, 0, tzinfo=CHINA_TZ)


def test_at_refuses_the_past_and_nonsense(config, capsys):
    code, _, err = run(capsys, "send", "--config", config, "--to", "13800138000", "--content", "hi",
                       "--at", "2020-01-01T09:00")
    assert code == 2 and "in the past" in err
    code, _, err = run(capsys, "send", "--config", config, "--to", "13800138000", "--content", "hi",
                       "--at", "tomorrow")
    assert code == 2 and "ISO 8601" in err and "Traceback" not in err
    future = (dt.datetime.now(CHINA_TZ) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    code, _, err = run(capsys, "send", "--config", config, "--to", "13800138000", "--content", "hi", "--at", future)
    assert code == 0, err


def test_bulk_send_advances_a_progress_bar_per_answered_request(sim, monkeypatch):
    pytest.importorskip("tqdm")
    from smsgate.cli import progress

    updates: list[int] = []

    class Bar:
        def __init__(self, total, **kwargs):
            self.total = total

        def update(self, n):
            updates.append(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    import tqdm

    monkeypatch.setattr(tqdm, "tqdm", Bar)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    gw = Gateway({"providers": {"loopback": sim.demo_config()}})
    phones = [f"1380000{i:04d}" for i in range(250)]
    message = Message(to=phones, text="hi")
    with progress.progress_bar(gw, message):
        result = gw.send(message)
    assert len(result.accepted) == 250
    assert sorted(updates) == [50, 100, 100]  # the loopback takes 100 phones a request
    assert not [p for p in gw.plugins.pm.get_plugins() if isinstance(p, progress.ProgressWrapper)]


def test_no_progress_bar_when_stderr_is_not_a_terminal(sim, tmp_path):
    numbers = tmp_path / "n.txt"
    numbers.write_text("\n".join(f"1380000{i:04d}" for i in range(300)))
    path = tmp_path / "c.toml"
    path.write_text("[providers.loopback]\n" + "".join(f'{k} = "{v}"\n' for k, v in sim.demo_config().items()))
    out = subprocess.run([sys.executable, "-m", "smsgate.cli", "send", "--config", str(path), "--to", f"@{numbers}",
                          "--content", "hi", "--json"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stderr == ""
    assert len(json.loads(out.stdout)["recipients"]) == 300


def test_handler_module_is_found_in_the_current_directory(sim, tmp_path):
    (tmp_path / "myapp_handlers.py").write_text(
        "import json\n"
        "def save(report):\n"
        "    with open('got.jsonl', 'a') as fh:\n"
        "        fh.write(json.dumps({'id': report.message_id}) + '\\n')\n")
    gw = Gateway({"providers": {"loopback": sim.demo_config()}})
    gw.send(Message(to=["13800138000"], text="hi"))
    sim.deliver_all()
    path = tmp_path / "c.toml"
    path.write_text("[providers.loopback]\n" + "".join(f'{k} = "{v}"\n' for k, v in sim.demo_config().items()))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", "import sys; from smsgate.cli import main; "
                          "sys.path[:] = [p for p in sys.path if p not in ('', '.')]; sys.exit(main())",
                          "poll", "--once", "--config", str(path), "--spool", "s.sqlite3",
                          "--handler", "myapp_handlers:save"], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "got.jsonl").read_text().count('"id"') == 1


def _read_snippet(proc: subprocess.Popen) -> str:
    line = proc.stderr.readline()  # printed after the snippet was flushed to stdout
    assert "listening on" in line, line + proc.stderr.read()
    os.set_blocking(proc.stdout.fileno(), False)
    return proc.stdout.read()


def test_simulate_prints_a_config_that_a_send_works_with(tmp_path):
    pytest.importorskip("smsgate_opass")
    env = {**os.environ, "SMSGATE_PLUGINS": "opass"}
    proc = subprocess.Popen([sys.executable, "-m", "smsgate.cli", "simulate", "opass", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        snippet = _read_snippet(proc)
        assert "[providers.opass]" in snippet and "base_url = \"http://127.0.0.1:" in snippet
        config = tmp_path / "sim.toml"
        config.write_text(snippet)
        out = subprocess.run([sys.executable, "-m", "smsgate.cli", "send", "--config", str(config), "--to",
                              "13800138000", "--template", "574277763210051584", "--params", '["x","02"]', "--json"],
                             capture_output=True, text=True, env=env, timeout=60)
        assert out.returncode == 0, out.stderr
        assert json.loads(out.stdout)["recipients"][0]["outcome"] == "accepted"
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0


def test_simulate_unknown_vendor_is_a_usage_error(capsys):
    code, _, err = run(capsys, "simulate", "nosuchvendor")
    assert code == 2 and "unknown provider 'nosuchvendor'" in err


def test_healthz_for_load_balancers(sim, tmp_path):
    rc = Receiver(Gateway({"providers": {"loopback": sim.demo_config()}}), spool=tmp_path / "s.sqlite3",
                  poll_interval=0.05)
    rc.on_report(lambda r: None, name="noop")
    with BackgroundServer(rc.wsgi_app) as srv:
        import urllib.error
        import urllib.request

        with urllib.request.urlopen(srv.url + "/healthz", timeout=10) as resp:
            assert resp.status == 200
            assert json.loads(resp.read()) == {"ok": True, "spool": "writable", "dispatcher": "running"}
        dead = __import__("threading").Thread(target=lambda: None)
        dead.start()
        dead.join()
        rc.dispatcher._threads.append(dead)  # a handler thread that stopped
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(srv.url + "/healthz", timeout=10)
        assert err.value.code == 503 and "not running" in json.loads(err.value.read())["dispatcher"]
        rc.dispatcher._threads.remove(dead)
        rc.stop()
        rc.spool.close()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(srv.url + "/healthz", timeout=10)
        assert err.value.code == 503 and "not writable" in json.loads(err.value.read())["spool"]
    rc.close()
