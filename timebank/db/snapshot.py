"""A read-only, consistent view of the database for reads of many queries (reports, exports)."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.db.engine import Database


@asynccontextmanager
async def read_snapshot(db: Database) -> AsyncIterator[AsyncConnection]:
    """A connection whose every query sees the database as it was at the first one.

    PostgreSQL: a REPEATABLE READ, READ ONLY transaction. SQLite: a deferred
    transaction on the autocommit pool (the transaction engine begins IMMEDIATE,
    which would hold the write lock and stop every writer for as long as we read);
    in WAL mode it reads one snapshot and blocks nobody.
    """
    if db.is_postgres:
        async with db.engine.connect() as conn:
            # One BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY: no extra round trip.
            await conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            async with conn.begin():
                yield conn
        return
    async with db.autocommit() as conn:
        await conn.exec_driver_sql("BEGIN")
        try:
            yield conn
        finally:
            await conn.exec_driver_sql("ROLLBACK")
