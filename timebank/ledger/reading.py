"""Reading the ledger: transactions, balances, balances as of a date, statements."""

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import BigInteger, Row, and_, any_, bindparam, func, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.auth.sign_in_cache import SignInCheck, caller_parameter, sign_in_version_of_caller
from timebank.db import Database, as_utc
from timebank.db.hot_path import HotStatement, in_json_list
from timebank.db.snapshot import read_snapshot
from timebank.ledger import errors
from timebank.ledger.entries import PostedTransaction, PostingLine, Statement, StatementCursor, StatementEntry
from timebank.ledger.visibility import legs_a_member_sees
from timebank.models import (
    Account,
    AccountKind,
    Category,
    Member,
    Organisation,
    Posting,
    Transaction,
    TransactionKind,
    category_key,
)

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
            .where(postings.c.organisation_id == organisation_id, postings.c.transaction_id == transaction_id)
            .order_by(postings.c.id)
        )
    ).all()
    return _posted(row, [PostingLine(*line) for line in lines])


@functools.cache
def _transaction_query():  # type: ignore[no-untyped-def]
    # Built once: a Select is immutable (``.where()`` makes a new one), and building the aliases
    # and subqueries on every read cost more CPU than the query itself on the member home page.
    reversal = transactions.alias("reversal")
    reversed_by = (
        select(reversal.c.id)
        .where(
            reversal.c.organisation_id == transactions.c.organisation_id, reversal.c.reverses_id == transactions.c.id
        )
        .scalar_subquery()
    )
    original = transactions.alias("original")
    reverses_kind = (
        select(original.c.kind)
        .where(
            original.c.organisation_id == transactions.c.organisation_id, original.c.id == transactions.c.reverses_id
        )
        .scalar_subquery()
    )
    return select(
        transactions,
        categories.c.name.label("category_name"),
        reversed_by.label("reversed_by_id"),
        reverses_kind.label("reverses_kind"),
    ).select_from(transactions.outerjoin(categories, _category_of_transaction()))


def _category_of_transaction():  # type: ignore[no-untyped-def]
    return and_(
        categories.c.organisation_id == transactions.c.organisation_id, categories.c.id == transactions.c.category_id
    )


def _posted(row: Row, lines: list[PostingLine]) -> PostedTransaction:
    return PostedTransaction(
        id=row.id,
        organisation_id=row.organisation_id,
        kind=TransactionKind(row.kind),
        occurred_on=row.occurred_on,
        recorded_at=as_utc(row.recorded_at),
        recorded_by_user_id=row.recorded_by_user_id,
        description=row.description,
        category=row.category_name,
        idempotency_key=row.idempotency_key,
        reverses_id=row.reverses_id,
        postings=tuple(lines),
        reversed_by_id=row.reversed_by_id,
        reverses_kind=TransactionKind(row.reverses_kind) if row.reverses_kind else None,
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
        return await _sum_of_postings(conn, organisation_id, account_id, postings.c.occurred_on <= on)


def _statement_query(in_period: Any, up_to_cursor: Any | None):  # type: ignore[no-untyped-def]
    """A statement's entries (postings of one account in a period, after a cursor), oldest first."""
    reversed_transaction = transactions.alias("reversed_transaction")
    return (
        select(
            postings.c.transaction_id,
            postings.c.minutes,
            postings.c.occurred_on,
            transactions.c.kind,
            reversed_transaction.c.kind.label("reverses_kind"),
            transactions.c.recorded_at,
            transactions.c.description,
            categories.c.name.label("category_name"),
        )
        .select_from(
            postings.join(
                transactions,
                and_(
                    transactions.c.organisation_id == postings.c.organisation_id,
                    transactions.c.id == postings.c.transaction_id,
                ),
            )
            .outerjoin(categories, _category_of_transaction())
            .outerjoin(
                reversed_transaction,
                and_(
                    reversed_transaction.c.organisation_id == transactions.c.organisation_id,
                    reversed_transaction.c.id == transactions.c.reverses_id,
                ),
            )
        )
        .where(in_period, *([~up_to_cursor] if up_to_cursor is not None else []))
        .order_by(postings.c.occurred_on, postings.c.transaction_id)
    )


def _in_period(organisation_id: int, account_id: int, start: dt.date, end: dt.date):  # type: ignore[no-untyped-def]
    return and_(
        postings.c.organisation_id == organisation_id,
        postings.c.account_id == account_id,
        postings.c.occurred_on.between(start, end),
    )


async def statement(
    db: Database,
    organisation_id: int,
    account_id: int,
    start: dt.date,
    end: dt.date,
    *,
    after: StatementCursor | None = None,
    limit: int | None = None,
) -> Statement:
    """Postings dated ``start``..``end`` (inclusive) in date order, with a running balance.

    Any period may be asked for. With ``limit``, one page of at most that many entries,
    starting after the cursor ``after``; each page's running balance continues from the
    page before, and the opening and closing balances are always the whole period's, so a
    statement read page by page is the same as one read at once. In a group activity the
    counterparts are only those a member may see (visibility.py): this is the member's own
    statement, whoever reads it.
    """
    if start > end:
        raise errors.InvalidEntry(f"the period starts ({start}) after it ends ({end})")
    in_period = _in_period(organisation_id, account_id, start, end)
    # Entries are ordered by (date, transaction): an account has one leg per transaction.
    up_to_cursor = (
        or_(
            postings.c.occurred_on < after.occurred_on,
            and_(postings.c.occurred_on == after.occurred_on, postings.c.transaction_id <= after.transaction_id),
        )
        if after is not None
        else None
    )
    async with db.autocommit() as conn:
        await _require_account(conn, organisation_id, account_id)
        opening = await _sum_before(conn, organisation_id, account_id, start)
        closing = await _sum_of_postings(conn, organisation_id, account_id, postings.c.occurred_on <= end)
        running = opening
        if up_to_cursor is not None:
            running += await _sum_of_postings(conn, organisation_id, account_id, in_period, up_to_cursor)
        query = _statement_query(in_period, up_to_cursor)
        if limit is not None:
            query = query.limit(limit + 1)
        rows = (await conn.execute(query)).all()
        more = limit is not None and len(rows) > limit
        rows = rows[:limit] if limit is not None else rows
        counterparts = await _counterparts(conn, organisation_id, rows, account_id)
    entries = []
    for row in rows:
        running += row.minutes
        entries.append(
            StatementEntry(
                transaction_id=row.transaction_id,
                kind=TransactionKind(row.kind),
                occurred_on=row.occurred_on,
                recorded_at=as_utc(row.recorded_at),
                description=row.description,
                category=row.category_name,
                counterparts=tuple(counterparts[row.transaction_id]),
                minutes=row.minutes,
                running_balance=running,
            )
        )
    next_page = StatementCursor(rows[-1].occurred_on, rows[-1].transaction_id) if more else None
    return Statement(account_id, start, end, opening, tuple(entries), closing, next_page)


async def _counterparts(
    conn: AsyncConnection, organisation_id: int, rows: Sequence[Row], account_id: int
) -> dict[int, list[str]]:
    """For each statement row's transaction, the names on the other side that a member may see."""
    names: dict[int, list[str]] = defaultdict(list)
    if not rows:
        return names
    legs: dict[int, list[Row]] = defaultdict(list)
    for leg in await conn.execute(
        select(
            postings.c.transaction_id,
            postings.c.account_id,
            postings.c.minutes,
            accounts.c.kind,
            members.c.display_name,
        )
        .select_from(
            postings.join(
                accounts,
                and_(accounts.c.organisation_id == postings.c.organisation_id, accounts.c.id == postings.c.account_id),
            ).outerjoin(members, member_of_account())
        )
        .where(
            postings.c.organisation_id == organisation_id,
            postings.c.transaction_id.in_([row.transaction_id for row in rows]),
        )
        .order_by(postings.c.transaction_id, postings.c.id)
    ):
        legs[leg.transaction_id].append(leg)
    for row in rows:
        these = legs[row.transaction_id]
        visible = legs_a_member_sees(
            TransactionKind(row.kind),
            TransactionKind(row.reverses_kind) if row.reverses_kind else None,
            [(leg.account_id, leg.minutes) for leg in these],
            account_id,
        )
        names[row.transaction_id] = [
            account_label(AccountKind(leg.kind), leg.display_name)
            for leg in these
            if leg.account_id != account_id and leg.account_id in visible
        ]
    return names


async def account_labels(db: Database, organisation_id: int, account_ids: Iterable[int]) -> dict[int, str]:
    """How each account is named to people: the member's name, "Agency account", "Community pot"."""
    wanted = sorted(set(account_ids))
    if not wanted:
        return {}
    rows = await _ACCOUNT_LABELS.all(db, {"organisation_id": organisation_id, "account_ids": wanted})
    return {row["id"]: account_label(AccountKind(row["kind"]), row["display_name"]) for row in rows}


def member_of_account():  # type: ignore[no-untyped-def]
    """The join of an account to its member (none for the shared accounts), inside one organisation."""
    return and_(members.c.organisation_id == accounts.c.organisation_id, members.c.id == accounts.c.member_id)


# Built once (every page or answer with transactions names their accounts): see
# ``stepwise.py`` on why; the list as an array (PostgreSQL) or JSON (SQLite), so that it is
# compiled once too.
_LABELLED_ACCOUNTS = select(accounts.c.id, accounts.c.kind, members.c.display_name).select_from(
    accounts.outerjoin(members, member_of_account())
)
_ACCOUNT_LABELS = HotStatement(
    _LABELLED_ACCOUNTS.where(
        accounts.c.organisation_id == bindparam("organisation_id"),
        in_json_list(accounts.c.id, "account_ids"),
    ),
    postgres=_LABELLED_ACCOUNTS.where(
        accounts.c.organisation_id == bindparam("organisation_id"),
        accounts.c.id == any_(bindparam("account_ids", type_=ARRAY(BigInteger))),
    ),
)


def account_label(kind: AccountKind, display_name: str | None) -> str:
    return display_name if kind is AccountKind.MEMBER and display_name else ACCOUNT_LABELS.get(kind, kind.value)


async def _require_account(conn: AsyncConnection, organisation_id: int, account_id: int) -> None:
    found = await conn.scalar(
        select(accounts.c.id).where(accounts.c.organisation_id == organisation_id, accounts.c.id == account_id)
    )
    if found is None:
        raise errors.AccountNotFound(f"no account {account_id} in this organisation")


async def _sum_before(conn: AsyncConnection, organisation_id: int, account_id: int, before: dt.date) -> int:
    return await _sum_of_postings(conn, organisation_id, account_id, postings.c.occurred_on < before)


async def _sum_of_postings(conn: AsyncConnection, organisation_id: int, account_id: int, *conditions: Any) -> int:
    total = await conn.scalar(
        select(func.coalesce(func.sum(postings.c.minutes), 0)).where(
            postings.c.organisation_id == organisation_id, postings.c.account_id == account_id, *conditions
        )
    )
    return int(total)


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
            members, member_of_account()
        )
    )


def _account_view(row: Mapping[str, Any]) -> AccountView:
    kind = AccountKind(row["kind"])
    floor = {AccountKind.MEMBER: row["min_balance_minutes"], AccountKind.POT: 0}.get(kind)
    label = account_label(kind, row["display_name"])
    return AccountView(row["id"], kind, row["member_id"], label, row["balance_minutes"], floor, row["is_active"])


# Every balance read and every member home asks for one account: built once, and sent by
# the driver itself (db/hot_path.py).
_ACCOUNT_BY_ID = HotStatement(
    _account_view_query()
    .add_columns(sign_in_version_of_caller().label("caller_sign_in_version"))
    .where(accounts.c.organisation_id == bindparam("organisation_id"), accounts.c.id == bindparam("account_id"))
)


async def get_account(
    db: Database, organisation_id: int, account_id: int, *, sign_in: SignInCheck | None = None
) -> AccountView:
    """The account and its balance. With ``sign_in``, the caller's standing is confirmed by the
    same statement: ``SignInChanged`` if it moved (auth/sign_in_cache.py)."""
    row = await _ACCOUNT_BY_ID.first(
        db,
        {"organisation_id": organisation_id, "account_id": account_id} | caller_parameter(sign_in),
    )
    if row is None:
        raise errors.AccountNotFound(f"no account {account_id} in this organisation")
    if sign_in is not None:
        sign_in.confirm(row["caller_sign_in_version"])
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
    return [_account_view(row._mapping) for row in rows], int(total or 0)


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
    query = _transaction_query()
    # One account's: walked from its postings, newest first (ix_postings_account_id_occurred_on;
    # a posting carries its transaction's date, and an account is in a transaction at most
    # once), so a busy account (the centre's) costs a few index steps, not a sort of everything
    # it ever took part in.
    date, number = transactions.c.occurred_on, transactions.c.id
    if account_id is not None:
        query = query.join(
            postings,
            and_(postings.c.organisation_id == transactions.c.organisation_id, postings.c.transaction_id == number),
        ).where(postings.c.account_id == account_id)
        date, number = postings.c.occurred_on, postings.c.transaction_id
    conditions = [transactions.c.organisation_id == organisation_id]
    if start is not None:
        conditions.append(date >= start)
    if end is not None:
        conditions.append(date <= end)
    if category is not None:
        conditions.append(categories.c.name_key == category_key(category))  # as posting matches it
    if after is not None:
        conditions.append(or_(date < after.occurred_on, and_(date == after.occurred_on, number < after.id)))
    async with db.autocommit() as conn:
        rows = (await conn.execute(query.where(*conditions).order_by(date.desc(), number.desc()).limit(limit))).all()
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
                .where(
                    postings.c.organisation_id == organisation_id,
                    postings.c.transaction_id.in_([row.id for row in rows]),
                )
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
        running = await _sum_before(conn, organisation_id, account_id, start)
        yield running
        result = await conn.stream(
            _statement_query(_in_period(organisation_id, account_id, start, end), None).execution_options(
                yield_per=STATEMENT_CHUNK
            )
        )
        async for chunk in result.partitions(STATEMENT_CHUNK):
            counterparts = await _counterparts(conn, organisation_id, chunk, account_id)
            for row in chunk:
                running += row.minutes
                yield StatementEntry(
                    transaction_id=row.transaction_id,
                    kind=TransactionKind(row.kind),
                    occurred_on=row.occurred_on,
                    recorded_at=as_utc(row.recorded_at),
                    description=row.description,
                    category=row.category_name,
                    counterparts=tuple(counterparts[row.transaction_id]),
                    minutes=row.minutes,
                    running_balance=running,
                )
