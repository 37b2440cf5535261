"""What a command imports at start (a behaviour, not a timing): a send that never leaves the process
imports no HTTP client, no cattrs, no routed send, no limiter when no limit is set, no values of other
calls (smsgate.reporting); the CLI builds only the invoked command's parser
and still shows every command in its help and errors."""

import importlib
import json
import subprocess
import sys
import textwrap

from smsgate import cli

NOT_FOR_A_MEMORY_SEND = ("urllib3", "http.client", "ssl", "cattrs", "importlib.metadata", "socket", "shutil",
                         "smsgate.sending.routing.route", "smsgate.sending.ledger", "smsgate_opass.plugin",
                         # with no limit configured: no limiter, no rates; the values of other calls
                         "smsgate.sending.limits.limiter", "smsgate.sending.limits.rates", "smsgate.reporting")


def test_a_memory_send_imports_no_transport_converter_or_routed_send(tmp_path):
    config = tmp_path / "smsgate.toml"
    config.write_text('[providers.loopback]\nbase_url = "memory://loopback"\napi_key = "k"\napi_secret = "s"\n')
    code = textwrap.dedent(f"""
        import json, sys
        from smsgate.cli import main
        code = main(["send", "--config", {str(config)!r}, "--to", "13800138000", "--content", "hi", "--json"])
        print(json.dumps([code, sorted(sys.modules)]), file=sys.stderr)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    code, modules = json.loads(out.stderr.strip().splitlines()[-1])
    assert code == 0 and json.loads(out.stdout)["accepted"] == ["13800138000"]
    assert [m for m in NOT_FOR_A_MEMORY_SEND if m in modules] == []


def test_help_and_unknown_commands_still_see_every_command():
    full = cli.build_parser().format_help()
    for command in ("providers", "demo", "check", "send", "reports", "serve", "poll", "status"):
        assert command in full
    out = subprocess.run([sys.executable, "-m", "smsgate.cli", "bogus"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "invalid choice: 'bogus'" in out.stderr and "providers" in out.stderr
    out = subprocess.run([sys.executable, "-m", "smsgate.cli", "-h"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == subprocess.run(
        [sys.executable, "-c", "from smsgate import cli; print(cli.build_parser().format_help(), end='')"],
        capture_output=True, text=True, timeout=60).stdout


def test_the_invoked_command_is_found_past_verbosity_flags():
    assert cli._command(["send", "--to", "1"]) == "send"
    assert cli._command(["-v", "send"]) == "send" and cli._command(["-vv", "--verbose", "reports"]) == "reports"
    assert cli._command(["--", "send"]) is None and cli._command(["-h"]) is None and cli._command([]) is None
    parser = cli.build_parser("send")
    assert parser.parse_args(["-vv", "send", "--to", "13800138000", "--content", "x"]).verbose == 2


def test_each_command_is_found_in_its_own_group():
    groups = {name: importlib.import_module(f"smsgate.cli.{name}") for name in cli.GROUPS}
    assert cli.COMMAND_GROUPS == {command: name for name, group in groups.items() for command in group.COMMANDS}
    for command, name in cli.COMMAND_GROUPS.items():
        assert cli._groups(command) == [groups[name]]
