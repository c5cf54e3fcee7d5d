"""Engines for the two databases, configured so the ledger behaves the same on both.

PostgreSQL runs at READ COMMITTED and the ledger locks account rows explicitly.
SQLite serialises writers: every transaction starts with ``BEGIN IMMEDIATE``,
so a read-then-write can never interleave with another writer.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from timebank.config import to_async_url
from timebank.monitoring import metrics

SQLITE_BUSY_TIMEOUT_MS = 30_000
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


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

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncConnection]:
        """One database transaction on a Core connection: commit on success, else roll back."""
        async with self.engine.begin() as conn:
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
        async with self.sessions() as session:
            yield session

    async def dispose(self) -> None:
        await self.engine.dispose()
        await self.autocommit_engine.dispose()
        metrics.forget_pool(self.engine, "transaction")
        metrics.forget_pool(self.autocommit_engine, "autocommit")


def create_database(
    url: str,
    *,
    pool_size: int = 10,
    max_overflow: int = 5,
    timeout_seconds: float = 5.0,
    echo: bool = False,
) -> Database:
    """Both engines for ``url`` (each with a pool of ``pool_size`` + ``max_overflow`` on PostgreSQL)."""
    url = to_async_url(url)
    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        engine = _create_sqlite_engine(url, echo=echo, autocommit=False)
        autocommit_engine = _create_sqlite_engine(url, echo=echo, autocommit=True)
    elif backend == "postgresql":
        options = {"pool_size": pool_size, "max_overflow": max_overflow, "timeout_seconds": timeout_seconds}
        engine = _create_postgres_engine(url, echo=echo, autocommit=False, **options)
        autocommit_engine = _create_postgres_engine(url, echo=echo, autocommit=True, **options)
    else:
        raise ValueError(f"unsupported database {backend!r}: use sqlite or postgresql")
    sessions = async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
    metrics.instrument_pool(engine, "transaction")
    metrics.instrument_pool(autocommit_engine, "autocommit")
    return Database(engine=engine, autocommit_engine=autocommit_engine, sessions=sessions)


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
    engine = create_async_engine(
        url,
        echo=echo,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
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
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
