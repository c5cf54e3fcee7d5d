"""Requests waiting for a pooled connection are served first come, first served (db/fair_pool.py).

SQLAlchemy's asyncio pool let a request that arrived just as a connection was handed back
take it ahead of those already waiting, and sent the one it overtook to the end of the
line: under a sustained burst some requests waited seconds. These tests hold every
connection of a pool, line requests up behind it, and check who is served, in which
order, and that no connection is lost when a waiting request gives up. On databases of
their own, whatever the test run's backend: the order on both, the giving up on
PostgreSQL (the same queue on both).
"""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util.concurrency import greenlet_spawn

from tests.ledger.support import own_postgres_database
from timebank.db import Database, create_database
from timebank.db.migrate import upgrade


def the_pool(database: Database):  # type: ignore[no-untyped-def]
    return database.autocommit_engine.sync_engine.pool


async def check_out(database: Database) -> PoolProxiedConnection:
    """A connection from the pool, as every statement of the app takes one (db/hot_path.py)."""
    return await greenlet_spawn(the_pool(database).connect)


async def hand_back(connection: PoolProxiedConnection) -> None:
    await greenlet_spawn(connection.close)


async def until(condition: Callable[[], bool]) -> None:
    """Let the other tasks run until ``condition`` holds (they only need the event loop)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("the other tasks never got there")


@asynccontextmanager
async def a_full_pool(kind: str, tmp_path) -> AsyncIterator[tuple[Database, list[PoolProxiedConnection]]]:  # type: ignore[no-untyped-def]
    """A database whose every pooled connection (its overflow's too) is checked out."""
    if kind == "postgresql":
        async with own_postgres_database(tmp_path, pool_size=1) as (database, _admin_url):
            yield database, [await check_out(database)]
        return
    url = f"sqlite+aiosqlite:///{tmp_path / 'pool.sqlite3'}"
    await asyncio.to_thread(upgrade, url)
    database = create_database(url)  # SQLAlchemy's sizes on SQLite: 5, and 10 more while busy
    try:
        pool = the_pool(database)
        yield database, [await check_out(database) for _ in range(pool.size() + pool._max_overflow)]
    finally:
        await database.dispose()


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
async def test_a_connection_handed_back_goes_to_the_first_in_line_not_to_a_newcomer(kind: str, tmp_path) -> None:
    async with a_full_pool(kind, tmp_path) as (database, held):
        served: list[str] = []
        waiting: list[str] = []

        async def request(name: str) -> None:
            waiting.append(name)
            connection = await check_out(database)
            served.append(name)
            await hand_back(connection)

        in_line = [asyncio.create_task(request(name)) for name in ("first", "second", "third")]
        await until(lambda: len(waiting) == 3)
        await asyncio.sleep(0.05)  # each is waiting for a connection now, not on its way
        assert served == []
        # One handed back, and at once (before any of those in line has run) a newcomer asks.
        await hand_back(held.pop())
        await request("newcomer")
        await asyncio.gather(*in_line)

        assert served == ["first", "second", "third", "newcomer"]
        for connection in held:
            await hand_back(connection)
        assert the_pool(database).checkedout() == 0


async def test_a_request_that_gives_up_waiting_leaves_the_line_and_loses_no_connection(tmp_path) -> None:
    async with own_postgres_database(tmp_path, pool_size=1, timeout_seconds=0.2) as (database, _admin_url):
        held = await check_out(database)
        with pytest.raises(PoolTimeout):
            await check_out(database)  # the pool's timeout: the app answers 503
        cancelled = asyncio.create_task(check_out(database))
        behind_it = asyncio.create_task(check_out(database))
        await asyncio.sleep(0.05)
        cancelled.cancel()
        await hand_back(held)
        await hand_back(await behind_it)
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        await hand_back(await check_out(database))
        assert the_pool(database).checkedout() == 0


async def test_a_connection_handed_to_a_request_as_it_is_cancelled_goes_to_the_next(tmp_path) -> None:
    async with own_postgres_database(tmp_path, pool_size=1) as (database, _admin_url):
        held = await check_out(database)
        first = asyncio.create_task(check_out(database))
        second = asyncio.create_task(check_out(database))
        await asyncio.sleep(0.05)
        await hand_back(held)  # to the first in line, which has not run since...
        first.cancel()  # ...and is cancelled before it does: its request has gone
        with pytest.raises(asyncio.CancelledError):
            await first
        async with asyncio.timeout(5):
            await hand_back(await second)
        assert the_pool(database).checkedout() == 0
