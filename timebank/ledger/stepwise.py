"""Posting step by step, on any database: the portable writer (SQLite, and reversals).

One database transaction, in this order:

1. claim the idempotency key by inserting the transaction row with
   ``ON CONFLICT DO NOTHING``; if the key is taken, answer with the original
   (same request) or refuse (different request) — nothing else is written;
2. lock the touched accounts in id order (``FOR UPDATE`` on PostgreSQL; on
   SQLite the whole writer is serialised by ``BEGIN IMMEDIATE``);
3. read the organisation's rules (after the locks, see below) and check every
   rule against the locked balances;
4. write all postings in one statement, then the new balances, versions and floors.

Anything refused raises, which rolls the whole transaction back.
``timebank_post`` (migrations, used by ``postgres_function.py``) does exactly
this inside PostgreSQL in one round trip; the two are tested against each other
by running every ledger test on both databases.
"""

import datetime as dt
import sqlite3
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ARRAY, BigInteger, any_, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.auth.sign_in_cache import SignInCheck, caller_parameter, sign_in_version_of_caller
from timebank.db.engine import Database
from timebank.db.hot_path import HotStatement, in_json_list, sqlite_write_in_one_call
from timebank.history.service import ChangeKind, record_change
from timebank.ledger import errors, refusals
from timebank.ledger.entries import Leg, PostedTransaction, PostingLine, PostingRequest
from timebank.ledger.reading import account_label, load_transaction, member_of_account
from timebank.models import (
    Account,
    AccountKind,
    Category,
    Member,
    Organisation,
    Posting,
    Transaction,
    TransactionKind,
)

accounts = Account.__table__
members = Member.__table__
transactions = Transaction.__table__
postings = Posting.__table__
organisations = Organisation.__table__
categories = Category.__table__


@dataclass(frozen=True)
class _OrgRules:
    timezone: str
    min_balance_minutes: int
    books_closed_through: dt.date | None

    def today(self) -> dt.date:
        return today_in(self.timezone)


def today_in(timezone: str) -> dt.date:
    return dt.datetime.now(ZoneInfo(timezone)).date()


async def post_stepwise(conn: AsyncConnection, entry: PostingRequest) -> PostedTransaction:
    """Post ``entry`` inside the caller's transaction on ``conn``."""
    if entry.reverses_id is None:
        posted = await _run_steps(conn, _posting_steps(entry, entry.legs, entry.allowed_kinds, entry.occurred_on))
        return posted if posted is not None else await _replay(conn, entry)
    # A retried reversal must get its original answer, not "already reversed".
    if await _key_is_taken(conn, entry):
        return await _replay(conn, entry)
    original = await _load_reversible(conn, entry.organisation_id, entry.reverses_id)
    posted = await _run_steps(
        conn,
        _posting_steps(
            entry,
            tuple(Leg(p.account_id, -p.minutes) for p in original.postings),
            {p.account_id: frozenset(AccountKind) for p in original.postings},
            today_in(await _timezone_of(conn, entry.organisation_id)),
            category=await _category_id_of(conn, entry.organisation_id, original.id),
            reverses_kind=original.kind,
        ),
    )
    if posted is None:
        return await _replay(conn, entry)
    # Reversals are written only here (never by timebank_post), so this is their one history
    # row. The reason is the reversal's own description, not copied: erasure removes it there.
    await record_change(
        conn,
        entry.organisation_id,
        ChangeKind.TRANSACTION_REVERSED,
        changed_by=entry.recorded_by,
        transaction_id=original.id,
        after={"reversal_id": posted.id},
    )
    return posted


async def post_new_in_one_call(db: Database, entry: PostingRequest) -> PostedTransaction | None:
    """SQLite: post ``entry`` (not a reversal) as one transaction in one call to the database's thread.

    The same steps as ``post_stepwise``, sent on the sqlite3 connection itself
    (``sqlite_write_in_one_call``). None, with nothing written, when the idempotency key
    is taken: the caller answers that retry with ``post_stepwise``, which replays it.
    """
    assert entry.reverses_id is None

    def post(conn: sqlite3.Connection) -> PostedTransaction | None:
        return _run_steps_now(conn, _posting_steps(entry, entry.legs, entry.allowed_kinds, entry.occurred_on))

    return await sqlite_write_in_one_call(db, post)


# --------------------------------------------------------------------------- the steps

# A posting is written by one generator of steps (``_posting_steps``), so that its rules
# and its order exist once, whichever way its statements travel: awaited one by one on a
# SQLAlchemy connection (``_run_steps``), or all on the sqlite3 connection's own thread in
# one call (``_run_steps_now``). Each step is a statement to send; what the statement
# returns is sent back into the generator, which returns the posted transaction, or None
# when the idempotency key was taken.


@dataclass(frozen=True, slots=True)
class _Rows:
    """Send ``statement`` with ``parameters``; its rows go back to the steps."""

    statement: HotStatement
    parameters: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class _Each:
    """Send ``statement`` once for each of ``rows``' parameters; no rows go back."""

    statement: HotStatement
    rows: Sequence[Mapping[str, Any]]


_Steps = Generator[_Rows | _Each, Sequence[Mapping[str, Any]], PostedTransaction | None]


async def _run_steps(conn: AsyncConnection, steps: _Steps) -> PostedTransaction | None:
    rows: Any = None  # a generator's first send
    try:
        while True:
            step = steps.send(rows)
            if isinstance(step, _Rows):
                rows = await step.statement.rows_in(conn, step.parameters)
            else:
                await step.statement.execute_many_in(conn, step.rows)
                rows = ()
    except StopIteration as done:
        return done.value


def _run_steps_now(conn: sqlite3.Connection, steps: _Steps) -> PostedTransaction | None:
    rows: Any = None  # a generator's first send
    try:
        while True:
            step = steps.send(rows)
            if isinstance(step, _Rows):
                rows = step.statement.sqlite.all_now(conn, step.parameters)
            else:
                step.statement.sqlite.many_now(conn, step.rows)
                rows = ()
    except StopIteration as done:
        return done.value


def _posting_steps(
    entry: PostingRequest,
    legs: Sequence[Leg],
    allowed_kinds: dict[int, frozenset[AccountKind]],
    occurred_on: dt.date | None,
    *,
    category: "int | _NamedCategory | None" = None,
    reverses_kind: TransactionKind | None = None,
) -> _Steps:
    """The statements of one posting, in order; ``category`` is a reversal's (by id), else the entry's name."""
    assert occurred_on is not None
    # The category by its name (looked up inside the insert), or by id for a reversal.
    if entry.category is not None:
        category = _NAMED_CATEGORY
    # Answer with the aware UTC time we store: SQLite's RETURNING hands it back naive,
    # which would differ from the same transaction read back or replayed.
    recorded_at = dt.datetime.now(dt.UTC)
    claimed = yield _claim_idempotency_key(entry, occurred_on, recorded_at, category)
    if not claimed:
        return None
    transaction_id, category_id = claimed[0]["id"], claimed[0]["category_id"]
    if entry.category is not None and category_id is None:
        raise refusals.unknown_category(entry.category)

    account_ids = [leg.account_id for leg in legs]
    locked = _locked(
        account_ids,
        (yield _Rows(_LOCK_ACCOUNTS, {"organisation_id": entry.organisation_id, "account_ids": sorted(account_ids)})),
    )
    # Read the rules only once the accounts are locked: a change of the minimum
    # balance committed before this point is seen here, and one committed later
    # had to wait for these rows (it re-floors them), so no posting slips between.
    rules = _rules(
        entry.sign_in,
        (yield _Rows(_RULES, {"organisation_id": entry.organisation_id} | caller_parameter(entry.sign_in))),
        entry.organisation_id,
    )
    if entry.kind is not TransactionKind.REVERSAL:
        _check_date(rules, occurred_on)
    lines = _apply_legs(entry, legs, allowed_kinds, locked, rules)
    yield from _write_postings(entry.organisation_id, transaction_id, occurred_on, lines, locked, rules)
    category_name = None  # the organisation's own spelling, whatever the caller typed
    if category_id is not None:
        named = yield _Rows(_CATEGORY_NAME, {"organisation_id": entry.organisation_id, "category_id": category_id})
        category_name = named[0]["name"] if named else None
    return PostedTransaction(
        id=transaction_id,
        organisation_id=entry.organisation_id,
        kind=entry.kind,
        occurred_on=occurred_on,
        recorded_at=recorded_at,
        recorded_by_user_id=entry.recorded_by,
        description=entry.description,
        category=category_name,
        idempotency_key=entry.idempotency_key,
        reverses_id=entry.reverses_id,
        postings=tuple(lines),
        reverses_kind=reverses_kind,
        labels={row["id"]: account_label(AccountKind(row["kind"]), row["display_name"]) for row in locked.values()},
    )


class _NamedCategory:
    """The transaction's category is the one the request names, found by the insert itself."""


_NAMED_CATEGORY = _NamedCategory()


async def _timezone_of(conn: AsyncConnection, organisation_id: int) -> str:
    timezone = await conn.scalar(select(organisations.c.timezone).where(organisations.c.id == organisation_id))
    if timezone is None:
        raise errors.OrganisationNotFound(f"no organisation {organisation_id}")
    return timezone


def _rules(sign_in: SignInCheck | None, rows: Sequence[Mapping[str, Any]], organisation_id: int) -> _OrgRules:
    """The organisation's rules; with ``sign_in``, the caller's remembered standing confirmed in the
    same statement (``SignInChanged`` rolls the transaction back: nothing is written)."""
    if not rows:
        raise errors.OrganisationNotFound(f"no organisation {organisation_id}")
    row = rows[0]
    if sign_in is not None:
        sign_in.confirm(row["caller_sign_in_version"])
    return _OrgRules(row["timezone"], row["min_balance_minutes"], row["books_closed_through"])


async def _load_reversible(conn: AsyncConnection, organisation_id: int, transaction_id: int) -> PostedTransaction:
    original = await load_transaction(conn, organisation_id, transaction_id)
    if original is None:
        raise errors.TransactionNotFound(f"no transaction {transaction_id} in this organisation")
    if original.kind is TransactionKind.REVERSAL:
        raise errors.CannotReverse(f"transaction {transaction_id} is itself a reversal; post the correct entry instead")
    already = await conn.scalar(
        select(transactions.c.id).where(
            transactions.c.organisation_id == organisation_id, transactions.c.reverses_id == transaction_id
        )
    )
    if already is not None:
        raise refusals.already_reversed(transaction_id, already)
    return original


async def _category_id_of(conn: AsyncConnection, organisation_id: int, transaction_id: int) -> int | None:
    return await conn.scalar(
        select(transactions.c.category_id).where(
            transactions.c.organisation_id == organisation_id, transactions.c.id == transaction_id
        )
    )


def _claim_statement(dialect_insert: Any, category_id: Any) -> Any:
    """The idempotency claim: the transaction row, unless its key is taken (then no row back)."""
    columns = (
        "organisation_id",
        "kind",
        "occurred_on",
        "recorded_at",
        "recorded_by_user_id",
        "description",
        "idempotency_key",
        "request_fingerprint",
        "reverses_id",
    )
    values = {name: bindparam(f"c_{name}", type_=transactions.c[name].type) for name in columns}
    return (
        dialect_insert(transactions)
        .values(**values, category_id=category_id)
        .on_conflict_do_nothing(index_elements=["organisation_id", "idempotency_key"])
        .returning(transactions.c.id, transactions.c.category_id)
    )


# The statements of every posting are built once, not per call: SQLAlchemy memoises a
# statement's cache key on the statement object, so a statement built afresh pays for
# constructing and hashing its whole expression tree on every execution.
_CATEGORY_BY_NAME = (
    select(categories.c.id)
    .where(
        categories.c.organisation_id == bindparam("c_organisation_id"),
        categories.c.name_key == bindparam("c_category_key"),
        categories.c.is_active.is_(True),
    )
    .scalar_subquery()
)
_CATEGORY_BY_ID = bindparam("c_category_id", type_=transactions.c.category_id.type)
_CLAIM_CATEGORY_ID = HotStatement(
    _claim_statement(sqlite.insert, _CATEGORY_BY_ID), postgres=_claim_statement(postgresql.insert, _CATEGORY_BY_ID)
)
_CLAIM_NAMED_CATEGORY = HotStatement(
    _claim_statement(sqlite.insert, _CATEGORY_BY_NAME),
    postgres=_claim_statement(postgresql.insert, _CATEGORY_BY_NAME),
)


def _locking(accounts_listed: Any) -> Any:
    """The touched accounts, locked in id order (``FOR UPDATE`` means nothing on SQLite, whose
    writer holds the whole file), with each member's name for the write's answer
    (PostedTransaction.labels): read here rather than in a statement of its own after the write."""
    return (
        select(
            accounts.c.id,
            accounts.c.kind,
            accounts.c.balance_minutes,
            accounts.c.version,
            accounts.c.is_active,
            members.c.display_name,
        )
        .select_from(accounts.outerjoin(members, member_of_account()))
        .where(accounts.c.organisation_id == bindparam("organisation_id"), accounts_listed)
        .order_by(accounts.c.id)
        .with_for_update(of=accounts)
    )


_LOCK_ACCOUNTS = HotStatement(
    _locking(in_json_list(accounts.c.id, "account_ids")),
    postgres=_locking(accounts.c.id == any_(bindparam("account_ids", type_=ARRAY(BigInteger)))),
)
_RULES = HotStatement(
    select(
        organisations.c.timezone,
        organisations.c.min_balance_minutes,
        organisations.c.books_closed_through,
        sign_in_version_of_caller().label("caller_sign_in_version"),
    ).where(organisations.c.id == bindparam("organisation_id"))
)
_CATEGORY_NAME = HotStatement(
    select(categories.c.name).where(
        categories.c.organisation_id == bindparam("organisation_id"), categories.c.id == bindparam("category_id")
    )
)
_INSERT_POSTINGS = HotStatement(
    insert(postings).values(
        {
            name: bindparam(name, type_=postings.c[name].type)
            for name in (
                "organisation_id",
                "transaction_id",
                "account_id",
                "minutes",
                "balance_after",
                "account_version",
                "occurred_on",
            )
        }
    )
)
_UPDATE_ACCOUNTS = HotStatement(
    update(accounts)
    .where(accounts.c.organisation_id == bindparam("b_organisation_id"), accounts.c.id == bindparam("b_id"))
    .values(
        balance_minutes=bindparam("b_balance"),
        version=bindparam("b_version"),
        min_balance_minutes=bindparam("b_floor"),
    )
)


def _claim_idempotency_key(
    entry: PostingRequest, occurred_on: dt.date, recorded_at: dt.datetime, category: "int | _NamedCategory | None"
) -> _Rows:
    """Insert the transaction row unless the key is taken: its id and category id, or no row when it is."""
    parameters = {
        "c_organisation_id": entry.organisation_id,
        "c_kind": entry.kind.value,
        "c_occurred_on": occurred_on,
        "c_recorded_at": recorded_at,
        "c_recorded_by_user_id": entry.recorded_by,
        "c_description": entry.description,
        "c_idempotency_key": entry.idempotency_key,
        "c_request_fingerprint": entry.fingerprint,
        "c_reverses_id": entry.reverses_id,
    }
    if isinstance(category, _NamedCategory):
        return _Rows(_CLAIM_NAMED_CATEGORY, parameters | {"c_category_key": entry.category_key})
    return _Rows(_CLAIM_CATEGORY_ID, parameters | {"c_category_id": category})


async def _key_is_taken(conn: AsyncConnection, entry: PostingRequest) -> bool:
    found = await conn.scalar(
        select(transactions.c.id).where(
            transactions.c.organisation_id == entry.organisation_id,
            transactions.c.idempotency_key == entry.idempotency_key,
        )
    )
    return found is not None


async def _replay(conn: AsyncConnection, entry: PostingRequest) -> PostedTransaction:
    row = (
        await conn.execute(
            select(transactions.c.id, transactions.c.request_fingerprint).where(
                transactions.c.organisation_id == entry.organisation_id,
                transactions.c.idempotency_key == entry.idempotency_key,
            )
        )
    ).one()
    if row.request_fingerprint != entry.fingerprint:
        raise refusals.idempotency_conflict(entry.idempotency_key, row.id)
    original = await load_transaction(conn, entry.organisation_id, row.id)
    assert original is not None
    return replace(original, created=False)


def _check_date(rules: _OrgRules, occurred_on: dt.date) -> None:
    today = rules.today()
    if occurred_on > today:
        raise refusals.future_date(occurred_on, today, rules.timezone)
    if rules.books_closed_through is not None and occurred_on <= rules.books_closed_through:
        raise refusals.period_closed(occurred_on, rules.books_closed_through)


def _locked(account_ids: list[int], rows: Sequence[Mapping[str, Any]]) -> dict[int, Mapping[str, Any]]:
    """The touched accounts, read and locked in id order (so two writers can never wait on each
    other in a cycle); every one of them must be there."""
    locked = {row["id"]: row for row in rows}
    missing = [account_id for account_id in account_ids if account_id not in locked]
    if missing:
        raise refusals.unknown_account(missing[0])
    return locked


def _floor(kind: AccountKind, rules: _OrgRules) -> int | None:
    """The lowest balance a debit may reach: the organisation's minimum, zero, or none."""
    if kind is AccountKind.MEMBER:
        return rules.min_balance_minutes
    if kind is AccountKind.POT:
        return 0
    return None


def _apply_legs(
    entry: PostingRequest,
    legs: Sequence[Leg],
    allowed_kinds: dict[int, frozenset[AccountKind]],
    locked: dict[int, Mapping[str, Any]],
    rules: _OrgRules,
) -> list[PostingLine]:
    lines = []
    for leg in legs:
        account = locked[leg.account_id]
        kind = AccountKind(account["kind"])
        if kind not in allowed_kinds[leg.account_id]:
            raise refusals.wrong_account_kind(leg.account_id, kind.value, entry.kind)
        if not account["is_active"] and not entry.allow_inactive:
            raise refusals.account_inactive(leg.account_id)
        balance_after = account["balance_minutes"] + leg.minutes
        floor = _floor(kind, rules)
        if leg.minutes < 0 and floor is not None and balance_after < floor:
            raise refusals.insufficient_balance(leg.account_id, account["balance_minutes"], floor, -leg.minutes)
        lines.append(PostingLine(leg.account_id, leg.minutes, balance_after, account["version"] + 1))
    return lines


def _write_postings(
    organisation_id: int,
    transaction_id: int,
    occurred_on: dt.date,
    lines: list[PostingLine],
    locked: dict[int, Mapping[str, Any]],
    rules: _OrgRules,
) -> Generator[_Each, Sequence[Mapping[str, Any]], None]:
    yield _Each(
        _INSERT_POSTINGS,
        [
            {
                "organisation_id": organisation_id,
                "transaction_id": transaction_id,
                "account_id": line.account_id,
                "minutes": line.minutes,
                "balance_after": line.balance_after,
                "account_version": line.account_version,
                "occurred_on": occurred_on,
            }
            for line in lines
        ],
    )
    yield _Each(
        _UPDATE_ACCOUNTS,
        [
            {
                "b_organisation_id": organisation_id,
                "b_id": line.account_id,
                "b_balance": line.balance_after,
                "b_version": line.account_version,
                "b_floor": _stored_floor(AccountKind(locked[line.account_id]["kind"]), line.balance_after, rules),
            }
            for line in lines
        ],
    )


def _stored_floor(kind: AccountKind, balance: int, rules: _OrgRules) -> int | None:
    """The floor the database's CHECK holds the account to after this posting.

    The organisation's floor, or the balance itself where that is already lower
    (after a tightened limit, or an opening balance): credits are always allowed.
    """
    floor = _floor(kind, rules)
    return None if floor is None else min(floor, balance)
