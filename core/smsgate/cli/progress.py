"""A progress bar on stderr for bulk sends from the CLI (``pip install 'smsgate[progress]'``: tqdm).

It watches the send the way any wrapper plugin does, on the hooks: ``build_request`` tells how many
recipients a request carries, ``transmit`` that its answer (or failure) came. Shown only when
stderr is a terminal, the send has more recipients than one request carries, and tqdm is
installed; otherwise it does nothing.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Generator, Iterator
from typing import Any

from ..hookspecs import hookimpl

BULK = 200  # fewer recipients than this finish too soon for a bar to help


class ProgressWrapper:
    """Advances ``bar`` by each request's recipients once the request is answered."""

    def __init__(self, bar: Any):
        self.bar = bar
        self._lock = threading.Lock()
        self._sizes: dict[int, int] = {}

    @hookimpl(wrapper=True)
    def build_request(self, ctx: Any, operation: Any, payload: Any) -> Generator[None, Any, Any]:
        request = yield
        to = getattr(payload, "to", None)
        if to is not None:
            with self._lock:
                self._sizes[ctx.request_index] = len(to)
        return request

    @hookimpl(wrapper=True)
    def transmit(self, ctx: Any, request: Any) -> Generator[None, Any, Any]:
        try:
            return (yield)
        finally:
            with self._lock:
                done = self._sizes.pop(ctx.request_index, 0)
                if done:
                    self.bar.update(done)


@contextlib.contextmanager
def progress_bar(gateway: Any, message: Any) -> Iterator[None]:
    total = len(message.to)
    if total < BULK or not sys.stderr.isatty():
        yield
        return
    try:
        from tqdm import tqdm
    except ImportError:  # optional: the send works the same without it
        yield
        return
    with tqdm(total=total, unit="phone", file=sys.stderr, leave=True, dynamic_ncols=True) as bar:
        wrapper = ProgressWrapper(bar)
        gateway.plugins.register(wrapper, name="smsgate-cli-progress")
        try:
            yield
        finally:
            gateway.plugins.unregister(wrapper)
