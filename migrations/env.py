"""Alembic environment: async, on SQLite and PostgreSQL, with the app's own engine setup."""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import timebank.models  # noqa: F401  (registers every table on the metadata)
from timebank.config import get_settings
from timebank.db.engine import create_database

config = context.config
target_metadata = SQLModel.metadata


def _run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things in place: batch mode rebuilds the table.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_async_migrations(url: str) -> None:
    database = create_database(url)
    try:
        async with database.engine.connect() as connection:
            sqlite = connection.dialect.name == "sqlite"
            if sqlite:
                # Batch mode rebuilds a table (copy, drop, rename): with foreign keys on, dropping
                # a table that others refer to fails. SQLite's own procedure for altering tables:
                # foreign keys off (only possible outside a transaction), then check them all.
                await _sqlite_foreign_keys(connection, "OFF")
            await connection.run_sync(_run_migrations)
            await connection.commit()
            if sqlite:
                await _sqlite_foreign_keys(connection, "ON")
    finally:
        await database.dispose()


async def _sqlite_foreign_keys(connection, state: str) -> None:  # type: ignore[no-untyped-def]
    raw = (await connection.get_raw_connection()).driver_connection
    await raw.execute(f"PRAGMA foreign_keys={state}")
    if state == "ON":
        cursor = await raw.execute("PRAGMA foreign_key_check")
        broken = await cursor.fetchall()
        if broken:
            raise RuntimeError(f"the migration left rows whose foreign keys point nowhere: {broken[:5]}")


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:  # called from code that already holds a connection
        _run_migrations(connection)
        return
    url = config.get_main_option("sqlalchemy.url") or get_settings().async_database_url
    asyncio.run(_run_async_migrations(url))


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run them against a database")
run_migrations_online()
