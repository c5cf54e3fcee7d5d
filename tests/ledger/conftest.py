"""Fixtures for the ledger tests that need a database of their own (verify, guards, migrations)."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.conftest import EmptyDatabase
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
