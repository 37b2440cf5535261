"""The tree shows the architecture: docs/architecture.md names every core module, and every plugin
uses the same module names for the same roles."""

from __future__ import annotations

import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORE = ROOT / "core" / "smsgate"
PLUGIN_MODULES = {"__init__.py", "plugin.py", "dialect.py", "wire.py", "simulator.py"}


def test_architecture_doc_names_every_core_module():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = []
    for path in sorted(CORE.rglob("*.py")):
        rel = path.relative_to(CORE)
        if path.name == "__main__.py" or rel.parts[0] in ("testing", "default_plugins"):
            continue
        if path.name == "__init__.py":
            if rel.parent.name and f"{rel.parent.name}/" not in doc:
                missing.append(str(rel.parent) + "/")
            continue
        if path.name not in doc:
            missing.append(str(rel))
    assert not missing, f"docs/architecture.md does not mention: {missing}"


def test_every_plugin_uses_the_same_module_names():
    packages = sorted(p.parent for p in (ROOT / "plugins").glob("*/smsgate_*/__init__.py"))
    packages.append(ROOT / "examples" / "smsgate-acme" / "smsgate_acme")
    assert len(packages) >= 5
    for package in packages:
        names = {p.name for p in package.glob("*.py")}
        assert names == PLUGIN_MODULES, f"{package.name}: {sorted(names ^ PLUGIN_MODULES)}"
