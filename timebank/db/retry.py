"""Run a unit of work in one transaction, retrying when the database asks us to."""

import asyncio
import random
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TypeVar

import asyncpg
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.db.engine import Database

T = TypeVar("T")

# deadlock_detected, serialization_failure: the transaction did nothing; run it again.
RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})
MAX_ATTEMPTS = 5


def sqlstate(exc: DBAPIError) -> str | None:
    """The PostgreSQL SQLSTATE behind a SQLAlchemy error, if any."""
    orig = exc.orig
    for candidate in (orig, getattr(orig, "__cause__", None)):
        code = getattr(candidate, "pgcode", None) or getattr(candidate, "sqlstate", None)
        if code:
            return str(code)
    return None


def is_retryable(exc: DBAPIError | asyncpg.PostgresError) -> bool:
    if isinstance(exc, asyncpg.PostgresError):  # raised on the hot path (db/hot_path.py)
        return exc.sqlstate in RETRYABLE_SQLSTATES
    if sqlstate(exc) in RETRYABLE_SQLSTATES:
        return True
    # SQLite: another writer held the lock for longer than the busy timeout.
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


async def run_in_transaction(db: Database, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run ``work`` inside one transaction: commit if it returns, roll back if it raises."""
    return await _with_retries(db.transaction, work)


async def run_in_autocommit(db: Database, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run ``work``, a single statement, as its own transaction (PostgreSQL: one round trip)."""
    return await _with_retries(db.autocommit, work)


async def _with_retries(
    connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
    work: Callable[[AsyncConnection], Awaitable[T]],
) -> T:
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            async with connect() as conn:
                return await work(conn)
        except (DBAPIError, asyncpg.PostgresError) as exc:
            if attempt == MAX_ATTEMPTS or not is_retryable(exc):
                raise
            await asyncio.sleep(random.uniform(0, 0.01 * 2**attempt))
    raise AssertionError("unreachable")
