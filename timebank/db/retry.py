"""Run a unit of work in one transaction, retrying when the database asks us to."""

import asyncio
import random
from collections.abc import Awaitable, Callable
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

    async def in_a_transaction() -> T:
        async with db.transaction() as conn:
            return await work(conn)

    return await with_retries(in_a_transaction)


async def with_retries(attempt: Callable[[], Awaitable[T]]) -> T:
    """``attempt()`` again after a serialisation failure, a deadlock or a busy SQLite file.

    Each attempt opens its own connection or transaction: a retry starts afresh."""
    for number in range(1, MAX_ATTEMPTS + 1):
        try:
            return await attempt()
        except (DBAPIError, asyncpg.PostgresError) as exc:
            if number == MAX_ATTEMPTS or not is_retryable(exc):
                raise
            await asyncio.sleep(random.uniform(0, 0.01 * 2**number))
    raise AssertionError("unreachable")
