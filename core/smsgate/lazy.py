"""Package names imported on first use (PEP 562), so importing a package stays cheap.

A package's ``__init__`` maps each exported name to the submodule that defines it and sets
``__getattr__ = lazy_exports(__name__, _EXPORTS, globals())``; its ``TYPE_CHECKING`` imports are
what type checkers see. A name is imported once: the value is then kept in the package's namespace,
so later reads never come back here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any


def lazy_exports(package: str, exports: Mapping[str, str],
                 namespace: MutableMapping[str, Any]) -> Callable[[str], Any]:
    """The module ``__getattr__`` of ``package``: ``exports`` maps a name to its submodule, relative
    to ``package`` (``"sending.gateway"``); ``namespace`` is the package's ``globals()``."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    return __getattr__
