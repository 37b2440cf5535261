"""Receiving: vendor pushes and pulls into a durable spool, and handlers fed from it.

``receiver`` (the push endpoint, a WSGI/ASGI app), ``server`` (serving it), ``store`` (the SQLite
spool), ``dispatcher`` (handler threads over the spool), ``sinks`` (ready-made handlers),
``replay`` (nonce stores against replayed pushes), ``poller`` (pulls from vendors that only offer
pulls). Names load on first use, so importing this package is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy import lazy_exports

_EXPORTS = {
    "Receiver": "receiver", "handler_options": "receiver", "load_handler": "receiver",
    "AsgiApp": "server", "BackgroundServer": "server", "run_server": "server",
    "Spool": "store", "SpoolError": "store", "SpooledEvent": "store",
    "Dispatcher": "dispatcher", "Handler": "dispatcher",
    "JsonlSink": "sinks",
    "MemoryReplayStore": "replay", "SqliteReplayStore": "replay", "RedisReplayStore": "replay",
    "Poller": "poller",
}

__all__ = ["AsgiApp", "BackgroundServer", "Dispatcher", "Handler", "JsonlSink", "MemoryReplayStore", "Poller",
           "Receiver", "RedisReplayStore", "Spool", "SpoolError", "SpooledEvent", "SqliteReplayStore",
           "handler_options", "load_handler", "run_server"]


__getattr__ = lazy_exports(__name__, _EXPORTS, globals())


if TYPE_CHECKING:  # pragma: no cover
    from .dispatcher import Dispatcher, Handler
    from .poller import Poller
    from .receiver import Receiver, handler_options, load_handler
    from .replay import MemoryReplayStore, RedisReplayStore, SqliteReplayStore
    from .server import AsgiApp, BackgroundServer, run_server
    from .sinks import JsonlSink
    from .store import Spool, SpoolError, SpooledEvent
