"""Reading the ledger: transactions, balances, balances as of a date, statements."""

import datetime as dt
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass

from sqlalchemy import Row, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.db import Database
from timebank.db.snapshot import read_snapshot
from timebank.ledger import errors
from timebank.ledger.entries import PostedTransaction, PostingLine, Statement, StatementEntry
from timebank.models import Account, AccountKind, Category, Member, Organisation, Posting, Transaction, TransactionKind

accounts = Account.__table__
members = Member.__table__
transactions = Transaction.__table__
postings = Posting.__table__
categories = Category.__table__
organisations = Organisation.__table__

ACCOUNT_LABELS = {AccountKind.AGENCY: "Agency account", AccountKind.POT: "Community pot"}


async def load_transaction(
    conn: AsyncConnection, organisation_id: int, transaction_id: int
) -> PostedTransaction | None:
    """A transaction with its postings, or None if it is not in this organisation."""
    row = (
        await conn.execute(
            _transaction_query().where(
                transactions.c.organisation_id == organisation_id, transactions.c.id == transaction_id
            )
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
    return _posted(row, [PostingLine(*line) for line in lines])


def _transaction_query():  # type: ignore[no-untyped-def]
    reversal = transactions.alias("reversal")
    reversed_by = select(reversal.c.id).where(reversal.c.reverses_id == transactions.c.id).scalar_subquery()
    return select(
        transactions, categories.c.name.label("category_name"), reversed_by.label("reversed_by_id")
    ).select_from(transactions.outerjoin(categories, categories.c.id == transactions.c.category_id))


def _posted(row: Row, lines: list[PostingLine]) -> PostedTransaction:
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
        postings=tuple(lines),
        reversed_by_id=row.reversed_by_id,
    )


async def get_transaction(db: Database, organisation_id: int, transaction_id: int) -> PostedTransaction:
    async with db.autocommit() as conn:
        found = await load_transaction(conn, organisation_id, transaction_id)
    if found is None:
        raise errors.TransactionNotFound(f"no transaction {transaction_id} in this organisation")
    return found


async def current_balance(db: Database, organisation_id: int, account_id: int) -> int:
    """The stored balance: always equal to the sum of the account's postings."""
    async with db.autocommit() as conn:
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
    async with db.autocommit() as conn:
        await _require_account(conn, organisation_id, account_id)
        return await _sum_before(conn, account_id, on + dt.timedelta(days=1))


async def statement(db: Database, organisation_id: int, account_id: int, start: dt.date, end: dt.date) -> Statement:
    """Every posting dated ``start``..``end`` (inclusive) in date order, with a running balance."""
    if start > end:
        raise errors.InvalidEntry(f"the period starts ({start}) after it ends ({end})")
    async with db.autocommit() as conn:
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


@dataclass(frozen=True, slots=True)
class AccountView:
    id: int
    kind: AccountKind
    member_id: int | None
    display_name: str
    balance_minutes: int
    # The lowest balance a debit may reach: the organisation's minimum for members,
    # zero for the pot, none for the agency account.
    min_balance_minutes: int | None
    is_active: bool


def _account_view_query():  # type: ignore[no-untyped-def]
    return select(
        accounts.c.id,
        accounts.c.kind,
        accounts.c.member_id,
        members.c.display_name,
        accounts.c.balance_minutes,
        organisations.c.min_balance_minutes,
        accounts.c.is_active,
    ).select_from(
        accounts.join(organisations, organisations.c.id == accounts.c.organisation_id).outerjoin(
            members, members.c.id == accounts.c.member_id
        )
    )


def _account_view(row: Row) -> AccountView:
    kind = AccountKind(row.kind)
    floor = {AccountKind.MEMBER: row.min_balance_minutes, AccountKind.POT: 0}.get(kind)
    return AccountView(
        row.id, kind, row.member_id, account_label(kind, row.display_name), row.balance_minutes, floor, row.is_active
    )


async def get_account(db: Database, organisation_id: int, account_id: int) -> AccountView:
    async with db.autocommit() as conn:
        row = (
            await conn.execute(
                _account_view_query().where(accounts.c.organisation_id == organisation_id, accounts.c.id == account_id)
            )
        ).first()
    if row is None:
        raise errors.AccountNotFound(f"no account {account_id} in this organisation")
    return _account_view(row)


async def list_accounts(
    db: Database, organisation_id: int, *, limit: int, offset: int
) -> tuple[list[AccountView], int]:
    """A page of accounts: the agency account and the pot first, then members by name."""
    async with db.autocommit() as conn:
        rows = (
            await conn.execute(
                _account_view_query()
                .where(accounts.c.organisation_id == organisation_id)
                .order_by((accounts.c.kind == AccountKind.MEMBER.value), members.c.display_name, accounts.c.id)
                .limit(limit)
                .offset(offset)
            )
        ).all()
        total = await conn.scalar(
            select(func.count()).select_from(accounts).where(accounts.c.organisation_id == organisation_id)
        )
    return [_account_view(row) for row in rows], int(total or 0)


@dataclass(frozen=True, slots=True)
class TransactionCursor:
    """Where a page of transactions (newest first) ended: the last one's date and id."""

    occurred_on: dt.date
    id: int


async def list_transactions(
    db: Database,
    organisation_id: int,
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    account_id: int | None = None,
    category: str | None = None,
    after: TransactionCursor | None = None,
    limit: int = 50,
) -> list[PostedTransaction]:
    """Transactions newest first (by service date, then id), with their postings."""
    conditions = [transactions.c.organisation_id == organisation_id]
    if start is not None:
        conditions.append(transactions.c.occurred_on >= start)
    if end is not None:
        conditions.append(transactions.c.occurred_on <= end)
    if category is not None:
        conditions.append(categories.c.name == category)
    if account_id is not None:
        conditions.append(
            transactions.c.id.in_(select(postings.c.transaction_id).where(postings.c.account_id == account_id))
        )
    if after is not None:
        conditions.append(
            or_(
                transactions.c.occurred_on < after.occurred_on,
                and_(transactions.c.occurred_on == after.occurred_on, transactions.c.id < after.id),
            )
        )
    async with db.autocommit() as conn:
        rows = (
            await conn.execute(
                _transaction_query()
                .where(*conditions)
                .order_by(transactions.c.occurred_on.desc(), transactions.c.id.desc())
                .limit(limit)
            )
        ).all()
        lines: dict[int, list[PostingLine]] = defaultdict(list)
        if rows:
            for line in await conn.execute(
                select(
                    postings.c.transaction_id,
                    postings.c.account_id,
                    postings.c.minutes,
                    postings.c.balance_after,
                    postings.c.account_version,
                )
                .where(postings.c.transaction_id.in_([row.id for row in rows]))
                .order_by(postings.c.id)
            ):
                lines[line.transaction_id].append(PostingLine(*line[1:]))
    return [_posted(row, lines[row.id]) for row in rows]


STATEMENT_CHUNK = 500


async def stream_statement(
    db: Database, organisation_id: int, account_id: int, start: dt.date, end: dt.date
) -> AsyncIterator[int | StatementEntry]:
    """A statement without holding it in memory: first the opening balance, then every entry.

    Entries come in date order with their running balance, read from one snapshot in
    chunks (a statement of years is as cheap in memory as one of a week).
    """
    if start > end:
        raise errors.InvalidEntry(f"the period starts ({start}) after it ends ({end})")
    async with read_snapshot(db) as conn:
        await _require_account(conn, organisation_id, account_id)
        running = await _sum_before(conn, account_id, start)
        yield running
        result = await conn.stream(
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
            .execution_options(yield_per=STATEMENT_CHUNK)
        )
        async for chunk in result.partitions(STATEMENT_CHUNK):
            counterparts = await _counterparts(conn, [row.transaction_id for row in chunk], account_id)
            for row in chunk:
                running += row.minutes
                yield StatementEntry(
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
