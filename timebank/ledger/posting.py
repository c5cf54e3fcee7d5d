"""Posting to the ledger: the public operations, and the checks made before the database.

Each operation validates its request into a ``PostingRequest`` and hands it to
``_post``, which runs it as one database transaction with one of two writers:

- ``postgres_function.py``: on PostgreSQL, the whole posting in one round trip
  (the ``timebank_post`` function);
- ``stepwise.py``: statement by statement, on any database (SQLite; reversals); on
  SQLite a new posting's statements all go in one call to the database's thread.

Both keep the same contract, and every ledger test runs on both databases.
"""

import datetime as dt
import hashlib
import json
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.auth.sign_in_cache import SignInCheck
from timebank.db import Database
from timebank.db.retry import run_in_transaction, with_retries
from timebank.ledger import errors
from timebank.ledger.amounts import minutes_to_hours
from timebank.ledger.entries import Leg, PostedTransaction, PostingRequest
from timebank.ledger.postgres_function import post_in_one_round_trip
from timebank.ledger.stepwise import post_new_in_one_call, post_stepwise
from timebank.models import Account, AccountKind, Organisation, TransactionKind, category_key
from timebank.monitoring import metrics

accounts = Account.__table__
organisations = Organisation.__table__

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
    sign_in: SignInCheck | None = None,
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
        _request(
            organisation_id,
            TransactionKind.EXCHANGE,
            legs,
            {giver_account_id: _PEOPLE_AND_AGENCY, receiver_account_id: _PEOPLE_AND_AGENCY},
            occurred_on=occurred_on,
            description=description,
            category=category,
            recorded_by=recorded_by,
            idempotency_key=idempotency_key,
            sign_in=sign_in,
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
    sign_in: SignInCheck | None = None,
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
        _request(
            organisation_id,
            TransactionKind.GROUP,
            legs,
            {leg.account_id: _PEOPLE_AND_AGENCY for leg in legs},
            occurred_on=occurred_on,
            description=description,
            category=category,
            recorded_by=recorded_by,
            idempotency_key=idempotency_key,
            sign_in=sign_in,
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
    return await _pot_transfer(
        db, organisation_id, TransactionKind.DONATION, member_account_id, -minutes,
        occurred_on=occurred_on, description=description, recorded_by=recorded_by, idempotency_key=idempotency_key,
    )  # fmt: skip


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
    return await _pot_transfer(
        db, organisation_id, TransactionKind.GRANT, member_account_id, minutes,
        occurred_on=occurred_on, description=description, recorded_by=recorded_by, idempotency_key=idempotency_key,
    )  # fmt: skip


async def _pot_transfer(
    db: Database,
    organisation_id: int,
    kind: TransactionKind,
    member_account_id: int,
    member_minutes: int,
    *,
    occurred_on: dt.date,
    description: str,
    recorded_by: int | None,
    idempotency_key: str,
) -> PostedTransaction:
    """Hours between a member and the pot: ``member_minutes`` < 0 gives to it, > 0 takes from it."""
    pot_id = await shared_account_id(db, organisation_id, AccountKind.POT)
    member, pot = Leg(member_account_id, member_minutes), Leg(pot_id, -member_minutes)
    legs = (member, pot) if member_minutes < 0 else (pot, member)  # the side that pays comes first
    return await _post(
        db,
        _request(
            organisation_id,
            kind,
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
        _request(
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
    entry = _request(
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
        async with db.autocommit() as conn:
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
    if not (key.isascii() and key.isprintable()):  # space to tilde; runs twice per write
        raise errors.InvalidEntry("the idempotency key may contain only printable ASCII characters")
    return key


def _request(
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
    sign_in: SignInCheck | None = None,
) -> PostingRequest:
    check_idempotency_key(idempotency_key)
    if not isinstance(description, str) or (category is not None and not isinstance(category, str)):
        raise errors.InvalidEntry("the description and the category must be text")
    description = description.strip()
    if not description:
        raise errors.InvalidEntry("a description is required: say what the help was")
    if len(description) > MAX_DESCRIPTION:
        raise errors.InvalidEntry(f"the description must be at most {MAX_DESCRIPTION} characters")
    if category is not None:
        category = " ".join(category.split()) or None
    # Matched ignoring case and spacing; the fingerprint takes the key, so a retry that spells
    # the category differently ("gardening" after "Gardening") is a replay, not a conflict.
    key_of_category = category_key(category) if category is not None else None
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
        category=key_of_category,
        recorded_by=recorded_by,
        reverses_id=reverses_id,
    )
    return PostingRequest(
        organisation_id=organisation_id,
        kind=kind,
        legs=legs,
        allowed_kinds=allowed_kinds,
        occurred_on=occurred_on,
        description=description,
        category=category,
        category_key=key_of_category,
        recorded_by=recorded_by,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        reverses_id=reverses_id,
        allow_inactive=kind is TransactionKind.REVERSAL,
        sign_in=sign_in,  # not in the fingerprint: a retry checked afresh is the same request
    )


def _fingerprint(**request: Any) -> str:
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


# --------------------------------------------------------------------------- the write


async def _post(db: Database | AsyncConnection, request: PostingRequest) -> PostedTransaction:
    """Write ``request``; every write of the ledger passes here, so its counters are kept here."""
    try:
        posted = await _post_uncounted(db, request)
    except errors.LedgerError as exc:
        metrics.count_refusal(request.kind, exc)
        raise
    metrics.count_posting(request.kind, posted.created)
    return posted


async def _post_uncounted(db: Database | AsyncConnection, request: PostingRequest) -> PostedTransaction:
    if isinstance(db, AsyncConnection):  # inside the caller's transaction: no retries here
        return await _write(db, request)
    try:
        return await _write_with_retries(db, request)
    except (IntegrityError, asyncpg.IntegrityConstraintViolationError) as exc:
        if not await _organisation_exists(db, request.organisation_id):
            raise errors.OrganisationNotFound(f"no organisation {request.organisation_id}") from None
        if request.reverses_id is None or "reverses_id" not in str(getattr(exc, "orig", exc)):
            raise
    # A concurrent reversal of the same transaction committed first (PostgreSQL lets
    # both reach the insert). Run again: that finds the reversal, or our own key if
    # the winner was a retry of this very request.
    return await _write_with_retries(db, request)


async def _write_with_retries(db: Database, request: PostingRequest) -> PostedTransaction:
    if request.reverses_id is None:
        if db.is_postgres:
            # One statement is its own transaction: no BEGIN or COMMIT round trips.
            return await with_retries(lambda: post_in_one_round_trip(db, request))
        # SQLite: the whole transaction in one call to the database's thread.
        posted = await with_retries(lambda: post_new_in_one_call(db, request))
        if posted is not None:
            return posted
        # The key was taken (a retry of a posted request): answered below, by replaying it.
    return await run_in_transaction(db, lambda conn: post_stepwise(conn, request))


async def _write(conn: AsyncConnection, request: PostingRequest) -> PostedTransaction:
    if conn.dialect.name == "postgresql" and request.reverses_id is None:
        return await post_in_one_round_trip(conn, request)
    return await post_stepwise(conn, request)


async def _organisation_exists(db: Database, organisation_id: int) -> bool:
    async with db.autocommit() as conn:
        found = await conn.scalar(select(organisations.c.id).where(organisations.c.id == organisation_id))
    return found is not None
