"""Providers declared without importing their hooks: discovery reads each plugin's ``Provider``
declaration; the hooks and Config class are imported on first use. Old-style plugins (an entry
point naming a hooks module with ``smsgate_provider``) keep working."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from smsgate import Capabilities, ConfigError, Gateway, Message, Operation, PluginManager, Provider, hookimpl
from smsgate import entrypoints

HEAVY = ("pluggy", "smsgate.models", "smsgate.config", "cattrs", "urllib3", "structlog", "importlib.metadata",
         "smsgate.default_plugins.loopback", "smsgate.sending.gateway")


def test_listing_providers_imports_no_plugin_hooks_dialect_or_wire():
    code = textwrap.dedent("""
        import json, sys
        from smsgate.cli import main
        assert main(["providers", "--json"]) == 0
        print(json.dumps(sorted(sys.modules)), file=sys.stderr)
    """)
    env = {k: v for k, v in os.environ.items() if k != "SMSGATE_PLUGINS"}  # every installed plugin
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    modules = json.loads(out.stderr.strip().splitlines()[-1])
    assert {r["name"] for r in rows} >= {"loopback", "opass", "juse", "cmas", "guodu", "aliyun", "tencent"}
    assert all(r["status"] == "ok" for r in rows), rows
    plugin_modules = [m for m in modules if m.startswith("smsgate_") and "." in m]
    assert plugin_modules == [], plugin_modules  # no plugin.py, dialect.py, wire.py, simulator.py
    assert [m for m in HEAVY if m in modules] == []


def test_declarations_are_loaded_on_first_use_only():
    pm = PluginManager(environ={})
    entry = pm.providers["opass"]
    assert entry.plugin is None and entry.spec.config_class == "smsgate_opass.plugin:OpassConfig"
    loaded = pm.provider("opass")
    assert loaded.plugin is sys.modules["smsgate_opass.plugin"]
    assert loaded.spec.config_class is sys.modules["smsgate_opass.plugin"].OpassConfig
    assert loaded.spec.capabilities == entry.spec.capabilities and pm.providers["opass"] is loaded
    assert "build_request" in pm.implemented_hooks("opass")
    assert pm.providers["juse"].plugin is None  # the others stay declared only

    class Wrapper:
        @hookimpl(wrapper=True)
        def transmit(self, ctx, request):
            return (yield)

    wrapper = Wrapper()
    assert not pm.is_registered(wrapper)
    pm.register(wrapper)
    assert pm.is_registered(wrapper) and pm.providers["juse"].plugin is None  # (metrics and tracing ask this)
    assert pm.pm.get_plugin("opass") is loaded.plugin  # pluggy's own manager: every provider loaded
    assert all(e.plugin is not None for e in pm.providers.values())


def test_the_fast_entry_point_reader_finds_what_importlib_metadata_finds():
    import importlib.metadata as md

    groups = {ep.group for dist in md.distributions() for ep in dist.entry_points}
    assert "smsgate" in groups
    for group in sorted(groups):
        ours = [(e.name, e.value, e.distribution, e.version) for e in entrypoints.entry_points(group)]
        theirs = [(e.name, e.value, e.dist.metadata["Name"], e.dist.version) for e in md.entry_points(group=group)]
        assert ours == theirs, group
    for dist in ("smsgate", "smsgate-opass", "attrs", "pluggy", "no-such-distribution"):
        try:
            expected = md.version(dist)
        except md.PackageNotFoundError:
            expected = None
        assert entrypoints.version(dist) == expected


def test_the_reader_follows_importlib_metadata_on_odd_layouts(tmp_path, monkeypatch):
    import importlib.metadata as md

    def dist(parent, dirname, name, version, eps):
        d = parent / dirname
        d.mkdir(parents=True)
        (d / ("PKG-INFO" if dirname.endswith(("egg-info", "EGG-INFO")) else "METADATA")).write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nName: not-a-header\n")
        (d / "entry_points.txt").write_text(eps)

    first, second = tmp_path / "first", tmp_path / "second"
    dist(first, "Demo_Pkg-1.0.dist-info", "Demo.Pkg", "1.0", "# comment\n[smsgate]\n demo = demo_mod:PROVIDER \n")
    dist(second, "demo_pkg-2.0.dist-info", "demo-pkg", "2.0", "[smsgate]\nshadowed = x\n")  # same name: first wins
    dist(second, "legacy.egg-info", "legacy", "0.3", "[other]\nnope = y\n[smsgate]\nlegacy = legacy.plugin [extra]\n")
    dist(second / "eggy-1.0-py3.11.egg", "EGG-INFO", "eggy", "1.0", "[smsgate]\neggy = eggy:PROVIDER\n")
    path = [str(first), str(second), str(second / "eggy-1.0-py3.11.egg"), str(tmp_path / "missing")]
    ours = [(e.name, e.value, e.distribution, e.version) for e in entrypoints.entry_points("smsgate", path)]
    monkeypatch.setattr(sys, "path", path)
    theirs = [(e.name, e.value, e.dist.metadata["Name"], e.dist.version) for e in md.entry_points(group="smsgate")]
    assert ours == theirs and [o[0] for o in ours] == ["demo", "legacy", "eggy"]
    assert entrypoints.version("demo-pkg", path) == md.version("demo-pkg") == "1.0"


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A site directory with three plugins: declared (good, and one whose hooks fail to import),
    the old way (an entry point naming a hooks module with smsgate_provider), and an entry point
    still naming the hooks module of a plugin that now declares itself (metadata older than the code)."""
    (tmp_path / "newway").mkdir()
    (tmp_path / "newway" / "__init__.py").write_text(textwrap.dedent("""
        from smsgate import Capabilities, Operation, Provider
        PROVIDER = Provider(name="newway", hooks="newway.plugin", config_class="newway.plugin:Config",
                            capabilities=Capabilities(operations={Operation.SEND}, text=True,
                                                      max_recipients={Operation.SEND: 10}))
        BROKEN = Provider(name="newbroken", hooks="newway.missing", config_class="newway.missing:Config",
                          capabilities=Capabilities(operations={Operation.SEND}, text=True))
    """))
    (tmp_path / "newway" / "plugin.py").write_text(textwrap.dedent("""
        from smsgate.default_plugins.loopback import LoopbackConfig as Config
        from smsgate.default_plugins.loopback import build_request, parse_response, sign, transmit  # noqa
    """))
    (tmp_path / "oldway.py").write_text(textwrap.dedent("""
        from smsgate import Provider, hookimpl
        from smsgate.default_plugins.loopback import CAPABILITIES, LoopbackConfig
        from smsgate.default_plugins.loopback import build_request, parse_response, sign, transmit  # noqa

        @hookimpl
        def smsgate_provider():
            return Provider(name="oldway", config_class=LoopbackConfig, capabilities=CAPABILITIES)
    """))
    (tmp_path / "other.py").write_text(textwrap.dedent("""
        from smsgate import HttpRequest, ProviderConfig, hookimpl

        Config = ProviderConfig

        @hookimpl
        def build_request(ctx, operation, payload):
            return HttpRequest(url="http://other.example/send", body=b"")
    """))
    dist = tmp_path / "smsgate_test_site-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: smsgate-test-site\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[smsgate]\nnewway = newway:PROVIDER\nnewbroken = newway:BROKEN\n"
                                           "oldway = oldway\nstale = newway.plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in ("newway", "newway.plugin", "oldway", "other"):
        sys.modules.pop(name, None)


def _env(site):
    return {"SMSGATE_PLUGINS": "newway,newbroken,oldway"}


def test_declared_old_style_and_stale_entry_points_all_send(site):
    pm = PluginManager(environ={"SMSGATE_PLUGINS": "newway,oldway"})
    assert pm.providers["newway"].plugin is None and pm.providers["oldway"].plugin is not None
    gw = Gateway({"providers": {"newway": {}, "oldway": {}}}, plugins=pm)
    for name in ("newway", "oldway"):
        result = gw.send(Message(to=["13800138000"], text="hi"), name)
        assert result.ok, result
    assert pm.providers["newway"].distribution == "smsgate-test-site" and pm.providers["newway"].version == "1.0"

    stale = PluginManager(environ={"SMSGATE_PLUGINS": "stale"})
    assert "newway" in stale.providers and not stale.broken  # found through its package's declaration
    assert Gateway({"providers": {"newway": {}}}, plugins=stale).send(Message(to=["13800138000"], text="x")).ok


def test_a_declared_provider_whose_hooks_fail_is_listed_then_named_broken_on_use(site):
    pm = PluginManager(environ={"SMSGATE_PLUGINS": "newbroken"})
    assert "newbroken" in pm.providers and not pm.broken
    with pytest.raises(ConfigError) as err:
        pm.provider("newbroken")
    assert "newbroken" in str(err.value) and "ModuleNotFoundError" in str(err.value)
    assert "newbroken" not in pm.providers and [b.name for b in pm.broken] == ["newbroken"]
    with pytest.raises(ConfigError, match="failed to load"):
        Gateway({"providers": {"nb": {"provider": "newbroken"}}}, plugins=pm)
    out = subprocess.run([sys.executable, "-m", "smsgate.cli", "providers", "--json", "--load"], capture_output=True,
                         text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(site), **_env(site)})
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["newbroken"]["status"] == "broken" and rows["newway"]["status"] == "ok", out.stderr


def test_a_provider_loaded_late_keeps_its_place_among_plain_implementations():
    """pluggy calls plain implementations last-registered first. A plugin registered after
    discovery runs before a provider's own implementation, whenever the provider is loaded."""
    calls = []

    class Canned:
        @hookimpl
        def transmit(self, ctx, request):
            calls.append(ctx.provider)
            return None  # then the loopback's own (memory://)

    pm = PluginManager(environ={"SMSGATE_PLUGINS": ""})
    pm.register(Canned())
    assert pm.providers["loopback"].plugin is None
    assert Gateway({"providers": {"loopback": {}}}, plugins=pm).send(Message(to=["13800138000"], text="x")).ok
    assert calls == ["loopback"]


def test_a_scoped_caller_kept_across_a_later_load_never_runs_that_provider(site):
    class Wrap:  # a wrapper makes the call go through pluggy, not the direct path
        @hookimpl(wrapper=True)
        def build_request(self, ctx, operation, payload):
            return (yield)

    pm = PluginManager(environ={"SMSGATE_PLUGINS": ""})
    pm.register(Wrap())
    gw = Gateway({"providers": {"loopback": {}}}, plugins=pm)
    hooks = gw.hooks("loopback")  # built while loopback is the only provider loaded
    pm.register(Provider(name="other", hooks="other", config_class="other:Config",
                         capabilities=Capabilities(operations={Operation.SEND}, text=True)))
    pm.provider("other")  # loaded after the caller was built; its build_request answers first in pluggy
    req = hooks.build_request(ctx=gw.context("loopback", Operation.SEND), operation=Operation.SEND,
                              payload=Message(to=["13800138000"], text="x"))
    assert req.url == "memory://loopback/send"


def test_declarations_name_import_paths():
    caps = Capabilities(operations={Operation.SEND}, text=True)
    with pytest.raises(ValueError, match="hooks"):
        Provider(name="x", hooks="not a module", config_class="x.plugin:Config", capabilities=caps)
    with pytest.raises(ValueError, match="config_class"):
        Provider(name="x", hooks="x.plugin", config_class="x.plugin:", capabilities=caps)
    pm = PluginManager(load_entrypoints=False)
    with pytest.raises(ConfigError, match="names no hooks"):
        pm.register(Provider(name="x", config_class="x.plugin:Config", capabilities=caps))
