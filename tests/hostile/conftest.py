"""Helpers for hostile-input tests: every refusal is a 4xx in the one error shape, never a 500.

The HTTP fixtures (``app``, ``client``, ``api_org``) are those of tests/api. Hypothesis runs
few examples per test, so the whole folder stays quick on both databases.
"""

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, settings

from tests.api.conftest import ApiOrg, api_org, app, client, make_api_org  # noqa: F401  (fixtures)
from tests.api.support import error
from timebank.cli import main
from timebank.config import get_settings
from timebank.db import Database

# One organisation (a function-scoped fixture) serves every example of a test: each example
# either is refused or posts its own transaction, so examples never depend on each other.
fuzz = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
async def shared_org(db: Database) -> ApiOrg:
    """One organisation for a module's read-only tests: setting one up per case costs seconds."""
    return await make_api_org(db)


@pytest.fixture
def cli_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point the command line's settings at the test database."""
    monkeypatch.setenv("TIMEBANK_DATABASE_URL", database_url)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def run_command(*args: str, env: dict[str, str] | None = None) -> Result:
    """``timebank <args>`` in a thread: the command runs its own event loop, as from a shell."""
    return await asyncio.to_thread(CliRunner().invoke, main, list(args), env=env)


def refused(response: httpx.Response, *statuses: int) -> dict:
    """Check ``response`` is a client error (one of ``statuses`` if given); returns its body."""
    assert 400 <= response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    if statuses:
        assert response.status_code in statuses, f"{response.status_code}: {response.text[:500]}"
    return error(response, response.status_code)


def not_a_server_error(response: httpx.Response) -> None:
    """Anything but a 5xx; a refusal must still be in the one error shape."""
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"
    if response.status_code >= 400:
        error(response, response.status_code)
