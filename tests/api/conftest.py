"""Fixtures for tests through HTTP: the real app, on the same event loop as the test.

The app shares the session's ``db`` (SQLite or PostgreSQL, see tests/conftest.py)
and is driven with ``httpx.ASGITransport``, so the test and the app run on one loop.
Each test gets its own client address, so sign-in failures counted per client
never leak from one test into another.
"""

import datetime as dt
import itertools
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from functools import lru_cache

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import update

from tests.conftest import Org, make_org
from timebank.app import create_app
from timebank.auth.passwords import hash_password
from timebank.auth.tokens import issue_token
from timebank.config import Settings
from timebank.db import Database
from timebank.members.service import create_member
from timebank.models import Member, Role, User

PASSWORD = "correct horse battery staple"
_client_numbers = itertools.count(1)
_person_numbers = itertools.count(1)


@lru_cache
def password_hash() -> str:
    """One argon2id hash for every test user: hashing per user would slow the suite."""
    return hash_password(PASSWORD)


def test_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "environment": "test",
        "secret_key": "test-secret-key-that-is-long-enough-0123456789",
        **overrides,
    }
    return Settings(**values)  # type: ignore[arg-type]


def make_app(db: Database, **overrides: object) -> Litestar:
    app = create_app(test_settings(**overrides), database=db)
    app.state.db = db  # what the lifespan would do; ASGITransport does not run it
    return app


@pytest.fixture(scope="session")
def app(db: Database) -> Litestar:
    return make_app(db)


def client_for(app: Litestar, address: str | None = None) -> httpx.AsyncClient:
    number = next(_client_numbers)
    address = address or f"10.{number // 65536 % 256}.{number // 256 % 256}.{number % 256}"
    transport = httpx.ASGITransport(app=app, client=(address, 50000))
    return httpx.AsyncClient(transport=transport, base_url="http://timebank.test")


@pytest.fixture
async def client(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    async with client_for(app) as http:
        yield http


@dataclass
class Person:
    """Someone in an organisation who can sign in, with a live token."""

    username: str
    user_id: int
    member_id: int
    account_id: int
    role: Role
    token: str
    display_name: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def posting(self, key: str | None = None) -> dict[str, str]:
        """Headers for a write: the token and a fresh (or given) Idempotency-Key."""
        return {**self.headers, "Idempotency-Key": key or uuid.uuid4().hex}


@dataclass
class ApiOrg:
    """An organisation with a coordinator, a staff member and two members who sign in."""

    org: Org
    coordinator: Person
    staff: Person
    member: Person
    other_member: Person
    people: dict[str, Person] = field(default_factory=dict)

    @property
    def slug(self) -> str:
        return self.org.slug

    @property
    def id(self) -> int:
        return self.org.id

    def url(self, path: str = "") -> str:
        return f"/api/v1/orgs/{self.org.slug}{path}"


async def add_person(db: Database, org: Org, role: Role, *, name: str | None = None) -> Person:
    """A member of ``org`` with a login (sharing one precomputed hash) and a token."""
    username = f"{role.value}-{uuid.uuid4().hex[:10]}"
    # A display name made from a counter, not from the random username: searches by name must
    # find the same people on every run.
    display_name = name or f"{role.value.title()} {next(_person_numbers)}"
    new = await create_member(db, org.id, display_name=display_name, role=role, changed_by=None)
    async with db.session() as session:
        user = User(username=username, password_hash=password_hash())
        session.add(user)
        await session.flush()
        await session.exec(update(Member).where(Member.id == new.member.id).values(user_id=user.id))  # type: ignore[arg-type]
        await session.commit()
        user_id = user.id
    assert user_id is not None and new.member.id is not None and new.account.id is not None
    token, _ = await issue_token(db, user_id, dt.timedelta(hours=1))
    return Person(username, user_id, new.member.id, new.account.id, role, token, display_name)


async def add_site_admin(db: Database) -> Person:
    username = f"admin-{uuid.uuid4().hex[:10]}"
    async with db.session() as session:
        user = User(username=username, password_hash=password_hash(), is_site_admin=True)
        session.add(user)
        await session.commit()
        user_id = user.id
    assert user_id is not None
    token, _ = await issue_token(db, user_id, dt.timedelta(hours=1))
    return Person(username, user_id, 0, 0, Role.MEMBER, token)


async def make_api_org(db: Database, *, min_balance_minutes: int = -120) -> ApiOrg:
    org = await make_org(db, min_balance_minutes=min_balance_minutes)
    return ApiOrg(
        org=org,
        coordinator=await add_person(db, org, Role.COORDINATOR),
        staff=await add_person(db, org, Role.STAFF),
        member=await add_person(db, org, Role.MEMBER, name="Member Self"),
        other_member=await add_person(db, org, Role.MEMBER, name="Member Other"),
    )


@pytest.fixture
async def api_org(db: Database) -> ApiOrg:
    return await make_api_org(db)
