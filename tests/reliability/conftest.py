"""Fixtures for tests against a real ``timebank serve`` process (the helpers live in scripts/drills/).

These tests need PostgreSQL: writers only really run concurrently there (SQLite
serialises them), and only a database server can be stopped and started. Like
every PostgreSQL test they are skipped when it is unreachable, and the run fails
instead under TIMEBANK_REQUIRE_POSTGRES=1 (see tests/conftest.py).
"""

from collections.abc import Iterator

import pytest

from scripts.drills.live_server import ServerProcess
from tests.conftest import EmptyDatabase


@pytest.fixture(scope="module", params=["postgresql"])
def live_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``timebank serve`` on a fresh, migrated database of this module's own, stopped afterwards."""
    workdir = tmp_path_factory.mktemp("live-server")
    databases = EmptyDatabase(request.param, workdir)
    try:
        with ServerProcess(databases.create(), workdir) as server:
            server.migrate()
            server.start()
            yield server
    finally:
        databases.drop_all()
