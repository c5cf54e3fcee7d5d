"""A connection pool (PostgreSQL's and SQLite's) that serves the requests waiting for one in order.

SQLAlchemy's pool for asyncio keeps its idle connections in an ``asyncio.Queue``. When
every connection is in use, a request waits in the queue's line; a connection handed back
wakes the first in line, but before that request runs, one arriving just then finds the
connection in the queue and takes it. The woken request finds the queue empty again and
joins the line at its end. Under a sustained burst a request can lose its place over and
over, for seconds (the bench's flat-out reads: p99 2 to 3 s, while the median was 33 ms;
docs/performance.md, round eleven), until the pool's timeout answers 503.

Here a connection handed back while requests wait goes straight to the first of them, and
a request that arrives takes an idle connection only when nobody is waiting. The line is
first come, first served, as SQLite's writer turn is (db/engine.py).
"""

import asyncio
from collections import deque
from typing import Any

from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util import queue as sqlalchemy_queue
from sqlalchemy.util.concurrency import await_


class _FirstComeFirstServedQueue(sqlalchemy_queue.AsyncAdaptedQueue[Any]):
    """SQLAlchemy's asyncio queue, with a connection handed back given to the first waiter."""

    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        super().__init__(maxsize, use_lifo=False)  # idle connections in turn, as well
        self._waiting: deque[asyncio.Future[Any]] = deque()

    def put_nowait(self, item: Any) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        super().put_nowait(item)

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        self.put_nowait(item)  # never blocks: the pool hands back at most what it made

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        # Nobody waits while a connection is idle: one handed back goes to a waiter.
        if not block or not self._waiting:
            try:
                return self.get_nowait()
            except sqlalchemy_queue.Empty:
                if not block:
                    raise
        return await_(self._wait_in_line(timeout))

    async def _wait_in_line(self, seconds: float | None) -> Any:
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            async with asyncio.timeout(seconds):
                return await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                # Handed a connection just as it gave up (timed out, or its request was
                # cancelled): it goes to the next in line, or back to the pool.
                self.put_nowait(waiter.result())
            else:
                waiter.cancel()
                if waiter in self._waiting:
                    self._waiting.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise sqlalchemy_queue.Empty() from None  # the pool's own timeout error follows
            raise


class FirstComeFirstServedPool(AsyncAdaptedQueuePool):
    """``AsyncAdaptedQueuePool`` (sizes, timeout, events and metrics as before), in order."""

    _queue_class = _FirstComeFirstServedQueue
