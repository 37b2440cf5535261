"""Acme's JSON, as attrs classes read strictly through smsgate.Wire."""

from __future__ import annotations

import attrs

from smsgate import Wire


@attrs.frozen
class AcmeAnswer:
    """Acme's answer, read strictly: a missing or mistyped field is named in the error."""

    status: str
    batch: str | None = None
    bad: tuple[str, ...] = ()
    code: str | None = None
    detail: str = ""


WIRE = Wire()  # the cattrs converter is built on first use
