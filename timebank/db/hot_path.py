"""The two statements every write request runs, sent to PostgreSQL without SQLAlchemy in between.

The token check (every request) and the ledger write (``timebank_post``) are single
statements on an autocommit connection. Through SQLAlchemy's execution machinery
each cost about 70 us more CPU than the same statement sent by asyncpg itself,
which is a tenth of a request's whole budget. Here the statement is compiled once
and sent with asyncpg's prepared-statement cache; SQLite (and anything not hot)
keeps the ordinary SQLAlchemy path, so both databases run the same SQL text.

SQLAlchemy's pool still owns the connection. Because it no longer sees the
errors, a connection that dies under a raw statement is invalidated here, so the
pool replaces it instead of lending it out again.
"""

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import Executable
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.db.engine import Database

# Errors after which the connection cannot be trusted again.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.InterfaceError,  # the connection is closed or broken
    asyncpg.exceptions.OperatorInterventionError,  # class 57: shutdown, cannot connect now
    # The protocol was left mid-operation by an earlier failure: seen on connections that
    # lived through a database restart (the restart drill).
    asyncpg.exceptions.InternalClientError,
    OSError,
)


@asynccontextmanager
async def driver_connection(conn: AsyncConnection) -> AsyncIterator[asyncpg.Connection]:
    """The asyncpg connection under ``conn``; invalidated in the pool if it breaks."""
    raw = await conn.get_raw_connection()
    try:
        yield raw.driver_connection
    except CONNECTION_ERRORS:
        await conn.invalidate()
        raise


class HotQuery:
    """A Core ``SELECT`` compiled once for asyncpg, run raw on PostgreSQL and by SQLAlchemy elsewhere.

    ``postgres`` is the same query written for PostgreSQL where the portable one cannot be
    compiled once: ``id = ANY(:ids)`` with an array, for ``id IN (:ids)`` with an expanding
    list, which SQLAlchemy renders anew for every length of list.
    """

    def __init__(self, statement: Executable, *, postgres: Executable | None = None) -> None:
        self.statement = statement
        compiled = (postgres if postgres is not None else statement).compile(dialect=asyncpg_dialect.dialect())
        self.sql = str(compiled)
        self.parameter_order: Sequence[str] = compiled.positiontup or ()

    async def first(self, db: Database, parameters: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The first row as a mapping (column name to value), or None."""
        async with db.autocommit() as conn:
            if not db.is_postgres:
                row = (await conn.execute(self.statement, dict(parameters))).first()
                return row._mapping if row is not None else None
            async with driver_connection(conn) as raw:
                return await raw.fetchrow(self.sql, *(parameters[name] for name in self.parameter_order))

    async def all(self, db: Database, parameters: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
        """Every row, each as a mapping (column name to value)."""
        async with db.autocommit() as conn:
            if not db.is_postgres:
                return (await conn.execute(self.statement, dict(parameters))).mappings().all()
            async with driver_connection(conn) as raw:
                return await raw.fetch(self.sql, *(parameters[name] for name in self.parameter_order))
