"""Typing: `mypy --strict` is clean over the core, every plugin (new ones included, by glob) and the
tutorial's example plugin, a typed user script passes it too, every distribution ships py.typed, and the public names are a
static __all__ a type checker can read."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def packages() -> list[Path]:
    """The core package, every plugin's package (plugins/*/smsgate_*/ with an __init__.py) and the
    examples' (the tutorial's plugin ships py.typed like any other)."""
    found = [ROOT / "core" / "smsgate"]
    found += sorted(p.parent for p in ROOT.glob("plugins/*/smsgate_*/__init__.py"))
    found += sorted(p.parent for p in ROOT.glob("examples/*/smsgate_*/__init__.py"))
    return found


def mypy(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    pytest.importorskip("mypy")
    # strict settings come from [tool.mypy] in pyproject.toml, and --strict says so again
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--config-file", str(ROOT / "pyproject.toml"),
                           "--cache-dir", str(Path(sys.prefix) / ".mypy_cache"), *args],
                          capture_output=True, text=True, cwd=cwd, timeout=900)


def test_mypy_strict_is_clean_over_the_core_and_every_plugin():
    out = mypy(*(str(p) for p in packages()))
    assert out.returncode == 0, out.stdout + out.stderr
    assert len(packages()) >= 6  # the core, at least the four first vendors, and acme
    assert ROOT / "examples" / "smsgate-acme" / "smsgate_acme" in packages()


def test_a_typed_user_script_passes_mypy_strict():
    out = mypy(str(ROOT / "tests" / "data" / "typed_user_script.py"))
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_distribution_ships_py_typed():
    for package in packages():
        assert (package / "py.typed").is_file(), package
        project = package.parent / "pyproject.toml" if package.name != "smsgate" else ROOT / "pyproject.toml"
        text = project.read_text(encoding="utf-8")
        assert re.search(rf'^\[tool\.setuptools\.package-data\]\n{package.name} = \["py\.typed"\]', text, re.M), \
            f"{project} does not ship {package.name}/py.typed"


def test_all_is_static_and_complete():
    import smsgate
    import smsgate.testing

    assert smsgate.__all__ == sorted(smsgate._EXPORTS) + ["__version__"]
    assert smsgate.testing.__all__ == sorted(smsgate.testing._EXPORTS)
    for module in (smsgate, smsgate.testing):
        source = Path(module.__file__).read_text(encoding="utf-8")
        assert re.search(r"^__all__ = \[", source, re.M), f"{module.__name__}.__all__ is computed"
        for name in module._EXPORTS:  # each lazy name is also imported for type checkers
            assert re.search(rf"\bimport\b[^\n]*\b{name}\b|^\s+{name},|\(\s*{name}\b|, {name}\b", source, re.M), name


def test_hook_specs_are_typed_with_the_real_classes():
    import inspect

    from smsgate import hookspecs

    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if not hasattr(fn, "smsgate_spec"):
            continue
        for param, annotation in fn.__annotations__.items():
            assert annotation != "Any" or (name, param) == ("vendor_request", "hooks"), (name, param)
