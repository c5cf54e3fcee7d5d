"""The statements of every request, sent by the database driver itself, without SQLAlchemy in between.

Through SQLAlchemy's execution machinery a statement costs about 70 us more CPU than
the same statement sent by asyncpg itself, which is a tenth of a request's whole
budget on PostgreSQL. On SQLite the cost is in the trips to aiosqlite's thread:
SQLAlchemy's adapter makes four for every statement (open a cursor, execute, fetch,
close), and each is a wait for the event loop to come back to this request, which
behind a room of readers is the whole of a writer's latency. aiosqlite itself makes
one. So a ``HotStatement`` is compiled once for each database and sent by its driver:
asyncpg's prepared-statement cache on PostgreSQL, one call to aiosqlite's thread on
SQLite, with SQLAlchemy's own conversions of the parameters and the columns (dates,
enums, booleans, JSON) so that both paths read and write exactly what the ordinary one
does.

SQLAlchemy's pool and transaction still own the connection: a statement on its own
borrows one straight from the autocommit pool (``pooled_driver_connection``), one inside
a transaction uses the transaction's. Because SQLAlchemy no longer sees the errors, a
PostgreSQL connection that dies under a raw statement is invalidated here, so the pool
replaces it instead of lending it out again; a connect that fails, and SQLite's errors,
are raised as SQLAlchemy's (``OperationalError``, ``IntegrityError``), so the retries and
error handlers treat them exactly as before.
"""

import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import aiosqlite
import asyncpg
from sqlalchemy import JSON, ColumnElement, Executable, bindparam, func, select
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.dialects.sqlite import aiosqlite as aiosqlite_dialect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

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


@asynccontextmanager
async def pooled_driver_connection(db: Database) -> AsyncIterator[Any]:
    """A driver's connection (asyncpg's, aiosqlite's) of the autocommit pool, lent for one statement.

    Taken from SQLAlchemy's pool itself, without the ``AsyncConnection`` that
    ``db.autocommit()`` wraps around it: that wrapper and its two trips through a greenlet
    cost about a tenth of a write's server CPU, for nothing a statement sent by the driver
    uses. The pool is the same one (its size, its timeout, its metrics), and so are the
    errors: a failed connect is raised as SQLAlchemy's error, as ``Connection`` raises it,
    and a connection that breaks is invalidated, as ``driver_connection`` does.
    """
    pooled = await greenlet_spawn(_check_out, db.autocommit_engine.sync_engine)
    try:
        yield pooled.driver_connection
    except CONNECTION_ERRORS:
        await greenlet_spawn(pooled.invalidate)
        raise
    finally:
        await greenlet_spawn(pooled.close)


def _check_out(engine: Engine) -> PoolProxiedConnection:
    try:
        return engine.raw_connection()
    except engine.dialect.loaded_dbapi.Error as exc:  # the database refused or is unreachable
        raise DBAPIError.instance(
            None,
            None,
            exc,
            engine.dialect.loaded_dbapi.Error,
            connection_invalidated=engine.dialect.is_disconnect(exc, None, None),
            dialect=engine.dialect,
        ) from exc


def in_json_list(column: ColumnElement[Any], name: str) -> ColumnElement[bool]:
    """``column IN`` the list passed as parameter ``name``, in SQL that does not change with its length.

    SQLite's form (``json_each``) of PostgreSQL's ``= ANY(:name)``: the list is sent as JSON.
    """
    listed = func.json_each(bindparam(name, type_=JSON)).table_valued("value")
    return column.in_(select(listed.c.value))


_SQLITE = aiosqlite_dialect.dialect()
_Processor = Callable[[Any], Any] | None


class _SQLiteForm:
    """A statement compiled once for SQLite: its text, and SQLAlchemy's conversions in and out."""

    def __init__(self, statement: Executable) -> None:
        compiled = statement.compile(dialect=_SQLITE)
        self.sql = str(compiled)
        self.parameters: Sequence[tuple[str, _Processor]] = [
            (name, compiled.binds[name].type.dialect_impl(_SQLITE).bind_processor(_SQLITE))
            for name in compiled.positiontup or ()
        ]
        self.columns: Sequence[tuple[str, _Processor]] = [
            (column.key, column.type.dialect_impl(_SQLITE).result_processor(_SQLITE, None))
            for column in getattr(statement, "exported_columns", ())
        ]

    def bind(self, parameters: Mapping[str, Any]) -> list[Any]:
        return [
            process(parameters[name]) if process is not None else parameters[name] for name, process in self.parameters
        ]

    def row(self, values: Sequence[Any]) -> dict[str, Any]:
        return {
            name: process(value) if process is not None else value
            for (name, process), value in zip(self.columns, values, strict=True)
        }

    async def all(self, conn: AsyncConnection, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every row, inside the transaction open on ``conn``."""
        return await self.all_on((await conn.get_raw_connection()).driver_connection, parameters)

    async def all_on(self, raw: aiosqlite.Connection, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Every row, on the aiosqlite connection ``raw``."""
        values = self.bind(parameters)
        with _as_sqlalchemy_error(self.sql, values):
            rows = await raw.execute_fetchall(self.sql, values)
        return [self.row(row) for row in rows]

    async def many(self, conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
        values = [self.bind(parameters) for parameters in rows]
        raw = (await conn.get_raw_connection()).driver_connection
        with _as_sqlalchemy_error(self.sql, values):
            await raw.executemany(self.sql, values)


@contextmanager
def _as_sqlalchemy_error(sql: str, values: Any) -> Iterator[None]:
    """What SQLite refuses, raised as SQLAlchemy's error (``IntegrityError``, ``OperationalError``)."""
    try:
        yield
    except sqlite3.Error as exc:
        raise DBAPIError.instance(sql, values, exc, sqlite3.Error) from exc


class HotStatement:
    """A Core statement compiled once for each database and sent by its driver itself.

    ``statement`` is what SQLite runs; ``postgres`` is the same statement written for
    PostgreSQL where the two differ: ``id = ANY(:ids)`` with an array where SQLite reads
    the list from ``json_each(:ids)`` (a list in ``IN`` would be compiled anew for
    every length), or a dialect's own ``INSERT … ON CONFLICT``.

    ``first`` and ``all`` run on an autocommit connection of their own; ``rows_in`` and
    ``execute_many_in`` inside the caller's transaction (PostgreSQL's, which writes only
    reversals step by step, through SQLAlchemy as before).
    """

    def __init__(self, statement: Executable, *, postgres: Executable | None = None) -> None:
        self.postgres_statement = postgres if postgres is not None else statement
        compiled = self.postgres_statement.compile(dialect=asyncpg_dialect.dialect())
        self.sql = str(compiled)
        self.parameter_order: Sequence[str] = compiled.positiontup or ()
        self.sqlite = _SQLiteForm(statement)

    async def first(self, db: Database, parameters: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The first row as a mapping (column name to value), or None."""
        async with pooled_driver_connection(db) as raw:
            if db.is_postgres:
                return await raw.fetchrow(self.sql, *(parameters[name] for name in self.parameter_order))
            rows = await self.sqlite.all_on(raw, parameters)
            return rows[0] if rows else None

    async def all(self, db: Database, parameters: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
        """Every row, each as a mapping (column name to value)."""
        async with pooled_driver_connection(db) as raw:
            if db.is_postgres:
                return await raw.fetch(self.sql, *(parameters[name] for name in self.parameter_order))
            return await self.sqlite.all_on(raw, parameters)

    async def rows_in(self, conn: AsyncConnection, parameters: Mapping[str, Any]) -> Sequence[Mapping[str, Any]]:
        """Every row, inside the transaction open on ``conn``."""
        if conn.dialect.name == "sqlite":
            return await self.sqlite.all(conn, parameters)
        return (await conn.execute(self.postgres_statement, dict(parameters))).mappings().all()

    async def execute_many_in(self, conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
        """The statement once for each of ``rows``' parameters, inside the transaction open on ``conn``."""
        if conn.dialect.name == "sqlite":
            await self.sqlite.many(conn, rows)
            return
        await conn.execute(self.postgres_statement, [dict(parameters) for parameters in rows])
