"""Correction requests ("Report a mistake") and their answers: the rules, for the API and the pages.

A member reports an entry (a transaction) with a posting on their own account; any other
entry is refused exactly as one that does not exist. Staff and coordinators see every
request of their organisation and answer each once. A request never changes the ledger:
a coordinator corrects an entry with a reversal, and an answer given after it records it.

Both tables are append-only (migration 0009): a request is open until its answer row exists.
"""

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any, Literal

from sqlalchemy import and_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import Select

from timebank.control_characters import has_control_character
from timebank.db import Database, as_utc
from timebank.db.retry import run_in_transaction
from timebank.ledger import errors
from timebank.ledger.posting import check_idempotency_key
from timebank.models import CorrectionAnswer, CorrectionRequest, Member, Posting, Transaction

requests_table = CorrectionRequest.__table__
answers_table = CorrectionAnswer.__table__
members = Member.__table__
postings = Posting.__table__
transactions = Transaction.__table__

MAX_TEXT = 1000
MAX_LIST = 200
Status = Literal["open", "answered"]


class CorrectionNotFound(errors.NotFound):
    pass


class AlreadyAnswered(errors.LedgerConflict):
    pass


@dataclass(frozen=True)
class Answer:
    answer: str
    answered_at: dt.datetime
    answered_by_user_id: int
    answered_by_name: str | None
    # The reversal of the entry, when it had been reversed by the time of the answer.
    reversal_id: int | None


@dataclass(frozen=True)
class Correction:
    id: int
    transaction_id: int
    member_id: int
    member_name: str
    account_id: int
    requested_by_user_id: int
    what_is_wrong: str
    what_it_should_be: str | None
    created_at: dt.datetime
    answer: Answer | None
    # The entry as the ledger has it now: its date, its description, and its reversal if any.
    entry_occurred_on: dt.date
    entry_description: str
    entry_reversal_id: int | None
    # False when this is the original answer to a replayed idempotency key.
    created: bool = True

    @property
    def status(self) -> Status:
        return "open" if self.answer is None else "answered"


def text_problem(value: str, *, required: bool) -> Literal["missing", "too_long", "control_characters"] | None:
    """What is wrong with a text of a request or an answer, trimmed (the pages word it per field)."""
    value = value.strip()
    if not value:
        return "missing" if required else None
    if len(value) > MAX_TEXT:
        return "too_long"
    if has_control_character(value):
        return "control_characters"
    return None


def _text(value: object, what: str, *, required: bool) -> str | None:
    """``value`` trimmed (None when optional and empty), or the refusal a person can act on."""
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise errors.InvalidEntry(f"{what} must be text")
    match text_problem(value, required=required):
        case "missing":
            raise errors.InvalidEntry(f"{what} is required: say it in a few words")
        case "too_long":
            raise errors.InvalidEntry(f"{what} must be at most {MAX_TEXT} characters (it has {len(value.strip())})")
        case "control_characters":
            raise errors.InvalidEntry(f"{what} may not contain control characters (such as NUL)")
    return value.strip() or None


def _fingerprint(**request: Any) -> str:
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _insert(conn: AsyncConnection):  # type: ignore[no-untyped-def]
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def _not_on_your_account(transaction_id: int) -> CorrectionNotFound:
    # The same words whether the entry does not exist or is someone else's: ids cannot be probed.
    return CorrectionNotFound(f"there is no entry {transaction_id} on your account")


async def _has_posting_on(conn: AsyncConnection, organisation_id: int, transaction_id: int, account_id: int) -> bool:
    found = await conn.scalar(
        select(postings.c.id).where(
            postings.c.organisation_id == organisation_id,
            postings.c.transaction_id == transaction_id,
            postings.c.account_id == account_id,
        )
    )
    return found is not None


async def _entry_exists(conn: AsyncConnection, organisation_id: int, transaction_id: int) -> bool:
    found = await conn.scalar(
        select(transactions.c.id).where(
            transactions.c.organisation_id == organisation_id, transactions.c.id == transaction_id
        )
    )
    return found is not None


async def check_may_report(
    db: Database, organisation_id: int, transaction_id: int, *, account_id: int, sees_every_entry: bool
) -> None:
    """Refuse unless the entry has a posting on ``account_id`` (the reporter's own account).

    A member is told it does not exist (404), as for an entry that does not; staff, who can
    see every entry, are told why (403): a mistake on someone else's entry is corrected by a
    coordinator, or reported by the member it is about.
    """
    async with db.autocommit() as conn:
        if await _has_posting_on(conn, organisation_id, transaction_id, account_id):
            return
        if sees_every_entry and await _entry_exists(conn, organisation_id, transaction_id):
            raise errors.NotAllowed(
                "you may report only entries on your own account; a coordinator corrects another "
                "person's entry with a reversal"
            )
    raise _not_on_your_account(transaction_id)


async def check_may_read(
    db: Database, organisation_id: int, transaction_id: int, *, account_id: int, sees_every_entry: bool
) -> None:
    """Staff read the requests about any entry; a member only about entries of their own account."""
    async with db.autocommit() as conn:
        if sees_every_entry:
            if await _entry_exists(conn, organisation_id, transaction_id):
                return
            raise CorrectionNotFound(f"no entry {transaction_id} in this organisation")
        if await _has_posting_on(conn, organisation_id, transaction_id, account_id):
            return
    raise _not_on_your_account(transaction_id)


async def report_mistake(
    db: Database,
    organisation_id: int,
    transaction_id: int,
    *,
    member_id: int,
    account_id: int,
    reported_by: int,
    what_is_wrong: object,
    what_it_should_be: object = None,
    sees_every_entry: bool = False,
    idempotency_key: str,
) -> Correction:
    """Record that the member thinks an entry of their account is wrong. Changes nothing in the ledger.

    The same key and request again answers the first request (``created`` False); the
    same key with another request is refused (409).
    """
    check_idempotency_key(idempotency_key)
    wrong = _text(what_is_wrong, "what is wrong", required=True)
    should_be = _text(what_it_should_be, "what it should be", required=False)
    await check_may_report(
        db, organisation_id, transaction_id, account_id=account_id, sees_every_entry=sees_every_entry
    )
    fingerprint = _fingerprint(
        transaction_id=transaction_id,
        account_id=account_id,
        member_id=member_id,
        reported_by=reported_by,
        what_is_wrong=wrong,
        what_it_should_be=should_be,
    )

    async def claim(conn: AsyncConnection) -> tuple[int, bool]:
        new_id = await conn.scalar(
            _insert(conn)(requests_table)
            .values(
                organisation_id=organisation_id,
                transaction_id=transaction_id,
                account_id=account_id,
                member_id=member_id,
                requested_by_user_id=reported_by,
                what_is_wrong=wrong,
                what_it_should_be=should_be,
                created_at=dt.datetime.now(dt.UTC),
                idempotency_key=idempotency_key,
                request_fingerprint=fingerprint,
            )
            .on_conflict_do_nothing(index_elements=["organisation_id", "idempotency_key"])
            .returning(requests_table.c.id)
        )
        if new_id is not None:
            return new_id, True
        return await _replayed(conn, requests_table, organisation_id, idempotency_key, fingerprint), False

    correction_id, created = await run_in_transaction(db, claim)
    return replace(await get_correction(db, organisation_id, correction_id), created=created)


async def _replayed(conn: AsyncConnection, table: Any, organisation_id: int, key: str, fingerprint: str) -> int:
    row = (
        await conn.execute(
            select(table.c.id, table.c.request_fingerprint).where(
                table.c.organisation_id == organisation_id, table.c.idempotency_key == key
            )
        )
    ).one()
    if row.request_fingerprint != fingerprint:
        raise errors.IdempotencyConflict(
            f"the idempotency key {key!r} was already used for a different request; use a new key for a new one"
        )
    return int(row.id)


async def answer_correction(
    db: Database,
    organisation_id: int,
    correction_id: int,
    *,
    answer: object,
    answered_by: int,
    idempotency_key: str,
) -> Correction:
    """Staff's or a coordinator's answer to a request (the caller checks the role). Once per request.

    If the entry has been reversed by now, the answer records that reversal, so the member
    is told "This entry was reversed". A second answer is refused (409).
    """
    check_idempotency_key(idempotency_key)
    text = _text(answer, "the answer", required=True)
    fingerprint = _fingerprint(correction_id=correction_id, answer=text, answered_by=answered_by)

    async def claim(conn: AsyncConnection) -> bool:
        transaction_id = await conn.scalar(
            select(requests_table.c.transaction_id).where(
                requests_table.c.organisation_id == organisation_id, requests_table.c.id == correction_id
            )
        )
        if transaction_id is None:
            raise CorrectionNotFound(f"no correction request {correction_id} in this organisation")
        reversal_id = await conn.scalar(
            select(transactions.c.id).where(
                transactions.c.organisation_id == organisation_id, transactions.c.reverses_id == transaction_id
            )
        )
        # No conflict target: the key and the request are each unique, and either one taken
        # means this insert must not happen.
        new_id = await conn.scalar(
            _insert(conn)(answers_table)
            .values(
                organisation_id=organisation_id,
                correction_id=correction_id,
                answer=text,
                reversal_id=reversal_id,
                answered_by_user_id=answered_by,
                answered_at=dt.datetime.now(dt.UTC),
                idempotency_key=idempotency_key,
                request_fingerprint=fingerprint,
            )
            .on_conflict_do_nothing()
            .returning(answers_table.c.id)
        )
        if new_id is not None:
            return True
        key_taken = await conn.scalar(
            select(answers_table.c.id).where(
                answers_table.c.organisation_id == organisation_id, answers_table.c.idempotency_key == idempotency_key
            )
        )
        if key_taken is not None:
            await _replayed(conn, answers_table, organisation_id, idempotency_key, fingerprint)
            return False
        raise AlreadyAnswered(
            f"correction request {correction_id} has already been answered; a request is answered once",
            correction_id=correction_id,
        )

    created = await run_in_transaction(db, claim)
    return replace(await get_correction(db, organisation_id, correction_id), created=created)


# --------------------------------------------------------------------------- reading


def _corrections_query(organisation_id: int) -> Select:  # type: ignore[type-arg]
    answerer = members.alias("answerer")
    entry = transactions.alias("entry")
    reversal = transactions.alias("reversal")
    return (
        select(
            requests_table,
            members.c.display_name.label("member_name"),
            entry.c.occurred_on.label("entry_occurred_on"),
            entry.c.description.label("entry_description"),
            reversal.c.id.label("entry_reversal_id"),
            answers_table.c.answer,
            answers_table.c.answered_at,
            answers_table.c.answered_by_user_id,
            answers_table.c.reversal_id,
            answerer.c.display_name.label("answered_by_name"),
        )
        .select_from(
            requests_table.join(
                members,
                and_(
                    members.c.organisation_id == requests_table.c.organisation_id,
                    members.c.id == requests_table.c.member_id,
                ),
            )
            .join(
                entry,
                and_(
                    entry.c.organisation_id == requests_table.c.organisation_id,
                    entry.c.id == requests_table.c.transaction_id,
                ),
            )
            .outerjoin(
                reversal,
                and_(
                    reversal.c.organisation_id == requests_table.c.organisation_id,
                    reversal.c.reverses_id == requests_table.c.transaction_id,
                ),
            )
            .outerjoin(
                answers_table,
                and_(
                    answers_table.c.organisation_id == requests_table.c.organisation_id,
                    answers_table.c.correction_id == requests_table.c.id,
                ),
            )
            .outerjoin(
                answerer,
                and_(
                    answerer.c.organisation_id == requests_table.c.organisation_id,
                    answerer.c.user_id == answers_table.c.answered_by_user_id,
                ),
            )
        )
        .where(requests_table.c.organisation_id == organisation_id)
    )


def _correction(row: Any) -> Correction:
    answer = None
    if row.answered_at is not None:
        answer = Answer(
            answer=row.answer,
            answered_at=as_utc(row.answered_at),
            answered_by_user_id=row.answered_by_user_id,
            answered_by_name=row.answered_by_name,
            reversal_id=row.reversal_id,
        )
    return Correction(
        id=row.id,
        transaction_id=row.transaction_id,
        member_id=row.member_id,
        member_name=row.member_name,
        account_id=row.account_id,
        requested_by_user_id=row.requested_by_user_id,
        what_is_wrong=row.what_is_wrong,
        what_it_should_be=row.what_it_should_be,
        created_at=as_utc(row.created_at),
        answer=answer,
        entry_occurred_on=row.entry_occurred_on,
        entry_description=row.entry_description,
        entry_reversal_id=row.entry_reversal_id,
    )


async def get_correction(db: Database, organisation_id: int, correction_id: int) -> Correction:
    async with db.autocommit() as conn:
        row = (
            await conn.execute(_corrections_query(organisation_id).where(requests_table.c.id == correction_id))
        ).first()
    if row is None:
        raise CorrectionNotFound(f"no correction request {correction_id} in this organisation")
    return _correction(row)


async def list_corrections(
    db: Database,
    organisation_id: int,
    *,
    status: Status | None = None,
    transaction_id: int | None = None,
    account_id: int | None = None,
    limit: int = MAX_LIST,
) -> list[Correction]:
    """Requests of the organisation: open ones oldest first (a queue), otherwise newest first.

    ``account_id`` narrows them to one member's own requests (what a member may see).
    """
    query = _corrections_query(organisation_id)
    if status == "open":
        query = query.where(answers_table.c.id.is_(None))
    elif status == "answered":
        query = query.where(answers_table.c.id.is_not(None))
    if transaction_id is not None:
        query = query.where(requests_table.c.transaction_id == transaction_id)
    if account_id is not None:
        query = query.where(requests_table.c.account_id == account_id)
    order = requests_table.c.id if status == "open" else requests_table.c.id.desc()
    async with db.autocommit() as conn:
        rows = (await conn.execute(query.order_by(order).limit(min(limit, MAX_LIST)))).all()
    return [_correction(row) for row in rows]


async def corrections_by_entry(
    db: Database, organisation_id: int, account_id: int, transaction_ids: list[int]
) -> dict[int, list[Correction]]:
    """One account's own requests about the given entries, oldest first (a statement's page)."""
    if not transaction_ids:
        return {}
    query = _corrections_query(organisation_id).where(
        requests_table.c.account_id == account_id, requests_table.c.transaction_id.in_(transaction_ids)
    )
    found: dict[int, list[Correction]] = {}
    async with db.autocommit() as conn:
        for row in await conn.execute(query.order_by(requests_table.c.id)):
            found.setdefault(row.transaction_id, []).append(_correction(row))
    return found


async def entry_is_on_account(db: Database, organisation_id: int, transaction_id: int, account_id: int) -> bool:
    async with db.autocommit() as conn:
        return await _has_posting_on(conn, organisation_id, transaction_id, account_id)
