"""Test fixtures: every ledger test runs on SQLite and on PostgreSQL.

Each database is built with ``alembic upgrade head``, exactly as in production.
Tests share one database per backend per run, and each test works in its own
organisation, so tests never see each other's ledgers (every query is scoped by
organisation, as in production). PostgreSQL databases are created with a random
name and dropped at the end of the run.
"""

import asyncio
import datetime as dt
import itertools
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from hypothesis import settings

from timebank.db import Database, create_database
from timebank.db.migrate import upgrade
from timebank.ledger import shared_account_id
from timebank.members.service import create_member
from timebank.models import AccountKind, Role
from timebank.orgs.service import create_organisation

POSTGRES_SERVER_URL = os.environ.get("TIMEBANK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
REQUIRE_POSTGRES = os.environ.get("TIMEBANK_REQUIRE_POSTGRES") == "1"
BACKENDS = ["sqlite", "postgresql"]

# Hypothesis draws the same examples on every run (derandomize), and keeps no database of
# past failures between runs, so a verdict never depends on luck or on an earlier run;
# a failure prints the example and how to reproduce it. TIMEBANK_HYPOTHESIS=explore draws
# new examples each run, for hunting bugs deliberately.
settings.register_profile("repeatable", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", database=None, print_blob=True)
settings.load_profile(os.environ.get("TIMEBANK_HYPOTHESIS", "repeatable"))


def _postgres_unreachable_reason() -> str | None:
    async def probe() -> None:
        conn = await asyncpg.connect(f"{POSTGRES_SERVER_URL}/postgres", timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except Exception as exc:  # any failure to connect means "not reachable"
        return f"PostgreSQL is not reachable at {POSTGRES_SERVER_URL} ({type(exc).__name__}: {exc})"
    return None


_POSTGRES_SKIP_REASON: str | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _POSTGRES_SKIP_REASON
    if hasattr(config, "workerinput"):
        return
    _POSTGRES_SKIP_REASON = _postgres_unreachable_reason()
    if _POSTGRES_SKIP_REASON and REQUIRE_POSTGRES:
        pytest.exit(f"{_POSTGRES_SKIP_REASON}, and TIMEBANK_REQUIRE_POSTGRES=1", returncode=3)


def pytest_report_header(config: pytest.Config) -> str:
    if _POSTGRES_SKIP_REASON:
        return (
            f"{_POSTGRES_SKIP_REASON}: the PostgreSQL tests are SKIPPED "
            "(set TIMEBANK_REQUIRE_POSTGRES=1 to fail instead)"
        )
    return f"PostgreSQL tests run against {POSTGRES_SERVER_URL}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _POSTGRES_SKIP_REASON:
        skipped = sum("postgresql" in report.nodeid for report in terminalreporter.stats.get("skipped", []))
        terminalreporter.write_line(
            f"{_POSTGRES_SKIP_REASON}: {skipped} PostgreSQL tests were SKIPPED "
            "(set TIMEBANK_REQUIRE_POSTGRES=1 to fail instead)",
            yellow=True,
            bold=True,
        )


def require_postgres() -> None:
    if _POSTGRES_SKIP_REASON:
        pytest.skip(f"{_POSTGRES_SKIP_REASON}; PostgreSQL tests skipped")


def _new_postgres_database() -> str:
    name = f"timebank_test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        conn = await asyncpg.connect(f"{POSTGRES_SERVER_URL}/postgres")
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    return f"{POSTGRES_SERVER_URL}/{name}"


def _drop_postgres_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]

    async def drop() -> None:
        conn = await asyncpg.connect(f"{POSTGRES_SERVER_URL}/postgres")
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


@dataclass
class EmptyDatabase:
    """Creates empty databases of one backend and removes them afterwards."""

    backend: str
    directory: Path

    def __post_init__(self) -> None:
        self._created: list[str] = []

    def create(self) -> str:
        if self.backend == "postgresql":
            require_postgres()
            url = _new_postgres_database()
        else:
            url = f"sqlite+aiosqlite:///{self.directory / f'timebank-{uuid.uuid4().hex[:8]}.sqlite3'}"
        self._created.append(url)
        return url

    def drop_all(self) -> None:
        for url in self._created:
            if url.startswith("postgresql"):
                _drop_postgres_database(url)


@pytest.fixture(scope="session", params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        require_postgres()
    return request.param


@pytest.fixture(scope="session")
def empty_databases(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmptyDatabase]:
    factory = EmptyDatabase(backend, tmp_path_factory.mktemp(f"db-{backend}"))
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def database_url(empty_databases: EmptyDatabase) -> str:
    """A database built by the migrations, shared by the tests of one backend."""
    url = empty_databases.create()
    upgrade(url)
    return url


@pytest.fixture(scope="session")
async def db(database_url: str) -> AsyncIterator[Database]:
    database = create_database(database_url, pool_size=20, max_overflow=10)
    yield database
    await database.dispose()


_org_numbers = itertools.count(1)


@dataclass
class Org:
    """A fresh organisation for one test, with helpers to add members."""

    db: Database
    id: int
    slug: str
    agency_account_id: int
    pot_account_id: int
    min_balance_minutes: int

    async def member(self, name: str | None = None, *, role: Role = Role.MEMBER, **kwargs: object) -> int:
        """Register a member; returns their account id."""
        display_name = name or f"Member {next(_org_numbers)}"
        new = await create_member(self.db, self.id, display_name=display_name, role=role, **kwargs, changed_by=None)  # type: ignore[arg-type]
        assert new.account.id is not None
        return new.account.id


async def make_org(db: Database, *, min_balance_minutes: int = -120, timezone: str = "Europe/London") -> Org:
    slug = f"org-{uuid.uuid4().hex[:10]}"
    organisation = await create_organisation(
        db,
        slug=slug,
        name=f"Test centre {slug}",
        timezone=timezone,
        min_balance_minutes=min_balance_minutes,
        changed_by=None,
    )
    assert organisation.id is not None
    return Org(
        db=db,
        id=organisation.id,
        slug=slug,
        agency_account_id=await shared_account_id(db, organisation.id, AccountKind.AGENCY),
        pot_account_id=await shared_account_id(db, organisation.id, AccountKind.POT),
        min_balance_minutes=min_balance_minutes,
    )


@pytest.fixture
async def org(db: Database) -> Org:
    """A new organisation (minimum balance -2 hours) in the shared test database."""
    return await make_org(db)


def new_key() -> str:
    return uuid.uuid4().hex


def today() -> dt.date:
    """Today in Europe/London, the test organisations' time zone."""
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo("Europe/London")).date()
