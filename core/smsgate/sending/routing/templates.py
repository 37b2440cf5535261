"""Logical templates: one name and named params for the application, each vendor's own template id,
sign name and param shape on the wire (``[templates.NAME.PROVIDER]``, see settings.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ...config import did_you_mean
from ...errors import ValidationError
from ...models import Message
from .settings import TemplateEntry


def check_params(message: Message, name: str, entries: Mapping[str, TemplateEntry]) -> None:
    """A logical template takes named params (a mapping), and every param must be read by some
    provider's entry: a misspelt name is refused, never silently left out."""
    contents = [message.params] if message.personal is None else list(message.personal.values())
    used = set().union(*(e.names() for e in entries.values()))
    passed_whole = any(e.params is None for e in entries.values())  # an entry passes params as they are
    for params in contents:
        if params is None:
            continue
        if not isinstance(params, Mapping):
            raise ValidationError(f"template {name!r} is a logical template: give its params by name "
                                  '(a mapping, --params \'{"code": "1234"}\'), not a list', field="params")
        if passed_whole:
            continue
        for key in params:
            if key not in used:
                raise ValidationError(f"template {name!r} has no param {key!r}{did_you_mean(key, used)} "
                                      f"(its params: {', '.join(sorted(used)) or 'none'})", field="params")


def for_provider(message: Message, name: str, entry: TemplateEntry) -> Message:
    """``message`` (logical template ``name``) as ``entry``'s provider takes it: the vendor's
    template id, sign name (the entry's, else the message's) and params in the vendor's shape."""
    sign_name = entry.sign_name if entry.sign_name is not None else message.sign_name
    if message.personal is not None:
        personal = {phone: _params(p, name, entry) for phone, p in message.personal.items()}
        return attrs.evolve(message, template_id=entry.template_id, sign_name=sign_name, personal=personal)
    return attrs.evolve(message, template_id=entry.template_id, sign_name=sign_name,
                        params=_params(message.params, name, entry))


def _params(params: Any, name: str, entry: TemplateEntry) -> Any:
    if entry.params is None:
        return params
    given = params or {}
    missing = sorted(n for n in entry.names() if n not in given)
    if missing:
        raise ValidationError(f"template {name!r} needs param{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(map(repr, missing))} (provider {entry.provider!r})", field="params")
    if isinstance(entry.params, Mapping):
        return {vendor: given[mine] for vendor, mine in entry.params.items()}
    return tuple(given[mine] for mine in entry.params)
