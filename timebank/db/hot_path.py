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
a transaction uses the transaction's. A new posting on SQLite goes further: its whole
transaction runs on aiosqlite's thread in one call (``sqlite_write_in_one_call``), on a
connection of the transaction pool, in the same writer turn as any other transaction.

Because SQLAlchemy no longer sees the errors, a PostgreSQL connection that dies under a
raw statement is invalidated here, so the pool replaces it instead of lending it out
again; a connect that fails, and SQLite's errors, are raised as SQLAlchemy's
(``OperationalError``, ``IntegrityError``), so the retries and error handlers treat them
exactly as before.
"""

import asyncio
import contextvars
import sqlite3
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiosqlite
import asyncpg
from sqlalchemy import JSON, ColumnElement, Executable, bindparam, func, select
from sqlalchemy.dialects.postgresql import asyncpg as asyncpg_dialect
from sqlalchemy.dialects.sqlite import aiosqlite as aiosqlite_dialect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from timebank.db.engine import Database, holds_writer_turn, sqlite_writer_turn

T = TypeVar("T")

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
async def pooled_driver_connection(db: Database, *, engine: AsyncEngine | None = None) -> AsyncIterator[Any]:
    """A driver's connection (asyncpg's, aiosqlite's) of the autocommit pool, lent for one statement.

    Taken from SQLAlchemy's pool itself, without the ``AsyncConnection`` that
    ``db.autocommit()`` wraps around it: that wrapper and its two trips through a greenlet
    cost about a tenth of a write's server CPU, for nothing a statement sent by the driver
    uses. The pool is the same one (its size, its timeout, its metrics), and so are the
    errors: a failed connect is raised as SQLAlchemy's error, as ``Connection`` raises it,
    and a connection that breaks is invalidated, as ``driver_connection`` does.
    ``engine`` lends from another of the database's pools (the transaction engine's).
    """
    pooled = await greenlet_spawn(_check_out, (engine or db.autocommit_engine).sync_engine)
    try:
        yield pooled.driver_connection
    except CONNECTION_ERRORS:
        await greenlet_spawn(pooled.invalidate)
        raise
    finally:
        await greenlet_spawn(pooled.close)


async def sqlite_write_in_one_call(db: Database, work: Callable[[sqlite3.Connection], T]) -> T:
    """``work`` as one SQLite write transaction, run whole in a single call to a connection's thread.

    ``BEGIN IMMEDIATE``, ``work`` (which sends its statements on the sqlite3 connection
    it is given, with ``all_now`` and ``many_now``), then ``COMMIT``; if ``work`` raises,
    ``ROLLBACK``, and the error goes on to the caller. Errors are raised as SQLAlchemy's,
    so the retries see a busy file (``database is locked``) as before.

    Sent statement by statement, a write makes seven trips to aiosqlite's thread and back
    while it holds the writer turn, and every trip back waits for the event loop to come
    round to it between other requests' work: the turn, not the CPU, set the pace. Here the
    writes that arrive while one is on its way wait together (``_OneCallQueue``), and the
    next turn sends all of them in one call: the thread runs them one after another, each
    its own transaction with its own commit, while the event loop serves other requests.
    The turn (``sqlite_writer_turn``) and the pool are those of ``Database.transaction()``,
    so these writes still queue in order with every other writer of the process.
    """
    assert db.sqlite_file is not None, "SQLite only"
    if holds_writer_turn(db.sqlite_file):
        # Inside a write transaction of this very task, which the queue would wait behind
        # for ever: sent on its own, it meets SQLite's lock, as a nested transaction does.
        (outcome,) = await _on_a_pooled_connection(db, [work])
        return outcome.value()
    loop = asyncio.get_running_loop()
    queue = _one_call_queues.setdefault(loop, {}).setdefault(db.sqlite_file, _OneCallQueue())
    done: asyncio.Future[_Outcome] = loop.create_future()
    queue.waiting.append((work, done))
    if queue.sender is None:
        # A task of its own, in a context of its own: not cancelled with the request that
        # happened to start it, and not inheriting that request's turn.
        queue.sender = asyncio.create_task(queue.send_waiting(db), context=contextvars.Context())
    return (await done).value()


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one transaction of a call came to: its result, or what it raised."""

    result: Any = None
    error: BaseException | None = None

    def value(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.result


# The most transactions sent in one call: a bound on how long a writer of another kind
# (an ORM session), queued behind them for the turn, waits.
_MOST_IN_ONE_CALL = 32


@dataclass
class _OneCallQueue:
    """The one-call writes of one event loop and SQLite file that wait to be sent, and their sender."""

    waiting: list[tuple[Callable[[sqlite3.Connection], Any], "asyncio.Future[_Outcome]"]] = field(default_factory=list)
    sender: "asyncio.Task[None] | None" = None

    async def send_waiting(self, db: Database) -> None:
        """Send what waits, one call per writer turn, until nothing does."""
        assert db.sqlite_file is not None
        batch: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[_Outcome]]] = []
        try:
            while self.waiting:
                async with sqlite_writer_turn(db.sqlite_file):
                    # Taken once the turn is ours, so whatever arrived meanwhile goes too. A caller
                    # that has gone (cancelled) is left out: nothing of it is written.
                    batch = [(work, done) for work, done in self.waiting[:_MOST_IN_ONE_CALL] if not done.done()]
                    del self.waiting[:_MOST_IN_ONE_CALL]
                    if batch:
                        outcomes = await _on_a_pooled_connection(db, [work for work, _ in batch])
                        for (_, done), outcome in zip(batch, outcomes, strict=True):
                            if not done.done():
                                done.set_result(outcome)
                    batch = []
        except BaseException as exc:
            # No turn in time (30 s), no connection, or the loop is closing: every caller still
            # waiting is told, and none of their work was sent.
            for _, done in (*batch, *self.waiting):
                if not done.done():
                    done.set_result(_Outcome(error=exc))
            self.waiting.clear()
            if not isinstance(exc, Exception):
                raise
        finally:
            self.sender = None


_one_call_queues: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _OneCallQueue]]" = (
    weakref.WeakKeyDictionary()
)


async def _on_a_pooled_connection(db: Database, works: list[Callable[[sqlite3.Connection], Any]]) -> list[_Outcome]:
    """Each of ``works`` as its own transaction, in order, in one call to a pooled connection's thread."""
    raw: aiosqlite.Connection
    async with pooled_driver_connection(db, engine=db.engine) as raw:
        # aiosqlite's own way to run a function on its thread, behind anything already queued
        # there (every public method of aiosqlite goes through it).
        return await raw._execute(_each_in_its_own_transaction, raw._conn, works)


def _each_in_its_own_transaction(
    conn: sqlite3.Connection, works: list[Callable[[sqlite3.Connection], Any]]
) -> list[_Outcome]:
    outcomes = []
    for work in works:
        try:
            outcomes.append(_Outcome(result=_in_one_transaction(conn, work)))
        except BaseException as exc:  # this write's own refusal or error: the others go on
            outcomes.append(_Outcome(error=exc))
    return outcomes


def _in_one_transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    with _as_sqlalchemy_error("BEGIN IMMEDIATE", ()):
        conn.execute("BEGIN IMMEDIATE")
    try:
        result = work(conn)
        with _as_sqlalchemy_error("COMMIT", ()):
            conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # a refusal, an error, or a COMMIT that failed: nothing is kept
            conn.execute("ROLLBACK")
        raise
    return result


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

    # The same two, on the sqlite3 connection itself: for work already on its thread
    # (``sqlite_write_in_one_call``).

    def all_now(self, conn: sqlite3.Connection, parameters: Mapping[str, Any]) -> list[dict[str, Any]]:
        values = self.bind(parameters)
        with _as_sqlalchemy_error(self.sql, values):
            rows = conn.execute(self.sql, values).fetchall()
        return [self.row(row) for row in rows]

    def many_now(self, conn: sqlite3.Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        values = [self.bind(parameters) for parameters in rows]
        with _as_sqlalchemy_error(self.sql, values):
            conn.executemany(self.sql, values)


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
