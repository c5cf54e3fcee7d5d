"""Fixtures for the operations tests: databases of their own, and the command line."""

import asyncio
from collections.abc import AsyncIterator

import pytest
from click.testing import CliRunner, Result

from tests.conftest import EmptyDatabase
from timebank.cli import main
from timebank.config import get_settings
from timebank.db import Database, create_database
from timebank.db.migrate import upgrade


@pytest.fixture
def fresh_url(empty_databases: EmptyDatabase) -> str:
    """An empty database of the test's backend, not migrated."""
    return empty_databases.create()


@pytest.fixture
async def fresh_db(fresh_url: str) -> AsyncIterator[Database]:
    """A new database built by the migrations (``upgrade`` runs its own loop, so in a thread)."""
    await asyncio.to_thread(upgrade, fresh_url)
    database = create_database(fresh_url)
    yield database
    await database.dispose()


def run_cli(url: str, *args: str, input: str | None = None, **env: str) -> Result:
    """``timebank ARGS`` against the database at ``url`` (call it in a thread from async tests)."""
    get_settings.cache_clear()
    try:
        return CliRunner().invoke(main, list(args), input=input, env={"TIMEBANK_DATABASE_URL": url, **env})
    finally:
        get_settings.cache_clear()
