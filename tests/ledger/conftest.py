"""Fixtures for the ledger tests that need a database of their own (verify, guards, migrations, SQLite's own paths)."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.conftest import EmptyDatabase, Org, make_org
from timebank.db import Database, create_database
from timebank.db.migrate import upgrade


@pytest.fixture
def fresh_url(empty_databases: EmptyDatabase) -> str:
    """An empty database of the test's backend, not migrated."""
    return empty_databases.create()


@pytest.fixture
async def fresh_db(fresh_url: str) -> AsyncIterator[Database]:
    """A new database built by the migrations, for tests that damage it on purpose.

    ``upgrade`` runs its own event loop, so it runs in a thread.
    """
    await asyncio.to_thread(upgrade, fresh_url)
    database = create_database(fresh_url)
    yield database
    await database.dispose()


@pytest.fixture
async def sqlite_org(tmp_path) -> AsyncIterator[Org]:
    """An organisation on a SQLite file of its own (whatever the test run's backend)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'own.sqlite3'}"
    await asyncio.to_thread(upgrade, url)
    database = create_database(url)
    yield await make_org(database)
    await database.dispose()
