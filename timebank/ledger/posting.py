"""Posting to the ledger: every write of hours goes through ``_post``.

One database transaction per ledger transaction, in this order:

1. read the organisation's rules (time zone, minimum balance, closed period) and
   the category;
2. claim the idempotency key by inserting the transaction row with
   ``ON CONFLICT DO NOTHING``; if the key is taken, answer with the original
   (same request) or refuse (different request) — nothing else is written;
3. lock the touched accounts in id order (``FOR UPDATE`` on PostgreSQL; on
   SQLite the whole writer is serialised by ``BEGIN IMMEDIATE``);
4. check every rule against the locked balances, then write all postings in
   one statement and the new balances, versions and floors.

Anything refused rolls the whole transaction back, so nothing is half-written.
"""

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.db import Database
from timebank.db.retry import run_in_transaction
from timebank.ledger import errors
from timebank.ledger.amounts import minutes_to_hours
from timebank.ledger.entries import Leg, PostedTransaction, PostingLine
from timebank.ledger.reading import load_transaction
from timebank.models import Account, AccountKind, Category, Organisation, Posting, Transaction, TransactionKind

accounts = Account.__table__
transactions = Transaction.__table__
postings = Posting.__table__
organisations = Organisation.__table__
categories = Category.__table__

# No single leg may move more than 10,000 hours; keeps every sum far from overflow.
MAX_LEG_MINUTES = 10_000 * 60
MAX_LEGS = 200
MAX_DESCRIPTION = 500
MAX_KEY_LENGTH = 128

# Which kinds of account each kind of transaction may touch.
_PEOPLE_AND_AGENCY = frozenset({AccountKind.MEMBER, AccountKind.AGENCY})
_MEMBERS = frozenset({AccountKind.MEMBER})
_POT = frozenset({AccountKind.POT})
_AGENCY = frozenset({AccountKind.AGENCY})


@dataclass(frozen=True)
class _Entry:
    """A validated request to post, before it meets the database."""

    organisation_id: int
    kind: TransactionKind
    legs: tuple[Leg, ...]
    allowed_kinds: dict[int, frozenset[AccountKind]]
    occurred_on: dt.date | None  # None: today in the organisation's time zone (reversals)
    description: str
    category: str | None
    recorded_by: int | None
    idempotency_key: str
    fingerprint: str
    reverses_id: int | None = None
    # Reversals may touch deactivated accounts: a mistake must stay correctable.
    allow_inactive: bool = False


@dataclass(frozen=True)
class _OrgRules:
    timezone: str
    min_balance_minutes: int
    books_closed_through: dt.date | None

    def today(self) -> dt.date:
        return self.today_in(self.timezone)

    @staticmethod
    def today_in(timezone: str) -> dt.date:
        return dt.datetime.now(ZoneInfo(timezone)).date()


# --------------------------------------------------------------------------- public API


async def post_exchange(
    db: Database,
    organisation_id: int,
    *,
    giver_account_id: int,
    receiver_account_id: int,
    minutes: int,
    occurred_on: dt.date,
    description: str,
    category: str | None = None,
    recorded_by: int | None,
    idempotency_key: str,
) -> PostedTransaction:
    """Record that the giver gave ``minutes`` of help to the receiver.

    The giver's account is credited and the receiver's debited by the same amount.
    Either side may be the organisation's agency account (service hours).
    """
    _check_amount(minutes, "minutes")
    if giver_account_id == receiver_account_id:
        raise errors.InvalidEntry("the giver and the receiver must be different accounts")
    legs = (Leg(giver_account_id, minutes), Leg(receiver_account_id, -minutes))
    return await _post(
        db,
        _entry(
            organisation_id,
            TransactionKind.EXCHANGE,
            legs,
            {giver_account_id: _PEOPLE_AND_AGENCY, receiver_account_id: _PEOPLE_AND_AGENCY},
            occurred_on=occurred_on,
            description=description,
            category=category,
            recorded_by=recorded_by,
            idempotency_key=idempotency_key,
        ),
    )


async def post_group_activity(
    db: Database,
    organisation_id: int,
    *,
    givers: Sequence[tuple[int, int]],
    receivers: Sequence[tuple[int, int]],
    occurred_on: dt.date,
    description: str,
    category: str | None = None,
    recorded_by: int | None,
    idempotency_key: str,
) -> PostedTransaction:
    """One activity with many legs: ``givers`` and ``receivers`` are (account id, minutes).

    For example a volunteer credited for running a session and each attendee debited.
    Both sides must total the same number of minutes.
    """
    if not givers or not receivers:
        raise errors.InvalidEntry("a group activity needs at least one giver and one receiver")
    for account_id, minutes in (*givers, *receivers):
        _check_amount(minutes, f"minutes for account {account_id}")
    given = sum(m for _, m in givers)
    received = sum(m for _, m in receivers)
    if given != received:
        raise errors.InvalidEntry(
            f"the givers total {minutes_to_hours(given)} hours but the receivers total "
            f"{minutes_to_hours(received)} hours; both sides must total the same",
            givers_minutes=given,
            receivers_minutes=received,
        )
    legs = tuple(Leg(a, m) for a, m in givers) + tuple(Leg(a, -m) for a, m in receivers)
    return await _post(
        db,
        _entry(
            organisation_id,
            TransactionKind.GROUP,
            legs,
            {leg.account_id: _PEOPLE_AND_AGENCY for leg in legs},
            occurred_on=occurred_on,
            description=description,
            category=category,
            recorded_by=recorded_by,
            idempotency_key=idempotency_key,
        ),
    )


async def donate_to_pot(
    db: Database,
    organisation_id: int,
    *,
    member_account_id: int,
    minutes: int,
    occurred_on: dt.date,
    description: str,
    recorded_by: int | None,
    idempotency_key: str,
) -> PostedTransaction:
    """A member gives hours from their account to the community pot."""
    _check_amount(minutes, "minutes")
    pot_id = await shared_account_id(db, organisation_id, AccountKind.POT)
    legs = (Leg(member_account_id, -minutes), Leg(pot_id, minutes))
    return await _post(
        db,
        _entry(
            organisation_id,
            TransactionKind.DONATION,
            legs,
            {member_account_id: _MEMBERS, pot_id: _POT},
            occurred_on=occurred_on,
            description=description,
            category=None,
            recorded_by=recorded_by,
            idempotency_key=idempotency_key,
        ),
    )


async def grant_from_pot(
    db: Database,
    organisation_id: int,
    *,
    member_account_id: int,
    minutes: int,
    occurred_on: dt.date,
    description: str,
    recorded_by: int | None,
    idempotency_key: str,
) -> PostedTransaction:
    """The community pot grants donated hours to a member. The pot never goes below zero."""
    _check_amount(minutes, "minutes")
    pot_id = await shared_account_id(db, organisation_id, AccountKind.POT)
    legs = (Leg(pot_id, -minutes), Leg(member_account_id, minutes))
    return await _post(
        db,
        _entry(
            organisation_id,
            TransactionKind.GRANT,
            legs,
            {member_account_id: _MEMBERS, pot_id: _POT},
            occurred_on=occurred_on,
            description=description,
            category=None,
            recorded_by=recorded_by,
            idempotency_key=idempotency_key,
        ),
    )


async def post_opening_balance(
    db: Database | AsyncConnection,
    organisation_id: int,
    *,
    member_account_id: int,
    minutes: int,
    occurred_on: dt.date,
    description: str = "Opening balance",
    recorded_by: int | None,
    idempotency_key: str,
) -> PostedTransaction:
    """Carry over a balance from a paper or spreadsheet ledger (``minutes`` may be negative).

    The agency account takes the other side, so the organisation still sums to zero.
    A negative opening balance is still held to the organisation's minimum balance.
    Pass a connection instead of the database to post inside a transaction you own
    (a bulk import that must land whole or not at all).
    """
    if minutes == 0 or isinstance(minutes, bool) or not isinstance(minutes, int):
        raise errors.InvalidEntry("an opening balance must be a non-zero whole number of minutes")
    _check_amount(abs(minutes), "minutes")
    agency_id = await shared_account_id(db, organisation_id, AccountKind.AGENCY)
    legs = (Leg(member_account_id, minutes), Leg(agency_id, -minutes))
    return await _post(
        db,
        _entry(
            organisation_id,
            TransactionKind.OPENING_BALANCE,
            legs,
            {member_account_id: _MEMBERS, agency_id: _AGENCY},
            occurred_on=occurred_on,
            description=description,
            category=None,
            recorded_by=recorded_by,
            idempotency_key=idempotency_key,
        ),
    )


async def reverse_transaction(
    db: Database,
    organisation_id: int,
    transaction_id: int,
    *,
    reason: str,
    recorded_by: int | None,
    idempotency_key: str,
) -> PostedTransaction:
    """Cancel a transaction with a new one that posts every leg back. At most once.

    The reversal is dated today (the organisation's local date), so closed periods
    stay as reported; it keeps the original's category so reports net out. It is
    held to the same balance limits as any posting.
    """
    entry = _entry(
        organisation_id,
        TransactionKind.REVERSAL,
        (),
        {},
        occurred_on=None,
        description=reason,
        category=None,
        recorded_by=recorded_by,
        idempotency_key=idempotency_key,
        reverses_id=transaction_id,
    )
    return await _post(db, entry)


async def shared_account_id(db: Database | AsyncConnection, organisation_id: int, kind: AccountKind) -> int:
    """The id of the organisation's agency account or community pot."""
    query = select(accounts.c.id).where(accounts.c.organisation_id == organisation_id, accounts.c.kind == kind.value)
    if isinstance(db, AsyncConnection):
        account_id = await db.scalar(query)
    else:
        async with db.engine.connect() as conn:
            account_id = await conn.scalar(query)
    if account_id is None:
        raise errors.OrganisationNotFound(f"organisation {organisation_id} has no {kind.value} account")
    return account_id


# --------------------------------------------------------------------------- validation


def _check_amount(minutes: object, name: str) -> None:
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise errors.InvalidEntry(f"{name} must be a whole number of minutes")
    if minutes <= 0:
        raise errors.InvalidEntry(f"{name} must be more than zero")
    if minutes > MAX_LEG_MINUTES:
        raise errors.InvalidEntry(
            f"{name}: {minutes_to_hours(minutes)} hours is more than the "
            f"{MAX_LEG_MINUTES // 60:,} hours one entry may move"
        )


def check_idempotency_key(key: str) -> str:
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise errors.InvalidEntry(f"the idempotency key must be 1 to {MAX_KEY_LENGTH} characters")
    if not all(" " <= ch <= "~" for ch in key):
        raise errors.InvalidEntry("the idempotency key may contain only printable ASCII characters")
    return key


def _entry(
    organisation_id: int,
    kind: TransactionKind,
    legs: tuple[Leg, ...],
    allowed_kinds: dict[int, frozenset[AccountKind]],
    *,
    occurred_on: dt.date | None,
    description: str,
    category: str | None,
    recorded_by: int | None,
    idempotency_key: str,
    reverses_id: int | None = None,
) -> _Entry:
    check_idempotency_key(idempotency_key)
    description = (description or "").strip()
    if not description:
        raise errors.InvalidEntry("a description is required: say what the help was")
    if len(description) > MAX_DESCRIPTION:
        raise errors.InvalidEntry(f"the description must be at most {MAX_DESCRIPTION} characters")
    if category is not None:
        category = category.strip() or None
    if kind is not TransactionKind.REVERSAL:
        if not isinstance(occurred_on, dt.date) or isinstance(occurred_on, dt.datetime):
            raise errors.InvalidEntry("occurred_on must be a date (YYYY-MM-DD)")
        if len(legs) > MAX_LEGS:
            raise errors.InvalidEntry(f"a transaction may have at most {MAX_LEGS} legs")
        if len({leg.account_id for leg in legs}) != len(legs):
            raise errors.InvalidEntry("an account may appear only once in a transaction")
        if sum(leg.minutes for leg in legs) != 0:  # guaranteed by the callers; kept as a tripwire
            raise errors.InvalidEntry("the legs of a transaction must sum to zero")
    fingerprint = _fingerprint(
        kind=kind.value,
        legs=sorted((leg.account_id, leg.minutes) for leg in legs),
        occurred_on=occurred_on.isoformat() if occurred_on else None,
        description=description,
        category=category,
        recorded_by=recorded_by,
        reverses_id=reverses_id,
    )
    return _Entry(
        organisation_id=organisation_id,
        kind=kind,
        legs=legs,
        allowed_kinds=allowed_kinds,
        occurred_on=occurred_on,
        description=description,
        category=category,
        recorded_by=recorded_by,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        reverses_id=reverses_id,
        allow_inactive=kind is TransactionKind.REVERSAL,
    )


def _fingerprint(**request: Any) -> str:
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


# --------------------------------------------------------------------------- the write


async def _post(db: Database | AsyncConnection, entry: _Entry) -> PostedTransaction:
    if isinstance(db, AsyncConnection):  # inside the caller's transaction: no retries here
        return await _post_once(db, entry)
    try:
        return await run_in_transaction(db, lambda conn: _post_once(conn, entry))
    except IntegrityError as exc:
        if not await _organisation_exists(db, entry.organisation_id):
            raise errors.OrganisationNotFound(f"no organisation {entry.organisation_id}") from None
        if entry.reverses_id is None or not _names_constraint(exc, "reverses_id"):
            raise
    # A concurrent reversal of the same transaction committed first (PostgreSQL lets
    # both reach the insert). Run again: that finds the reversal, or our own key if
    # the winner was a retry of this very request.
    return await run_in_transaction(db, lambda conn: _post_once(conn, entry))


async def _organisation_exists(db: Database, organisation_id: int) -> bool:
    async with db.engine.connect() as conn:
        found = await conn.scalar(select(organisations.c.id).where(organisations.c.id == organisation_id))
    return found is not None


async def _post_once(conn: AsyncConnection, entry: _Entry) -> PostedTransaction:
    legs = entry.legs
    allowed_kinds = entry.allowed_kinds
    occurred_on = entry.occurred_on
    category: Any = _category_lookup(entry)
    if entry.reverses_id is not None:
        # A retried reversal must get its original answer, not "already reversed".
        if await _key_is_taken(conn, entry):
            return await _replay(conn, entry)
        original = await _load_reversible(conn, entry.organisation_id, entry.reverses_id)
        legs = tuple(Leg(p.account_id, -p.minutes) for p in original.postings)
        allowed_kinds = {leg.account_id: frozenset(AccountKind) for leg in legs}
        category = await _category_id_of(conn, original.id)
        occurred_on = _OrgRules.today_in(await _timezone_of(conn, entry.organisation_id))
    assert occurred_on is not None

    claimed = await _claim_idempotency_key(conn, entry, occurred_on, category)
    if claimed is None:
        return await _replay(conn, entry)
    transaction_id, recorded_at, category_id = claimed
    if entry.category is not None and category_id is None:
        raise errors.UnknownCategory(
            f"there is no category {entry.category!r} in this organisation; "
            "a coordinator can add it in the organisation's settings"
        )

    locked = await _lock_accounts(conn, entry.organisation_id, [leg.account_id for leg in legs])
    # Read the rules only once the accounts are locked: a change of the minimum
    # balance committed before this point is seen here, and one committed later
    # had to wait for these rows (it re-floors them), so no posting slips between.
    rules = await _load_rules(conn, entry.organisation_id)
    if entry.kind is not TransactionKind.REVERSAL:
        _check_date(rules, occurred_on)
    lines = _apply_legs(entry, legs, allowed_kinds, locked, rules)
    await _write_postings(conn, entry.organisation_id, transaction_id, occurred_on, lines, locked, rules)
    return PostedTransaction(
        id=transaction_id,
        organisation_id=entry.organisation_id,
        kind=entry.kind,
        occurred_on=occurred_on,
        recorded_at=recorded_at,
        recorded_by_user_id=entry.recorded_by,
        description=entry.description,
        category=await _category_name(conn, category_id) if entry.reverses_id else entry.category,
        idempotency_key=entry.idempotency_key,
        reverses_id=entry.reverses_id,
        postings=tuple(lines),
    )


def _category_lookup(entry: _Entry) -> Any:
    """The category's id as a subquery of the insert, so naming it costs no round trip."""
    if entry.category is None:
        return None
    return (
        select(categories.c.id)
        .where(
            categories.c.organisation_id == entry.organisation_id,
            categories.c.name == entry.category,
            categories.c.is_active.is_(True),
        )
        .scalar_subquery()
    )


async def _timezone_of(conn: AsyncConnection, organisation_id: int) -> str:
    timezone = await conn.scalar(select(organisations.c.timezone).where(organisations.c.id == organisation_id))
    if timezone is None:
        raise errors.OrganisationNotFound(f"no organisation {organisation_id}")
    return timezone


async def _load_rules(conn: AsyncConnection, organisation_id: int) -> _OrgRules:
    row = (
        await conn.execute(
            select(
                organisations.c.timezone,
                organisations.c.min_balance_minutes,
                organisations.c.books_closed_through,
            ).where(organisations.c.id == organisation_id)
        )
    ).first()
    if row is None:
        raise errors.OrganisationNotFound(f"no organisation {organisation_id}")
    return _OrgRules(row[0], row[1], row[2])


async def _load_reversible(conn: AsyncConnection, organisation_id: int, transaction_id: int) -> PostedTransaction:
    original = await load_transaction(conn, organisation_id, transaction_id)
    if original is None:
        raise errors.TransactionNotFound(f"no transaction {transaction_id} in this organisation")
    if original.kind is TransactionKind.REVERSAL:
        raise errors.CannotReverse(f"transaction {transaction_id} is itself a reversal; post the correct entry instead")
    already = await conn.scalar(select(transactions.c.id).where(transactions.c.reverses_id == transaction_id))
    if already is not None:
        raise _already_reversed(transaction_id, already)
    return original


def _already_reversed(transaction_id: int, reversal_id: int | None = None) -> errors.AlreadyReversed:
    by = f" by transaction {reversal_id}" if reversal_id else ""
    return errors.AlreadyReversed(
        f"transaction {transaction_id} has already been reversed{by}; a transaction is reversed at most once",
        reversal_id=reversal_id,
    )


async def _category_id_of(conn: AsyncConnection, transaction_id: int) -> int | None:
    return await conn.scalar(select(transactions.c.category_id).where(transactions.c.id == transaction_id))


async def _category_name(conn: AsyncConnection, category_id: int | None) -> str | None:
    if category_id is None:
        return None
    return await conn.scalar(select(categories.c.name).where(categories.c.id == category_id))


async def _claim_idempotency_key(
    conn: AsyncConnection, entry: _Entry, occurred_on: dt.date, category: Any
) -> tuple[int, dt.datetime, int | None] | None:
    """Insert the transaction row unless the key is taken; None when it is.

    Returns the new transaction's id, its recorded time and its category id.
    """
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    # Answer with the aware UTC time we store: SQLite's RETURNING hands it back naive,
    # which would differ from the same transaction read back or replayed.
    recorded_at = dt.datetime.now(dt.UTC)
    statement = (
        dialect_insert(transactions)
        .values(
            organisation_id=entry.organisation_id,
            kind=entry.kind.value,
            occurred_on=occurred_on,
            recorded_at=recorded_at,
            recorded_by_user_id=entry.recorded_by,
            description=entry.description,
            category_id=category,
            idempotency_key=entry.idempotency_key,
            request_fingerprint=entry.fingerprint,
            reverses_id=entry.reverses_id,
        )
        .on_conflict_do_nothing(index_elements=["organisation_id", "idempotency_key"])
        .returning(transactions.c.id, transactions.c.category_id)
    )
    row = (await conn.execute(statement)).first()
    return (row[0], recorded_at, row[1]) if row is not None else None


async def _key_is_taken(conn: AsyncConnection, entry: _Entry) -> bool:
    found = await conn.scalar(
        select(transactions.c.id).where(
            transactions.c.organisation_id == entry.organisation_id,
            transactions.c.idempotency_key == entry.idempotency_key,
        )
    )
    return found is not None


async def _replay(conn: AsyncConnection, entry: _Entry) -> PostedTransaction:
    row = (
        await conn.execute(
            select(transactions.c.id, transactions.c.request_fingerprint).where(
                transactions.c.organisation_id == entry.organisation_id,
                transactions.c.idempotency_key == entry.idempotency_key,
            )
        )
    ).one()
    if row.request_fingerprint != entry.fingerprint:
        raise errors.IdempotencyConflict(
            f"the idempotency key {entry.idempotency_key!r} was already used for a different request "
            f"(transaction {row.id}); use a new key for a new entry",
            transaction_id=row.id,
        )
    original = await load_transaction(conn, entry.organisation_id, row.id)
    assert original is not None
    return _as_replay(original)


def _as_replay(original: PostedTransaction) -> PostedTransaction:
    return replace(original, created=False)


def _check_date(rules: _OrgRules, occurred_on: dt.date) -> None:
    today = rules.today()
    if occurred_on > today:
        raise errors.FutureDate(
            f"occurred_on {occurred_on.isoformat()} is in the future; today is {today.isoformat()} in {rules.timezone}"
        )
    if rules.books_closed_through is not None and occurred_on <= rules.books_closed_through:
        raise errors.PeriodClosed(
            f"the books are closed up to {rules.books_closed_through.isoformat()}; "
            f"an entry dated {occurred_on.isoformat()} cannot be added. Date it after that, "
            "or ask a coordinator",
            books_closed_through=rules.books_closed_through.isoformat(),
        )


async def _lock_accounts(conn: AsyncConnection, organisation_id: int, account_ids: list[int]) -> dict[int, Row]:
    """Lock the rows in id order, so two writers can never wait on each other in a cycle."""
    rows = (
        await conn.execute(
            select(
                accounts.c.id,
                accounts.c.kind,
                accounts.c.balance_minutes,
                accounts.c.version,
                accounts.c.is_active,
            )
            .where(accounts.c.organisation_id == organisation_id, accounts.c.id.in_(sorted(account_ids)))
            .order_by(accounts.c.id)
            .with_for_update()
        )
    ).all()
    locked = {row.id: row for row in rows}
    missing = [account_id for account_id in account_ids if account_id not in locked]
    if missing:
        raise errors.UnknownAccount(f"no account {missing[0]} in this organisation", account_id=missing[0])
    return locked


def _floor(kind: AccountKind, rules: _OrgRules) -> int | None:
    """The lowest balance a debit may reach: the organisation's minimum, zero, or none."""
    if kind is AccountKind.MEMBER:
        return rules.min_balance_minutes
    if kind is AccountKind.POT:
        return 0
    return None


def _apply_legs(
    entry: _Entry,
    legs: Sequence[Leg],
    allowed_kinds: dict[int, frozenset[AccountKind]],
    locked: dict[int, Row],
    rules: _OrgRules,
) -> list[PostingLine]:
    lines = []
    for leg in legs:
        account = locked[leg.account_id]
        kind = AccountKind(account.kind)
        if kind not in allowed_kinds[leg.account_id]:
            raise errors.InvalidEntry(
                f"account {leg.account_id} is a {kind.value} account, which a "
                f"{entry.kind.value.replace('_', ' ')} cannot use"
            )
        if not account.is_active and not entry.allow_inactive:
            raise errors.AccountInactive(
                f"account {leg.account_id} belongs to a deactivated member; reactivate them first",
                account_id=leg.account_id,
            )
        balance_after = account.balance_minutes + leg.minutes
        floor = _floor(kind, rules)
        if leg.minutes < 0 and floor is not None and balance_after < floor:
            raise errors.InsufficientBalance(
                f"account {leg.account_id} has a balance of {minutes_to_hours(account.balance_minutes)} hours; "
                f"taking {minutes_to_hours(-leg.minutes)} hours would leave "
                f"{minutes_to_hours(balance_after)}, below the minimum of {minutes_to_hours(floor)} hours",
                account_id=leg.account_id,
                balance_minutes=account.balance_minutes,
                min_balance_minutes=floor,
                requested_minutes=-leg.minutes,
            )
        lines.append(PostingLine(leg.account_id, leg.minutes, balance_after, account.version + 1))
    return lines


async def _write_postings(
    conn: AsyncConnection,
    organisation_id: int,
    transaction_id: int,
    occurred_on: dt.date,
    lines: list[PostingLine],
    locked: dict[int, Row],
    rules: _OrgRules,
) -> None:
    await conn.execute(
        insert(postings),
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
    await conn.execute(
        update(accounts)
        .where(accounts.c.id == bindparam("b_id"))
        .values(
            balance_minutes=bindparam("b_balance"),
            version=bindparam("b_version"),
            min_balance_minutes=bindparam("b_floor"),
        ),
        [
            {
                "b_id": line.account_id,
                "b_balance": line.balance_after,
                "b_version": line.account_version,
                "b_floor": _stored_floor(AccountKind(locked[line.account_id].kind), line.balance_after, rules),
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


def _names_constraint(exc: IntegrityError, column: str) -> bool:
    return column in str(exc.orig)
