"""`timebank migrate --check` says how far behind (or ahead) the database is, and the service
will not start on a database that is not at its latest migration."""

import asyncio
import os
import subprocess
import sys

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from tests.api.conftest import test_settings as settings_for_tests
from tests.operations.conftest import run_cli
from tests.operations.test_upgrades import EARLIER, HEAD
from timebank.app import create_app
from timebank.db import create_database
from timebank.db.migrate import upgrade
from timebank.db.schema_version import SchemaNotCurrent, shipped_head


async def set_revision(url: str, revision: str) -> None:
    database = create_database(url)
    try:
        async with database.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": revision})
    finally:
        await database.dispose()


def causes(exc: BaseException):
    """The exception and everything grouped in it."""
    yield exc
    for inner in getattr(exc, "exceptions", ()):
        yield from causes(inner)


class TestMigrateCheck:
    async def test_an_empty_database_has_every_migration_to_apply(self, fresh_url):
        result = await asyncio.to_thread(run_cli, fresh_url, "migrate", "--check")
        assert result.exit_code == 1
        assert f"no schema yet ({len(EARLIER) + 1} migration(s) to apply)" in " ".join(result.output.split())

    async def test_a_database_behind_says_how_far_and_what_to_run(self, fresh_url):
        await asyncio.to_thread(upgrade, fresh_url, "0001")
        result = await asyncio.to_thread(run_cli, fresh_url, "migrate", "--check")
        output = " ".join(result.output.split())
        assert result.exit_code == 1
        assert f"{len(EARLIER)} migration(s) behind (at 0001, latest {HEAD})" in output
        assert "run `timebank migrate`" in output

    async def test_a_current_database_passes(self, fresh_url):
        await asyncio.to_thread(upgrade, fresh_url)
        result = await asyncio.to_thread(run_cli, fresh_url, "migrate", "--check")
        assert result.exit_code == 0, result.output
        assert "latest migration" in result.output

    async def test_a_database_from_a_newer_version_is_called_unknown(self, fresh_url):
        await asyncio.to_thread(upgrade, fresh_url)
        await set_revision(fresh_url, "9999")
        result = await asyncio.to_thread(run_cli, fresh_url, "migrate", "--check")
        output = " ".join(result.output.split())
        assert result.exit_code == 1
        assert "at migration 9999, which this version of Timebank does not know" in output


class TestTheServiceRefusesToStart:
    @pytest.mark.parametrize("where", ["never migrated", "behind", "ahead"])
    async def test_on_a_database_behind_or_ahead_of_its_code(self, fresh_url, where):
        if where == "behind":
            await asyncio.to_thread(upgrade, fresh_url, EARLIER[0])
        elif where == "ahead":
            await asyncio.to_thread(upgrade, fresh_url)
            await set_revision(fresh_url, "9999")
        app = create_app(settings_for_tests(database_url=fresh_url))
        with pytest.raises(BaseException) as refused:
            async with AsyncTestClient(app):
                pass
        assert any(isinstance(e, SchemaNotCurrent) and "will not start" in str(e) for e in causes(refused.value))
        served = await asyncio.to_thread(run_cli, fresh_url, "serve", "--port", "1")
        assert served.exit_code == 1
        assert "will not start" in served.output
        assert ("newer version" if where == "ahead" else "run `timebank migrate`") in " ".join(served.output.split())

    async def test_but_starts_on_a_current_one(self, fresh_url):
        await asyncio.to_thread(upgrade, fresh_url)
        app = create_app(settings_for_tests(database_url=fresh_url))
        async with AsyncTestClient(app) as client:
            assert (await client.get("/ready")).status_code == 200


def test_the_newest_migration_file_is_alembics_head() -> None:
    """The start check reads the head from the migration files' dated names
    (db/schema_version.py): a migration named otherwise, or a branch in the history,
    must fail here rather than let the service start on the wrong schema."""
    assert shipped_head() == HEAD


_START_ON_A_CURRENT_DATABASE = """
import asyncio, sys
from litestar.testing import AsyncTestClient
from timebank.app import create_app
from timebank.config import Settings

async def main():
    settings = Settings(environment="test", secret_key="x" * 40, database_url=sys.argv[1])
    async with AsyncTestClient(create_app(settings)) as client:
        assert (await client.get("/ready")).status_code == 200

asyncio.run(main())
from timebank.cli import _schema_status_unless_current  # what `timebank serve` checks first

assert _schema_status_unless_current() is None
print("loaded:", "alembic" in sys.modules, "mako" in sys.modules)
"""


async def test_a_start_on_a_current_database_does_not_load_alembic(fresh_url) -> None:
    """Alembic adds 10 MB to a worker (docs/performance.md, round nine): both start checks on a
    current database (the app's, and ``timebank serve``'s before it) must do without it."""
    await asyncio.to_thread(upgrade, fresh_url)
    started = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", _START_ON_A_CURRENT_DATABASE, fresh_url],
        env={**os.environ, "TIMEBANK_DATABASE_URL": fresh_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert started.returncode == 0, started.stderr
    assert "loaded: False False" in started.stdout.splitlines(), started.stdout
