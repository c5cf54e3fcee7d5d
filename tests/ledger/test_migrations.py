"""Migrations are code: they build the schema the models describe, on both databases,
with the ledger's guards, and they come down and go back up cleanly."""

import asyncio

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

import timebank.models  # noqa: F401  (registers every table on the metadata)
from tests.conftest import make_org
from tests.ledger.support import exchange
from timebank.db import create_database
from timebank.db.migrate import downgrade, upgrade
from timebank.ledger.verify import verify_ledger

LEDGER_GUARDS = {
    "postgresql": {
        "transactions_append_only",
        "postings_append_only",
        "transactions_no_truncate",
        "postings_no_truncate",
        "postings_sum_to_zero",
        "transactions_have_balanced_postings",
    },
    "sqlite": {
        "transactions_append_only_update",
        "transactions_append_only_delete",
        "postings_append_only_update",
        "postings_append_only_delete",
    },
}
TRIGGERS_QUERY = {
    "postgresql": "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal",
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'trigger'",
}


def _schema_differences(sync_connection):
    context = MigrationContext.configure(sync_connection, opts={"compare_type": True})
    return compare_metadata(context, SQLModel.metadata)


async def inspect_schema(url, backend):
    """The differences from the models, the tables, and the triggers of the database at ``url``."""
    database = create_database(url)
    try:
        async with database.engine.connect() as conn:
            differences = await conn.run_sync(_schema_differences)
            tables = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
            triggers = set((await conn.execute(text(TRIGGERS_QUERY[backend]))).scalars())
            functions = set()
            if backend == "postgresql":
                functions = set(
                    (await conn.execute(text("SELECT proname FROM pg_proc WHERE proname LIKE 'timebank%'"))).scalars()
                )
    finally:
        await database.dispose()
    return differences, tables, triggers | functions


async def assert_the_ledger_works(url):
    database = create_database(url)
    try:
        org = await make_org(database)
        await exchange(org, await org.member("Alice"), await org.member("Bob"), 30)
        assert await verify_ledger(database) == []
    finally:
        await database.dispose()


class TestMigrations:
    async def test_a_migrated_database_matches_the_models_and_carries_the_guards(self, fresh_url, backend):
        await asyncio.to_thread(upgrade, fresh_url)

        differences, tables, guards = await inspect_schema(fresh_url, backend)

        assert differences == []
        assert tables == set(SQLModel.metadata.tables) | {"alembic_version"}
        assert LEDGER_GUARDS[backend] <= guards
        await assert_the_ledger_works(fresh_url)

    async def test_downgrade_removes_everything_and_upgrade_builds_it_again(self, fresh_url, backend):
        await asyncio.to_thread(upgrade, fresh_url)
        await asyncio.to_thread(downgrade, fresh_url, "base")

        differences, tables, guards = await inspect_schema(fresh_url, backend)
        assert tables == {"alembic_version"}
        assert guards == set()
        # The comparison sees every model table as missing: it really compares something.
        assert {diff[1].name for diff in differences if diff[0] == "add_table"} == set(SQLModel.metadata.tables)

        await asyncio.to_thread(upgrade, fresh_url)

        differences, tables, guards = await inspect_schema(fresh_url, backend)
        assert differences == []
        assert LEDGER_GUARDS[backend] <= guards
        await assert_the_ledger_works(fresh_url)
