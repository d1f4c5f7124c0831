"""Async database connections for hooks: one psycopg `AsyncConnectionPool` per event loop
that asks for one (the serving process's loop, where hooks are awaited in place; the hooks'
own loop, where the shadow thread runs them), opened on first use in that loop. A hook
awaiting a query holds no thread: every other request goes on meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from psycopg_pool import AsyncConnectionPool


class LoopPools:
    """The async pools of one serving process, by event loop."""

    def __init__(self, conninfo: str, max_size: int, options: dict[str, Any]) -> None:
        self._conninfo = conninfo
        self._max_size = max_size
        self._options = options
        self._opened: dict[asyncio.AbstractEventLoop, asyncio.Task[AsyncConnectionPool]] = {}
        self._lock = threading.Lock()

    async def get(self) -> AsyncConnectionPool:
        """The running loop's pool, opened (once, whoever asks first)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            task = self._opened.get(loop)
            if task is None:
                task = self._opened[loop] = loop.create_task(self._open())
        return await asyncio.shield(task)

    async def _open(self) -> AsyncConnectionPool:
        pool = AsyncConnectionPool(
            self._conninfo, min_size=1, max_size=self._max_size, open=False,
            name="ferroscore-hooks", **self._options,
        )  # fmt: skip
        await pool.open()
        return pool

    def close(self, timeout: float = 5.0) -> None:
        """Closes every pool on its own loop (from any thread but those loops')."""
        with self._lock:
            opened, self._opened = dict(self._opened), {}
        for loop, task in opened.items():
            if loop.is_closed() or not loop.is_running():
                continue

            async def shut(task: asyncio.Task[AsyncConnectionPool] = task) -> None:
                pool = await task
                await pool.close()

            # The loop stopping, or the database gone: nothing to keep either way.
            with contextlib.suppress(Exception):
                asyncio.run_coroutine_threadsafe(shut(), loop).result(timeout)
