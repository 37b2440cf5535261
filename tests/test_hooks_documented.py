"""Every hook spec has a docstring and a section in docs/hooks.md (rule 6 of the design)."""

import inspect
import pathlib
import re

from smsgate import hookspecs

DOC = pathlib.Path(__file__).resolve().parents[1] / "docs" / "hooks.md"


def hook_names():
    return [name for name, fn in vars(hookspecs).items()
            if callable(fn) and hasattr(fn, "smsgate_spec")]


def test_there_are_hooks():
    names = hook_names()
    assert {"smsgate_provider", "build_request", "sign", "parse_response", "verify_callback",
            "parse_callback", "transmit", "validate_message"} <= set(names)


def test_every_hook_has_a_docstring():
    for name in hook_names():
        assert len((inspect.getdoc(getattr(hookspecs, name)) or "").strip()) > 40, name


def test_every_hook_has_a_section_in_docs():
    sections = set(re.findall(r"^## (\w+)\s*$", DOC.read_text(encoding="utf-8"), flags=re.M))
    missing = [n for n in hook_names() if n not in sections]
    assert not missing, f"hooks without a section in docs/hooks.md: {missing}"
