"""Subject access requests and erasure.

Export: everything held about one member, readable, with other people's names left
out (they are someone else's personal data): a counterpart is "another member",
"the centre" or "the community pot". Descriptions are included as written.

Erasure: the member stays, as "Erased member <id>", so their postings, every
balance and every report still add up; what identified them goes. See
docs/architecture.md ("Erasure") for what is removed and why descriptions are the
one change the append-only ledger allows.
"""

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, and_, case, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

from timebank.db import Database
from timebank.history.service import ChangeKind, erase_from_history, record_change
from timebank.ledger import errors, minutes_to_hours
from timebank.models import (
    Account,
    ApiToken,
    Category,
    CorrectionAnswer,
    CorrectionRequest,
    Member,
    Organisation,
    Posting,
    Role,
    SignInFailure,
    Transaction,
    User,
)

# Also in migration 0006, whose append-only guard lets exactly this change through.
ERASED_DESCRIPTION = "[removed: personal data erased]"
# Columns never exported: secrets, or meaningless to a person.
SECRET_COLUMNS = frozenset({"password_hash", "token_hash", "request_fingerprint"})
# Tables of sign-in records (tokens, browser sessions), deleted with the login they belong to.
SIGN_IN_RECORDS = frozenset({"api_tokens", "browser_sessions"})
# Name parts this long or longer are looked for, as whole words, in other descriptions.
NAME_PART_MIN_LENGTH = 4

members = Member.__table__
users = User.__table__
accounts = Account.__table__
transactions = Transaction.__table__
postings = Posting.__table__
categories = Category.__table__
organisations = Organisation.__table__
api_tokens = ApiToken.__table__
correction_requests = CorrectionRequest.__table__
correction_answers = CorrectionAnswer.__table__
# Read for export, erased explicitly: the generic walk below covers any other table.
_CORE = {"members", "users", "accounts", "transactions", "postings", "organisations", "categories"}


def erased_name(member_id: int) -> str:
    return f"Erased member {member_id}"


async def export_member(db: Database, organisation_id: int, member_id: int) -> dict[str, Any]:
    """Everything held about one member of one organisation, as a JSON-ready document."""
    async with db.engine.connect() as conn:
        member = await _member_row(conn, organisation_id, member_id)
        organisation = (
            await conn.execute(
                select(organisations.c.slug, organisations.c.name).where(organisations.c.id == organisation_id)
            )
        ).one()
        account = (
            await conn.execute(
                select(accounts).where(accounts.c.organisation_id == organisation_id, accounts.c.member_id == member_id)
            )
        ).one()
        login = None
        if member.user_id is not None:
            user = (await conn.execute(select(users).where(users.c.id == member.user_id))).one()
            login = {
                "username": user.username,
                "email": user.email,
                "can_sign_in": user.is_active and user.password_hash is not None,
                "password": "set (only a one-way hash of it is stored)" if user.password_hash else "none",
                "created_at": _iso(user.created_at),
                "sign_in_tokens": [
                    {
                        "created_at": _iso(t.created_at),
                        "expires_at": _iso(t.expires_at),
                        "revoked_at": _iso(t.revoked_at),
                    }
                    for t in await conn.execute(
                        select(api_tokens).where(api_tokens.c.user_id == user.id).order_by(api_tokens.c.id)
                    )
                ],
            }
        entries = await _statement(conn, organisation_id, account.id)
        recorded = (
            await conn.scalar(
                select(func.count())
                .select_from(transactions)
                .where(
                    transactions.c.organisation_id == organisation_id,
                    transactions.c.recorded_by_user_id == member.user_id,
                )
            )
            if member.user_id is not None
            else 0
        )
        other_records = await _rows_naming(conn, organisation_id, member_id, member.user_id, account.id)
    return {
        "about": (
            f"Everything Timebank holds about member {member_id} of {organisation.name}. Other people's names are "
            "left out: they are their own personal data."
        ),
        "exported_at": dt.datetime.now(dt.UTC).isoformat(),
        "organisation": {"slug": organisation.slug, "name": organisation.name},
        "member": {
            "id": member.id,
            "display_name": member.display_name,
            "email": member.email,
            "role": Role(member.role).value,
            "joined_on": member.joined_on.isoformat(),
            "is_active": member.is_active,
            "created_at": _iso(member.created_at),
        },
        "login": login,
        "account": {
            "id": account.id,
            "balance": {"minutes": account.balance_minutes, "hours": minutes_to_hours(account.balance_minutes)},
            "is_active": account.is_active,
            "opened_at": _iso(account.created_at),
        },
        "transactions": entries,
        "transactions_recorded_by_them": recorded,
        "other_records": other_records,
    }


async def _statement(conn: AsyncConnection, organisation_id: int, account_id: int) -> list[dict[str, Any]]:
    mine = postings.alias("mine")
    other = postings.alias("other")
    other_account = accounts.alias("other_account")
    theirs = select(mine.c.transaction_id).where(
        mine.c.organisation_id == organisation_id, mine.c.account_id == account_id
    )
    others = {
        row.transaction_id: (row.kind, row.legs)
        for row in await conn.execute(
            select(other.c.transaction_id, func.min(other_account.c.kind).label("kind"), func.count().label("legs"))
            .select_from(
                other.join(
                    other_account,
                    and_(
                        other_account.c.organisation_id == other.c.organisation_id,
                        other_account.c.id == other.c.account_id,
                    ),
                )
            )
            .where(
                other.c.organisation_id == organisation_id,
                other.c.account_id != account_id,
                other.c.transaction_id.in_(theirs),
            )
            .group_by(other.c.transaction_id)
        )
    }
    rows = await conn.execute(
        select(
            transactions.c.id,
            transactions.c.kind,
            transactions.c.occurred_on,
            transactions.c.recorded_at,
            transactions.c.description,
            categories.c.name.label("category"),
            transactions.c.reverses_id,
            mine.c.minutes,
            mine.c.balance_after,
        )
        .select_from(
            mine.join(
                transactions,
                and_(
                    transactions.c.organisation_id == mine.c.organisation_id, transactions.c.id == mine.c.transaction_id
                ),
            ).outerjoin(
                categories,
                and_(
                    categories.c.organisation_id == transactions.c.organisation_id,
                    categories.c.id == transactions.c.category_id,
                ),
            )
        )
        .where(mine.c.organisation_id == organisation_id, mine.c.account_id == account_id)
        .order_by(mine.c.account_version)
    )
    entries = []
    for row in rows:
        kind, count = others.get(row.id, (None, 0))
        entries.append(
            {
                "transaction_id": row.id,
                "kind": str(getattr(row.kind, "value", row.kind)),
                "occurred_on": row.occurred_on.isoformat(),
                "recorded_at": _iso(row.recorded_at),
                "description": row.description,
                "category": row.category,
                "reverses_transaction_id": row.reverses_id,
                "minutes": row.minutes,
                "hours": minutes_to_hours(row.minutes),
                "balance_after_minutes": row.balance_after,
                "with": _counterpart(kind, count),
            }
        )
    return entries


def _counterpart(kind: Any, count: int) -> str:
    kind = getattr(kind, "value", kind)
    if count > 1:
        return f"{count} others"
    return {"member": "another member", "agency": "the centre", "pot": "the community pot"}.get(kind, "nobody")


async def _rows_naming(
    conn: AsyncConnection, organisation_id: int, member_id: int, user_id: int | None, account_id: int
) -> dict[str, list[dict[str, Any]]]:
    """Rows of any other table that refer to this member, their login or their account."""
    found: dict[str, list[dict[str, Any]]] = {}
    for table, condition in _references(member_id, user_id, account_id):
        if table.name in _CORE or table.name == "api_tokens":
            continue
        query = select(table).where(condition)
        if "organisation_id" in table.c:
            query = query.where(table.c.organisation_id == organisation_id)
        rows = [
            {
                name: _plain(value)
                for name, value in row._mapping.items()
                if name not in SECRET_COLUMNS and name not in _others_personal_data(table.name, row, member_id)
            }
            for row in await conn.execute(query)
        ]
        if rows:
            found[table.name] = rows
    return found


def _others_personal_data(table: str, row: Any, member_id: int) -> frozenset[str]:
    """Columns of a row that hold other people's personal data: in the history, who acted (a
    staff member's name), and what changed when the row is about someone else (they acted)."""
    if table != "changes":
        return frozenset()
    if row.member_id == member_id:
        return frozenset({"actor_name"})
    return frozenset({"actor_name", "before_state", "after_state"})


def _references(member_id: int, user_id: int | None, account_id: int) -> list[tuple[Table, Any]]:
    """(table, condition) for every table with a foreign key to this member, user or account."""
    targets = {"members": member_id, "users": user_id, "accounts": account_id}
    found = []
    for table in SQLModel.metadata.sorted_tables:
        conditions = [
            fk.parent == targets[fk.column.table.name]
            for fk in table.foreign_keys
            if fk.column.table.name in targets and fk.column.name == "id" and targets[fk.column.table.name] is not None
        ]
        if conditions:
            found.append((table, or_(*conditions)))
    return found


@dataclass(frozen=True)
class Erasure:
    member_id: int
    descriptions_removed: int
    login: str  # "anonymised", "unlinked (used by other organisations)" or "none"
    sign_in_records_removed: int


async def erase_member(db: Database, organisation_id: int, member_id: int, *, by_user_id: int | None) -> Erasure:
    """Anonymise a member who has left, in one transaction; their postings stay."""
    async with db.transaction() as conn:
        member = await _member_row(conn, organisation_id, member_id, for_update=True)
        if member.display_name == erased_name(member_id) and not member.is_active:
            raise errors.LedgerConflict(f"member {member_id} has already been erased")
        if by_user_id is not None and member.user_id == by_user_id:
            raise errors.LedgerConflict("you cannot erase yourself; ask another coordinator")
        if member.role == Role.COORDINATOR and member.is_active:
            others = await conn.scalar(
                select(func.count())
                .select_from(members)
                .where(
                    members.c.organisation_id == organisation_id,
                    members.c.role == Role.COORDINATOR,
                    members.c.is_active.is_(True),
                    members.c.id != member_id,
                )
            )
            if not others:
                raise errors.LedgerConflict(
                    "this is the organisation's last active coordinator; make someone else coordinator first"
                )
        account_id = await conn.scalar(
            select(accounts.c.id).where(
                accounts.c.organisation_id == organisation_id, accounts.c.member_id == member_id
            )
        )
        identifiers = [member.display_name, member.email]
        login, removed = "none", 0
        if member.user_id is not None:
            user = (await conn.execute(select(users).where(users.c.id == member.user_id))).one()
            identifiers += [user.username, user.email]
            login, removed = await _erase_login(conn, organisation_id, member_id, user)
        descriptions = await _erase_descriptions(conn, organisation_id, account_id, identifiers)
        pattern = _naming_pattern(identifiers)
        history_rows = await erase_from_history(
            conn,
            organisation_id,
            member_id,
            member.user_id,
            lambda text: pattern is not None and pattern.search(text) is not None,
        )
        await _erase_correction_words(conn, organisation_id, member_id)
        await conn.execute(
            update(members)
            .where(members.c.organisation_id == organisation_id, members.c.id == member_id)
            .values(display_name=erased_name(member_id), email=None, is_active=False)
        )
        await conn.execute(
            update(accounts)
            .where(accounts.c.organisation_id == organisation_id, accounts.c.id == account_id)
            .values(is_active=False)
        )
        # By ids and counts only, never the erased values.
        await record_change(
            conn,
            organisation_id,
            ChangeKind.MEMBER_ERASED,
            changed_by=by_user_id,
            member_id=member_id,
            after={"descriptions_removed": descriptions, "history_rows_erased": history_rows, "login": login},
        )
    return Erasure(member_id, descriptions, login, removed)


async def _erase_login(conn: AsyncConnection, organisation_id: int, member_id: int, user: Any) -> tuple[str, int]:
    other_memberships = await conn.scalar(
        select(func.count()).select_from(members).where(members.c.user_id == user.id, members.c.id != member_id)
    )
    if other_memberships:
        # The same person signs in to other organisations: only this membership lets go of the login.
        await conn.execute(
            update(members)
            .where(members.c.organisation_id == organisation_id, members.c.id == member_id)
            .values(user_id=None)
        )
        return "unlinked (the login is used by other organisations)", 0
    removed = 0
    for table in SQLModel.metadata.sorted_tables:
        if table.name in SIGN_IN_RECORDS:  # valid only for the login that is going
            for fk in table.foreign_keys:
                if fk.column.table.name == "users":
                    removed += (await conn.execute(delete(table).where(fk.parent == user.id))).rowcount or 0
    failures = SignInFailure.__table__  # counted under the username itself
    await conn.execute(delete(failures).where(failures.c.bucket == f"user:{user.username}"))
    await conn.execute(
        update(users)
        .where(users.c.id == user.id)
        .values(username=f"erased-{user.id}", password_hash=None, email=None, is_active=False, is_site_admin=False)
    )
    return "anonymised", removed


async def _erase_correction_words(conn: AsyncConnection, organisation_id: int, member_id: int) -> None:
    """Their "Report a mistake" words and the answers to them: the one change migration 0009 allows."""
    theirs = select(correction_requests.c.id).where(
        correction_requests.c.organisation_id == organisation_id, correction_requests.c.member_id == member_id
    )
    await conn.execute(
        update(correction_answers)
        .where(correction_answers.c.organisation_id == organisation_id, correction_answers.c.correction_id.in_(theirs))
        .values(answer=ERASED_DESCRIPTION)
    )
    should_be = correction_requests.c.what_it_should_be
    await conn.execute(
        update(correction_requests)
        .where(correction_requests.c.organisation_id == organisation_id, correction_requests.c.member_id == member_id)
        .values(
            what_is_wrong=ERASED_DESCRIPTION,
            what_it_should_be=case((should_be.is_(None), None), else_=ERASED_DESCRIPTION),
        )
    )


async def _erase_descriptions(
    conn: AsyncConnection, organisation_id: int, account_id: int, identifiers: list[str | None]
) -> int:
    """Remove the description of every transaction the member took part in, and of any other
    in the organisation that names them (their full name, login or email, or a part of their
    name as a whole word)."""
    theirs = select(postings.c.transaction_id).where(
        postings.c.organisation_id == organisation_id, postings.c.account_id == account_id
    )
    pattern = _naming_pattern(identifiers)
    named = [
        row.id
        for row in await conn.execute(
            select(transactions.c.id, transactions.c.description).where(
                transactions.c.organisation_id == organisation_id, transactions.c.description != ERASED_DESCRIPTION
            )
        )
        if pattern is not None and pattern.search(row.description)
    ]
    result = await conn.execute(
        update(transactions)
        .where(
            transactions.c.organisation_id == organisation_id,
            transactions.c.description != ERASED_DESCRIPTION,
            or_(transactions.c.id.in_(theirs), transactions.c.id.in_(named)),
        )
        .values(description=ERASED_DESCRIPTION)
    )
    return result.rowcount or 0


def _naming_pattern(identifiers: list[str | None]) -> re.Pattern[str] | None:
    whole = [rf"(?<!\w){re.escape(text)}(?!\w)" for text in identifiers if text]
    parts = [
        rf"\b{re.escape(part)}\b"
        for text in identifiers[:1]
        if text
        for part in re.split(r"[\s\-]+", text)
        if len(part) >= NAME_PART_MIN_LENGTH
    ]
    alternatives = whole + parts
    return re.compile("|".join(alternatives), re.IGNORECASE) if alternatives else None


async def _member_row(conn: AsyncConnection, organisation_id: int, member_id: int, *, for_update: bool = False) -> Any:
    query = select(members).where(members.c.organisation_id == organisation_id, members.c.id == member_id)
    row = (await conn.execute(query.with_for_update() if for_update else query)).first()
    if row is None:
        raise errors.NotFound(f"no member {member_id} in this organisation")
    return row


def _iso(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return (value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)).isoformat()


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _iso(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return getattr(value, "value", value)
