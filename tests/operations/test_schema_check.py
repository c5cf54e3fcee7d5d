"""`timebank migrate --check` says how far behind (or ahead) the database is, and the service
will not start on a database that is not at its latest migration."""

import asyncio

import pytest
from litestar.testing import AsyncTestClient
from sqlalchemy import text

from tests.api.conftest import test_settings as settings_for_tests
from tests.operations.conftest import run_cli
from tests.operations.test_upgrades import EARLIER, HEAD
from timebank.app import create_app
from timebank.db import create_database
from timebank.db.migrate import SchemaNotCurrent, upgrade


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
    @pytest.mark.parametrize("where", ["behind", "ahead"])
    async def test_on_a_database_behind_or_ahead_of_its_code(self, fresh_url, where):
        if where == "behind":
            await asyncio.to_thread(upgrade, fresh_url, EARLIER[0])
        else:
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
        assert ("run `timebank migrate`" if where == "behind" else "newer version") in " ".join(served.output.split())

    async def test_but_starts_on_a_current_one(self, fresh_url):
        await asyncio.to_thread(upgrade, fresh_url)
        app = create_app(settings_for_tests(database_url=fresh_url))
        async with AsyncTestClient(app) as client:
            assert (await client.get("/ready")).status_code == 200
