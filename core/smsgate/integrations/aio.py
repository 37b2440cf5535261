"""``AsyncGateway``: the Gateway for asyncio apps (FastAPI, aiohttp, ...), without blocking the loop.

How it is built, and why: every call runs the ordinary synchronous send flow on a bounded thread
pool of its own (``loop.run_in_executor``). An async transport would mean a second pipeline, and
every guarantee of the first (nothing sent twice, every recipient an outcome, the ledger written
before a request leaves, limits, routing) would have to be kept twice. SMS sends are few and slow
next to what a thread costs, so a pool of threads is the simpler way to the same outcomes. The
event loop only awaits a future; it never runs vendor I/O or SQLite.

Cancelling an ``await gw.send(...)`` does not cancel the send: a request that may have reached
the vendor cannot be taken back. The thread finishes the send (and records it in the ledger when
one is configured: send again with the same ``Message.key`` to learn the outcome).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ..models import Balance, Message, PullQuery, SendResult, SendStatistics, StatisticsQuery

T = TypeVar("T")

#: calls that run at once by default (the shared transport keeps 16 connections per host); more
#: awaits wait their turn without blocking the loop
DEFAULT_WORKERS = 16


class AsyncGateway:
    """``await``-able twin of :class:`smsgate.Gateway`, with the same outcomes and guarantees.

    ``settings`` and the keyword arguments are those of ``Gateway``; pass ``gateway=`` to wrap an
    existing one instead. ``max_workers`` bounds how many calls run at once (threads).
    """

    def __init__(self, settings: Any = None, *, gateway: Any = None, max_workers: int = DEFAULT_WORKERS,
                 **gateway_options: Any):
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, not {max_workers}")
        if gateway is None:
            from ..sending.gateway import Gateway

            gateway = Gateway(settings, **gateway_options)
        elif settings is not None or gateway_options:
            raise TypeError("pass either gateway= or the Gateway's settings and options, not both")
        self.gateway = gateway
        self.max_workers = max_workers
        self._executor = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="smsgate-async")

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        # in the caller's context variables, as asyncio.to_thread does: its tracing span is the
        # parent of the send's
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await loop.run_in_executor(self._executor, call)

    async def send(self, message: Message, provider: str | None = None, **options: Any) -> SendResult:
        """Send ``message``; the same outcomes as :meth:`smsgate.Gateway.send`."""
        return await self._run(self.gateway.send, message, provider, **options)

    async def pull_reports(self, provider: str | None = None, query: PullQuery | None = None) -> list[Any]:
        return await self._run(self.gateway.pull_reports, provider, query)

    async def pull_inbound(self, provider: str | None = None) -> list[Any]:
        return await self._run(self.gateway.pull_inbound, provider)

    async def balance(self, provider: str | None = None) -> Balance:
        return await self._run(self.gateway.balance, provider)

    async def statistics(self, provider: str | None = None, query: StatisticsQuery | None = None,
                         **dates: Any) -> SendStatistics:
        """One page of send statistics; the same arguments as :meth:`smsgate.Gateway.statistics`."""
        return await self._run(self.gateway.statistics, provider, query, **dates)

    async def status(self, key: str) -> Any:
        """What the send ledger knows of ``key`` (needs a ``[ledger]``)."""
        return await self._run(self.gateway.status, key)

    async def aclose(self) -> None:
        """Wait for calls in flight, then close the gateway's own transport."""
        await asyncio.get_running_loop().run_in_executor(None, self._shutdown)

    def _shutdown(self) -> None:
        self._executor.shutdown(wait=True)
        self.gateway.close()

    async def __aenter__(self) -> "AsyncGateway":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


__all__ = ["AsyncGateway", "DEFAULT_WORKERS"]
