"""Reading the ledger: transactions, balances, balances as of a date, statements."""

import datetime as dt
from collections import defaultdict

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.db import Database
from timebank.ledger import errors
from timebank.ledger.entries import PostedTransaction, PostingLine, Statement, StatementEntry
from timebank.models import Account, AccountKind, Category, Member, Posting, Transaction, TransactionKind

accounts = Account.__table__
members = Member.__table__
transactions = Transaction.__table__
postings = Posting.__table__
categories = Category.__table__

ACCOUNT_LABELS = {AccountKind.AGENCY: "Agency account", AccountKind.POT: "Community pot"}


async def load_transaction(conn: AsyncConnection, organisation_id: int, transaction_id: int) -> PostedTransaction | None:
    """A transaction with its postings, or None if it is not in this organisation."""
    row = (
        await conn.execute(
            select(transactions, categories.c.name.label("category_name"))
            .select_from(transactions.outerjoin(categories, categories.c.id == transactions.c.category_id))
            .where(transactions.c.organisation_id == organisation_id, transactions.c.id == transaction_id)
        )
    ).first()
    if row is None:
        return None
    lines = (
        await conn.execute(
            select(postings.c.account_id, postings.c.minutes, postings.c.balance_after, postings.c.account_version)
            .where(postings.c.transaction_id == transaction_id)
            .order_by(postings.c.id)
        )
    ).all()
    return PostedTransaction(
        id=row.id,
        organisation_id=row.organisation_id,
        kind=TransactionKind(row.kind),
        occurred_on=row.occurred_on,
        recorded_at=_as_utc(row.recorded_at),
        recorded_by_user_id=row.recorded_by_user_id,
        description=row.description,
        category=row.category_name,
        idempotency_key=row.idempotency_key,
        reverses_id=row.reverses_id,
        postings=tuple(PostingLine(*line) for line in lines),
    )


async def get_transaction(db: Database, organisation_id: int, transaction_id: int) -> PostedTransaction:
    async with db.engine.connect() as conn:
        found = await load_transaction(conn, organisation_id, transaction_id)
    if found is None:
        raise errors.TransactionNotFound(f"no transaction {transaction_id} in this organisation")
    return found


async def current_balance(db: Database, organisation_id: int, account_id: int) -> int:
    """The stored balance: always equal to the sum of the account's postings."""
    async with db.engine.connect() as conn:
        balance = await conn.scalar(
            select(accounts.c.balance_minutes).where(
                accounts.c.organisation_id == organisation_id, accounts.c.id == account_id
            )
        )
    if balance is None:
        raise errors.AccountNotFound(f"no account {account_id} in this organisation")
    return balance


async def balance_as_of(db: Database, organisation_id: int, account_id: int, on: dt.date) -> int:
    """The balance counting every posting for help given on or before ``on`` (by service date)."""
    async with db.engine.connect() as conn:
        await _require_account(conn, organisation_id, account_id)
        return await _sum_before(conn, account_id, on + dt.timedelta(days=1))


async def statement(db: Database, organisation_id: int, account_id: int, start: dt.date, end: dt.date) -> Statement:
    """Every posting dated ``start``..``end`` (inclusive) in date order, with a running balance."""
    if start > end:
        raise errors.InvalidEntry(f"the period starts ({start}) after it ends ({end})")
    async with db.engine.connect() as conn:
        await _require_account(conn, organisation_id, account_id)
        opening = await _sum_before(conn, account_id, start)
        rows = (
            await conn.execute(
                select(
                    postings.c.transaction_id,
                    postings.c.minutes,
                    postings.c.occurred_on,
                    transactions.c.kind,
                    transactions.c.recorded_at,
                    transactions.c.description,
                    categories.c.name.label("category_name"),
                )
                .select_from(
                    postings.join(transactions, transactions.c.id == postings.c.transaction_id).outerjoin(
                        categories, categories.c.id == transactions.c.category_id
                    )
                )
                .where(postings.c.account_id == account_id, postings.c.occurred_on.between(start, end))
                .order_by(postings.c.occurred_on, postings.c.transaction_id)
            )
        ).all()
        counterparts = await _counterparts(conn, [row.transaction_id for row in rows], account_id)
    entries = []
    running = opening
    for row in rows:
        running += row.minutes
        entries.append(
            StatementEntry(
                transaction_id=row.transaction_id,
                kind=TransactionKind(row.kind),
                occurred_on=row.occurred_on,
                recorded_at=_as_utc(row.recorded_at),
                description=row.description,
                category=row.category_name,
                counterparts=tuple(counterparts[row.transaction_id]),
                minutes=row.minutes,
                running_balance=running,
            )
        )
    return Statement(account_id, start, end, opening, tuple(entries), running)


async def _counterparts(conn: AsyncConnection, transaction_ids: list[int], account_id: int) -> dict[int, list[str]]:
    names: dict[int, list[str]] = defaultdict(list)
    if not transaction_ids:
        return names
    rows = await conn.execute(
        select(postings.c.transaction_id, accounts.c.kind, members.c.display_name)
        .select_from(
            postings.join(accounts, accounts.c.id == postings.c.account_id).outerjoin(
                members, members.c.id == accounts.c.member_id
            )
        )
        .where(postings.c.transaction_id.in_(transaction_ids), postings.c.account_id != account_id)
        .order_by(postings.c.transaction_id, postings.c.id)
    )
    for row in rows:
        names[row.transaction_id].append(account_label(AccountKind(row.kind), row.display_name))
    return names


def account_label(kind: AccountKind, display_name: str | None) -> str:
    return display_name if kind is AccountKind.MEMBER and display_name else ACCOUNT_LABELS.get(kind, kind.value)


async def _require_account(conn: AsyncConnection, organisation_id: int, account_id: int) -> None:
    found = await conn.scalar(
        select(accounts.c.id).where(accounts.c.organisation_id == organisation_id, accounts.c.id == account_id)
    )
    if found is None:
        raise errors.AccountNotFound(f"no account {account_id} in this organisation")


async def _sum_before(conn: AsyncConnection, account_id: int, before: dt.date) -> int:
    total = await conn.scalar(
        select(func.coalesce(func.sum(postings.c.minutes), 0)).where(
            postings.c.account_id == account_id, postings.c.occurred_on < before
        )
    )
    return int(total)


def _as_utc(value: dt.datetime) -> dt.datetime:
    # SQLite hands back naive datetimes; every stored time is UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
