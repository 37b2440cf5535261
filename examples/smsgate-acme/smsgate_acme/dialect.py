"""Acme's dialect: how a request is signed."""

from __future__ import annotations

import hashlib


def acme_signature(password: str, timestamp: str, body: bytes) -> str:
    return hashlib.sha256(password.encode() + timestamp.encode() + body).hexdigest()
