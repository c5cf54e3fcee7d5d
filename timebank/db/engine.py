"""Engines for the two databases, configured so the ledger behaves the same on both.

PostgreSQL runs at READ COMMITTED and the ledger locks account rows explicitly.
SQLite serialises writers: every transaction starts with ``BEGIN IMMEDIATE``,
so a read-then-write can never interleave with another writer. Within one
process, writers queue for that lock in order on an ``asyncio.Lock`` first
(``sqlite_writer_turn``) instead of in SQLite's busy handler. A read session
(``Database.read_session``) begins ``DEFERRED`` instead and does not queue: in WAL
mode it reads the last commit while the one writer goes on.
"""

import asyncio
import datetime as dt
import os
import sqlite3
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_only
from sqlmodel.ext.asyncio.session import AsyncSession

from timebank.config import to_async_url
from timebank.db.fair_pool import FirstComeFirstServedPool
from timebank.monitoring import metrics

SQLITE_BUSY_TIMEOUT_MS = 30_000
# The execution option of a read session's connections on SQLite (Database.read_session).
_READ_ONLY = "timebank_read_only"
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

# One FIFO queue of writers per event loop and SQLite file, shared by every Database on it.
_sqlite_write_locks: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Lock]]" = (
    weakref.WeakKeyDictionary()
)
# The files whose queue this task (or the task that started it) is at the head of.
_holding_turn: ContextVar[frozenset[str]] = ContextVar("sqlite_write_turn", default=frozenset())


@asynccontextmanager
async def sqlite_writer_turn(sqlite_file: str) -> AsyncIterator[None]:
    """Wait, in order of arrival, until no other transaction of this process writes to ``sqlite_file``.

    SQLite has one write lock per file. Left to itself, a writer that finds it taken
    sleeps in SQLite's busy handler in growing steps and retries: nobody is served in
    order, and under a few concurrent writers some wait over a second while others pass
    straight through. ``asyncio.Lock`` hands the turn over first come, first served,
    the moment the previous writer commits, and waiting costs no thread. SQLite's own
    lock (and busy timeout) still guards against other processes, such as the CLI.

    Re-entrant within a task: work that opens a transaction inside another one (or
    tasks it starts) does not queue behind itself, and meets SQLite's lock as before.
    """
    held = _holding_turn.get()
    if sqlite_file in held:
        yield
        return
    locks = _sqlite_write_locks.setdefault(asyncio.get_running_loop(), {})
    lock = locks.setdefault(sqlite_file, asyncio.Lock())
    try:
        async with asyncio.timeout(SQLITE_BUSY_TIMEOUT_MS / 1000):
            await lock.acquire()
    except TimeoutError:
        # What SQLite itself says after its busy timeout: retried like it (db/retry.py).
        raise OperationalError("BEGIN IMMEDIATE", None, sqlite3.OperationalError("database is locked")) from None
    token = _holding_turn.set(held | {sqlite_file})
    try:
        yield
    finally:
        _holding_turn.reset(token)
        lock.release()


def holds_writer_turn(sqlite_file: str) -> bool:
    """Whether this task (or the task that started it) holds the writer turn of ``sqlite_file``."""
    return sqlite_file in _holding_turn.get()


def as_utc(value: dt.datetime) -> dt.datetime:
    """A stored time as UTC: SQLite hands datetimes back naive, and every one stored is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Database:
    """Two engines on one database, and the session factory.

    ``engine`` runs transactions. ``autocommit_engine`` has its own pool of
    connections that are always in autocommit, for single-statement work on the
    hot path (the token check on every request, the one-statement ledger write on
    PostgreSQL): switching a pooled connection in and out of autocommit on every
    checkout cost more than the query it was for.
    """

    engine: AsyncEngine
    autocommit_engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    read_sessions: async_sessionmaker[AsyncSession]
    # The SQLite file (absolute path) whose writers queue in this process; None on PostgreSQL.
    sqlite_file: str | None = None

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One database transaction on a Core connection: commit on success, else roll back."""
        async with self._writer_turn(), self.engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A connection where each statement is its own transaction (no BEGIN, no COMMIT).

        For single-statement work only: reads of one query, and the one-statement
        ledger write on PostgreSQL.
        """
        async with self.autocommit_engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """An ORM session; on SQLite its transaction begins IMMEDIATE, so it waits its turn as a writer."""
        async with self._writer_turn(), self.sessions() as session:
            yield session

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        """An ORM session that only reads, and so never waits among the writers.

        On SQLite its transaction begins DEFERRED: it reads the last commit while a writer
        goes on (WAL), without the writer turn. On PostgreSQL it is READ ONLY, so a write
        slipped into one is refused; on both it ends rolled back, whatever was done in it.
        """
        async with self.read_sessions() as session:
            yield session

    @asynccontextmanager
    async def _writer_turn(self) -> AsyncIterator[None]:
        if self.sqlite_file is None:
            yield
            return
        async with sqlite_writer_turn(self.sqlite_file):
            yield

    async def dispose(self) -> None:
        await self.engine.dispose()
        await self.autocommit_engine.dispose()
        metrics.forget_pool(self.engine, "transaction")
        metrics.forget_pool(self.autocommit_engine, "autocommit")


def create_database(
    url: str,
    *,
    pool_size: int = 16,
    max_overflow: int = 0,
    timeout_seconds: float = 5.0,
    echo: bool = False,
) -> Database:
    """Both engines for ``url`` (each with a pool of ``pool_size`` + ``max_overflow`` on PostgreSQL)."""
    url = to_async_url(url)
    backend = make_url(url).get_backend_name()
    sqlite_file = None
    if backend == "sqlite":
        sqlite_file = os.path.abspath(make_url(url).database or ":memory:")
        engine = _create_sqlite_engine(url, echo=echo, autocommit=False)
        autocommit_engine = _create_sqlite_engine(url, echo=echo, autocommit=True)
    elif backend == "postgresql":
        options = {"pool_size": pool_size, "max_overflow": max_overflow, "timeout_seconds": timeout_seconds}
        engine = _create_postgres_engine(url, echo=echo, autocommit=False, **options)
        autocommit_engine = _create_postgres_engine(url, echo=echo, autocommit=True, **options)
    else:
        raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
    sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
    reading = engine.execution_options(**({_READ_ONLY: True} if sqlite_file else {"postgresql_readonly": True}))
    read_sessions = async_sessionmaker(reading, class_=AsyncSession, expire_on_commit=False)
    metrics.instrument_pool(engine, "transaction")
    metrics.instrument_pool(autocommit_engine, "autocommit")
    return Database(
        engine=engine,
        autocommit_engine=autocommit_engine,
        sessions=sessions,
        read_sessions=read_sessions,
        sqlite_file=sqlite_file,
    )


def _create_postgres_engine(
    url: str, *, echo: bool, autocommit: bool, pool_size: int, max_overflow: int, timeout_seconds: float
) -> AsyncEngine:
    connect_args: dict[str, object] = {
        "timeout": timeout_seconds,
        "command_timeout": max(timeout_seconds * 2, 10),
        "server_settings": {"application_name": "timebank"},
    }
    parsed = make_url(url)
    if parsed.host in LOOPBACK_HOSTS and not {"ssl", "sslmode"} & set(parsed.query):
        # TLS to a database on the same machine protects nothing and costs about
        # half a millisecond of CPU per request; ask for it in the URL if wanted.
        connect_args["ssl"] = False
    return create_async_engine(
        url,
        echo=echo,
        # Requests waiting for a connection are served in order (db/fair_pool.py).
        poolclass=FirstComeFirstServedPool,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=timeout_seconds,
        # No pre-ping: with asyncpg it costs two round trips (BEGIN, ROLLBACK) on every
        # checkout. After a database restart the first query on a dead connection
        # fails (a 503) and SQLAlchemy then recycles every older pooled connection,
        # so the service recovers by itself without paying that toll per request.
        pool_pre_ping=False,
        connect_args=connect_args,
        **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
    )


def _create_sqlite_engine(url: str, *, echo: bool, autocommit: bool) -> AsyncEngine:
    # The pool's rollback when a connection is handed back would cost a trip to aiosqlite's
    # thread on every request, and after a commit it does nothing. An autocommit connection
    # never holds a transaction; a transaction connection is rolled back only if one is
    # still open (``_roll_back_if_still_open``), the last guard of SQLite's one write lock.
    engine = create_async_engine(
        url,
        echo=echo,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        pool_reset_on_return=None,
        # SQLAlchemy's sizes (5, and 10 more while busy), served in order (db/fair_pool.py).
        poolclass=FirstComeFirstServedPool,
        **({"isolation_level": "AUTOCOMMIT"} if autocommit else {}),
    )

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        # Take transaction control away from the sqlite3 module so BEGIN is ours.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        # FULL: a committed (acknowledged) write survives a power cut, not only a crash.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.close()

    if not autocommit:

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn) -> None:  # type: ignore[no-untyped-def]
            # A writer takes SQLite's write lock at once; a read session (Database.read_session)
            # only reads, and takes it never. Sent by aiosqlite itself: one trip to its thread,
            # where SQLAlchemy's cursor makes three (open, execute, close). Its errors
            # ("database is locked") are raised as SQLAlchemy's, which the retries know.
            begin = "BEGIN DEFERRED" if conn.get_execution_options().get(_READ_ONLY) else "BEGIN IMMEDIATE"
            try:
                await_only(conn.connection.driver_connection.execute_fetchall(begin))
            except sqlite3.Error as exc:
                raise DBAPIError.instance(begin, (), exc, sqlite3.Error) from exc

        @event.listens_for(engine.sync_engine, "reset")
        def _roll_back_if_still_open(dbapi_connection, _record, reset_state) -> None:  # type: ignore[no-untyped-def]
            # Not for a connection being thrown away: closing it lets go of its locks.
            if reset_state.terminate_only or not reset_state.asyncio_safe:
                return
            if dbapi_connection.driver_connection.in_transaction:
                dbapi_connection.rollback()

    return engine
