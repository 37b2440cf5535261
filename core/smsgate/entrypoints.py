"""The installed distributions' entry points of one group, read from their metadata files.

What ``importlib.metadata.entry_points(group=...)`` finds, in the same order, with each entry
point's distribution name and version; but importing ``importlib.metadata`` (email, zipfile,
csv, ...) costs more than the rest of plugin discovery together, and every ``smsgate`` command
discovers plugins. So the common case is read here directly: the search path holds directories,
and no finder other than the standard path finder declares distributions. Anything else (a zip
file on ``sys.path``, a custom finder) is handed to ``importlib.metadata``.

The rules followed are importlib.metadata's: each ``sys.path`` directory in order, its
``*.dist-info`` / ``*.egg-info`` children (and an ``*.egg`` directory's ``EGG-INFO``); the first
distribution of a (normalised) name wins; ``entry_points.txt`` is an INI file; the name and
version are the ``Name`` and ``Version`` headers of ``METADATA`` (or ``PKG-INFO``).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any

# importlib.metadata.EntryPoint.pattern
_VALUE = re.compile(r"(?P<module>[\w.]+)\s*(:\s*(?P<attr>[\w.]+)\s*)?((?P<extras>\[.*\])\s*)?$")


class EntryPoint:
    """One entry point: ``name = value`` in ``group``, and the distribution that declares it."""

    __slots__ = ("name", "value", "group", "_dist", "_meta")

    def __init__(self, name: str, value: str, group: str, dist: str | None,
                 meta: tuple[str | None, str | None] | None = None):
        self.name, self.value, self.group, self._dist, self._meta = name, value, group, dist, meta

    def load(self) -> Any:
        """Import the module and return the object the value names (``module:attr.attr``)."""
        import importlib

        match = _VALUE.match(self.value)
        if match is None:
            raise ValueError(f"entry point {self.name!r}: not an import path: {self.value!r}")
        obj: Any = importlib.import_module(match.group("module"))
        for attr in filter(None, (match.group("attr") or "").split(".")):
            obj = getattr(obj, attr)
        return obj

    @property
    def distribution(self) -> str | None:
        """The declaring distribution's ``Name`` (as its metadata spells it), or None."""
        return self._metadata()[0]

    @property
    def version(self) -> str | None:
        return self._metadata()[1]

    def _metadata(self) -> tuple[str | None, str | None]:
        if self._meta is None:
            self._meta = _name_and_version(self._dist)
        return self._meta

    def __repr__(self) -> str:
        return f"EntryPoint(name={self.name!r}, value={self.value!r}, group={self.group!r})"


def entry_points(group: str, path: Sequence[str] | None = None) -> list[EntryPoint]:
    """Every entry point of ``group`` in the installed distributions, in importlib.metadata's order."""
    path = sys.path if path is None else path
    if not _plain(path):
        return _from_importlib(group)
    found = []
    for dist in _distributions(path):
        text = _read(os.path.join(dist, "entry_points.txt"))
        if text and f"[{group}]" in text:
            found += [EntryPoint(name, value, group, dist) for name, value in _section(text, group)]
    return found


def version(distribution: str, path: Sequence[str] | None = None) -> str | None:
    """The installed version of ``distribution`` (``importlib.metadata.version``), or None."""
    path = sys.path if path is None else path
    if not _plain(path):
        try:
            from importlib.metadata import version as _version

            return _version(distribution)
        except Exception:
            return None
    wanted = _normalise(distribution)
    for dist, key in _candidates(path):
        if key == wanted or key is None and _normalise(_name_and_version(dist)[0] or "") == wanted:
            return _name_and_version(dist)[1]
    return None


# -- the search --------------------------------------------------------------------------------
def _plain(path: Sequence[str]) -> bool:
    """True when only directories (or missing entries) are searched, by the standard path finder."""
    import importlib.machinery

    for finder in sys.meta_path:
        if finder is not importlib.machinery.PathFinder and getattr(finder, "find_distributions", None):
            return False
    return not any(os.path.isfile(entry) for entry in path if entry)


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower().replace("-", "_")


def _candidates(path: Sequence[str]) -> Iterator[tuple[str, str | None]]:
    """(metadata directory, normalised name or None when only its metadata can tell) in search order."""
    for root in path:
        try:
            children = os.listdir(root or ".")
        except OSError:
            continue
        infos: dict[str, list[str]] = {}
        eggs: list[str] = []
        base = os.path.basename(root).lower()
        for child in children:
            low = child.lower()
            if low.endswith((".dist-info", ".egg-info")):
                infos.setdefault(_normalise(low.rpartition(".")[0].partition("-")[0]), []).append(
                    os.path.join(root, child))
            elif low == "egg-info" and base.endswith(".egg"):
                eggs.append(os.path.join(root, child))
        for key, dirs in infos.items():
            for d in dirs:
                yield d, key
        for d in eggs:
            yield d, None


def _distributions(path: Sequence[str]) -> Iterator[str]:
    """Metadata directories, the first of each distribution name only."""
    seen: set[str] = set()
    for dist, key in _candidates(path):
        if key is None:
            key = _normalise(_name_and_version(dist)[0] or "")
        if key not in seen:
            seen.add(key)
            yield dist


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None


def _section(text: str, group: str) -> Iterator[tuple[str, str]]:
    """``name = value`` pairs of one ``[group]`` of an INI text (comments and blank lines skipped)."""
    current = None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
            continue
        if current == group:
            name, _, value = line.partition("=")
            yield name.strip(), value.strip()


def _name_and_version(dist: str | None) -> tuple[str | None, str | None]:
    """The ``Name`` and ``Version`` headers of a distribution's metadata (None when absent)."""
    if dist is None:
        return None, None
    text = _read(os.path.join(dist, "METADATA")) or _read(os.path.join(dist, "PKG-INFO")) or ""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the headers end at the first blank line
        key, sep, value = line.partition(":")
        key = key.lower()
        if sep and key in ("name", "version") and key not in found:
            found[key] = value.lstrip(" \t").rstrip("\r\n")
    return found.get("name"), found.get("version")


def _from_importlib(group: str) -> list[EntryPoint]:
    from importlib.metadata import entry_points as _entry_points

    found = []
    for ep in _entry_points(group=group):
        dist = getattr(ep, "dist", None)
        meta = (None, None) if dist is None else (dist.metadata["Name"], dist.version)
        found.append(EntryPoint(ep.name, ep.value, group, None, meta))
    return found
