"""Rates in the notation of the ``limits`` library and Flask-Limiter: ``"300/second"``,
``"5 per hour"``, ``"1/15 seconds"`` (at most 1 call in any 15 seconds)."""

from __future__ import annotations

import re

import attrs

UNITS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*(?:/|\s+per\s+)\s*(\d+(?:\.\d+)?\s*)?(second|minute|hour|day)s?\s*$",
                   re.IGNORECASE)


@attrs.frozen
class Rate:
    """At most ``calls`` in any ``per`` seconds (a moving window)."""

    calls: int
    per: float
    text: str = attrs.field(default="", eq=False)

    def __str__(self) -> str:
        return self.text or f"{self.calls}/{self.per:g} seconds"


def parse_rate(text: str) -> Rate:
    """``"10/day"`` -> ``Rate(10, 86400.0)``. Raises ValueError saying what a rate looks like."""
    match = _RATE.match(str(text)) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{text!r} is not a rate: write COUNT/UNIT such as \"300/second\", \"5/hour\", "
                         "\"1/15 seconds\" (units: second, minute, hour, day)")
    calls, multiple, unit = match.groups()
    per = float(multiple or 1) * UNITS[unit.lower()]
    if int(calls) < 1 or per <= 0:
        raise ValueError(f"{text!r}: a rate needs at least 1 call in more than 0 seconds")
    return Rate(int(calls), per, " ".join(str(text).split()))


def parse_rates(values: object, where: str) -> tuple[Rate, ...]:
    """A TOML list of rates (``per_phone = ["1/minute", "10/day"]``); ValueError names ``where``."""
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise ValueError(f"{where} must be a list of rates such as [\"1/minute\", \"10/day\"]")
    try:
        return tuple(parse_rate(v) for v in values)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
