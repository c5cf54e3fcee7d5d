"""Helpers shared by the ledger specification: posting with sensible defaults, and the
"nothing half-written" check that every refusal in these tests goes through."""

import asyncio
import datetime as dt
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import func, insert, select, text, update

from tests.conftest import EmptyDatabase, Org, new_key, today
from timebank import ledger
from timebank.db import Database, create_database
from timebank.db.migrate import upgrade
from timebank.ledger import PostedTransaction
from timebank.ledger.errors import LedgerError
from timebank.members.service import set_member_active
from timebank.models import Account, Organisation, Posting, Transaction, User

accounts = Account.__table__
organisations = Organisation.__table__
transactions = Transaction.__table__
postings = Posting.__table__
users = User.__table__


def days_ago(days: int) -> dt.date:
    return today() - dt.timedelta(days=days)


async def exchange(org: Org, giver: int, receiver: int, minutes: Any = 60, **overrides: Any) -> PostedTransaction:
    """``post_exchange`` with defaults for everything the test does not care about."""
    request: dict[str, Any] = {
        "giver_account_id": giver,
        "receiver_account_id": receiver,
        "minutes": minutes,
        "occurred_on": today(),
        "description": "Help with the shopping",
        "recorded_by": None,
        "idempotency_key": new_key(),
    }
    return await ledger.post_exchange(org.db, org.id, **(request | overrides))


async def opening_balance(org: Org, account_id: int, minutes: int) -> PostedTransaction:
    return await ledger.post_opening_balance(
        org.db,
        org.id,
        member_account_id=account_id,
        minutes=minutes,
        occurred_on=today(),
        recorded_by=None,
        idempotency_key=new_key(),
    )


@dataclass(frozen=True)
class LedgerState:
    """Everything a write could change in one organisation."""

    accounts: tuple[tuple[int, int, int, int | None, bool], ...]
    transactions: int
    postings: int


async def ledger_state(db: Database, organisation_id: int) -> LedgerState:
    async with db.engine.connect() as conn:
        rows = await conn.execute(
            select(
                accounts.c.id,
                accounts.c.balance_minutes,
                accounts.c.version,
                accounts.c.min_balance_minutes,
                accounts.c.is_active,
            )
            .where(accounts.c.organisation_id == organisation_id)
            .order_by(accounts.c.id)
        )
        account_rows = tuple(tuple(row) for row in rows)
        transaction_count = await conn.scalar(
            select(func.count()).select_from(transactions).where(transactions.c.organisation_id == organisation_id)
        )
        posting_count = await conn.scalar(
            select(func.count()).select_from(postings).where(postings.c.organisation_id == organisation_id)
        )
    return LedgerState(account_rows, transaction_count, posting_count)  # type: ignore[arg-type]


@asynccontextmanager
async def unchanged(org: Org, *others: Org) -> AsyncIterator[None]:
    """Expect the body to leave every organisation involved exactly as it was."""
    involved = (org, *others)
    before = [await ledger_state(o.db, o.id) for o in involved]
    yield
    assert [await ledger_state(o.db, o.id) for o in involved] == before, "the ledger changed"


@asynccontextmanager
async def refused(error: type[LedgerError], org: Org, *others: Org) -> AsyncIterator[pytest.ExceptionInfo[Any]]:
    """Expect ``error``, and that no organisation involved has changed in any way."""
    async with unchanged(org, *others):
        with pytest.raises(error) as refusal:
            yield refusal


async def org_total(db: Database, organisation_id: int) -> int:
    async with db.engine.connect() as conn:
        total = await conn.scalar(
            select(func.sum(accounts.c.balance_minutes)).where(accounts.c.organisation_id == organisation_id)
        )
    return int(total)


async def account_version(db: Database, account_id: int) -> int:
    async with db.engine.connect() as conn:
        return await conn.scalar(select(accounts.c.version).where(accounts.c.id == account_id))  # type: ignore[return-value]


async def set_active(org: Org, account_id: int, active: bool) -> None:
    """Deactivate or reactivate the member who owns ``account_id``."""
    async with org.db.engine.connect() as conn:
        member_id = await conn.scalar(select(accounts.c.member_id).where(accounts.c.id == account_id))
    assert member_id is not None
    await set_member_active(org.db, org.id, member_id, active, changed_by=None)


async def change_organisation(org: Org, **values: Any) -> None:
    """Change an organisation's settings directly (there is no settings service yet)."""
    async with org.db.transaction() as conn:
        await conn.execute(update(organisations).where(organisations.c.id == org.id).values(**values))


async def new_user(org: Org, name: str = "Staff") -> int:
    """A login for ``recorded_by``. Inserted directly: hashing a password costs a tenth
    of a second, and the ledger only needs the user to exist."""
    async with org.db.transaction() as conn:
        user_id = await conn.scalar(
            insert(users).values(username=f"{name.lower()}-{uuid.uuid4().hex[:8]}", email=None).returning(users.c.id)
        )
    assert user_id is not None
    return user_id


async def execute_and_roll_back(db: Database, *statements: tuple[Any, dict[str, Any]]) -> None:
    """Run raw statements in one transaction that is always rolled back, whatever happens.

    For testing the database's own guards without ever changing the shared database,
    even when a guard is missing and the statement succeeds.
    """
    async with db.engine.connect() as conn:
        try:
            for statement, params in statements:
                await conn.execute(text(statement) if isinstance(statement, str) else statement, params)
        finally:
            await conn.rollback()


def count_calls_to_the_thread(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Every call aiosqlite hands to its connection's thread from now on, by function."""
    calls: Counter[str] = Counter()
    original = aiosqlite.Connection._execute

    async def counted(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls[getattr(fn, "__name__", "call")] += 1
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return calls


@asynccontextmanager
async def own_postgres_database(  # type: ignore[no-untyped-def]
    tmp_path, *, pool_size: int, max_overflow: int = 0, timeout_seconds: float = 5.0
) -> AsyncIterator[tuple[Database, str]]:
    """A migrated PostgreSQL database of the test's own, whatever the test run's backend (for
    tests that cut its connections or read its statistics), and its address for asyncpg."""
    databases = EmptyDatabase("postgresql", tmp_path)
    url = await asyncio.to_thread(databases.create)  # it runs an event loop of its own
    await asyncio.to_thread(upgrade, url)
    database = create_database(url, pool_size=pool_size, max_overflow=max_overflow, timeout_seconds=timeout_seconds)
    try:
        yield database, url.replace("postgresql+asyncpg://", "postgresql://")
    finally:
        await database.dispose()
        await asyncio.to_thread(databases.drop_all)
