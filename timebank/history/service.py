"""The history of every change to people and settings: who did what, when, before and after.

``record_change`` is the one way a history row is written, always inside the session or
connection that makes the change, so the row commits or rolls back with it: a change
without its history row cannot exist. Rows are never updated or deleted (the database
refuses, migration 0011), except that erasure replaces personal data by a marker.
Passwords and their hashes are never recorded: a password reset records only that it
happened.
"""

import datetime as dt
import enum
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from timebank.db import Database, as_utc
from timebank.models import Change, Member, User

changes = Change.__table__
members = Member.__table__
users = User.__table__

# Also in migration 0011, whose append-only guard lets exactly this replacement through.
ERASED = "[removed: personal data erased]"


class ChangeKind(enum.StrEnum):
    MEMBER_REGISTERED = "member_registered"
    DETAILS_EDITED = "details_edited"
    ROLE_CHANGED = "role_changed"
    DEACTIVATED = "deactivated"
    REACTIVATED = "reactivated"
    SIGN_IN_GIVEN = "sign_in_given"
    PASSWORD_RESET = "password_reset"
    LOCKOUT_CLEARED = "lockout_cleared"
    MEMBER_ERASED = "member_erased"
    SETTINGS_CHANGED = "settings_changed"
    CATEGORY_ADDED = "category_added"
    CATEGORY_RENAMED = "category_renamed"
    CATEGORY_RETIRED = "category_retired"
    CATEGORY_RESTORED = "category_restored"
    HOURLY_RATE_CHANGED = "hourly_rate_changed"
    TRANSACTION_REVERSED = "transaction_reversed"
    MONTH_CLOSED = "month_closed"


State = dict[str, Any] | None


async def record_change(
    session: AsyncSession | AsyncConnection,
    organisation_id: int,
    kind: ChangeKind,
    *,
    changed_by: int | None,
    member_id: int | None = None,
    transaction_id: int | None = None,
    before: State = None,
    after: State = None,
) -> None:
    """Write one history row in the caller's open ``session`` (ORM session or Core connection).

    ``changed_by`` is the acting user's id (None for the command line); their display name in
    this organisation is looked up and kept as it is now. ``before`` and ``after`` hold only the
    fields that changed, as JSON-ready values; never a password or a password hash.
    """
    actor_name = await _actor_name(session, organisation_id, changed_by)
    await _execute(
        session,
        insert(changes).values(
            organisation_id=organisation_id,
            changed_at=dt.datetime.now(dt.UTC),
            actor_user_id=changed_by,
            actor_name=actor_name,
            kind=kind.value,
            member_id=member_id,
            transaction_id=transaction_id,
            before_state=before,
            after_state=after,
        ),
    )


async def _execute(session: AsyncSession | AsyncConnection, statement: Any) -> Any:
    if isinstance(session, AsyncSession):
        return await session.exec(statement)
    return await session.execute(statement)


async def _actor_name(session: AsyncSession | AsyncConnection, organisation_id: int, user_id: int | None) -> str | None:
    if user_id is None:
        return None
    result = await _execute(
        session,
        select(members.c.display_name).where(
            members.c.organisation_id == organisation_id, members.c.user_id == user_id
        ),
    )
    name = result.scalar()
    if name is None:  # a site administrator acting from outside the organisation
        name = (await _execute(session, select(users.c.username).where(users.c.id == user_id))).scalar()
    return name


@dataclass(frozen=True)
class ChangeRow:
    id: int
    changed_at: dt.datetime
    actor_user_id: int | None
    actor_name: str | None
    kind: ChangeKind
    member_id: int | None
    member_name: str | None
    transaction_id: int | None
    before: Any
    after: Any


def _filters(organisation_id: int, member_id: int | None, kind: ChangeKind | None) -> list[Any]:
    conditions = [changes.c.organisation_id == organisation_id]
    if member_id is not None:
        conditions.append(changes.c.member_id == member_id)
    if kind is not None:
        conditions.append(changes.c.kind == kind.value)
    return conditions


async def list_changes(
    db: Database,
    organisation_id: int,
    *,
    member_id: int | None = None,
    kind: ChangeKind | None = None,
    limit: int | None = 50,
    offset: int = 0,
) -> tuple[list[ChangeRow], int]:
    """A page of the organisation's history, newest first, and how many rows match in all
    (``limit=None``: every row, for the CSV; a day service's history is thousands of rows)."""
    conditions = _filters(organisation_id, member_id, kind)
    query = (
        select(
            changes.c.id,
            changes.c.changed_at,
            changes.c.actor_user_id,
            changes.c.actor_name,
            changes.c.kind,
            changes.c.member_id,
            members.c.display_name,
            changes.c.transaction_id,
            changes.c.before_state,
            changes.c.after_state,
        )
        .select_from(
            changes.outerjoin(
                members,
                (members.c.organisation_id == changes.c.organisation_id) & (members.c.id == changes.c.member_id),
            )
        )
        .where(*conditions)
        .order_by(changes.c.id.desc())
        .limit(limit)
        .offset(offset)
    )
    async with db.autocommit() as conn:
        rows = (await conn.execute(query)).all()
        total = await conn.scalar(select(func.count()).select_from(changes).where(*conditions))
    return [
        ChangeRow(
            id=row.id,
            changed_at=as_utc(row.changed_at),
            actor_user_id=row.actor_user_id,
            actor_name=row.actor_name,
            kind=ChangeKind(row.kind),
            member_id=row.member_id,
            member_name=row.display_name,
            transaction_id=row.transaction_id,
            before=row.before_state,
            after=row.after_state,
        )
        for row in rows
    ], total or 0


CSV_HEADER = (
    "id",
    "changed_at",
    "by_user_id",
    "by",
    "kind",
    "member_id",
    "member",
    "transaction_id",
    "field",
    "before",
    "after",
)


def _fields(before: Any, after: Any) -> list[str]:
    names: list[str] = []
    for state in (before, after):
        if isinstance(state, dict):
            names += [name for name in state if name not in names]
    return names


def _value(state: Any, field: str | None) -> Any:
    if field is None:
        return state if not isinstance(state, (dict, list)) else None
    if not isinstance(state, dict):
        return state  # the erasure marker, or nothing
    value = state.get(field)
    return value if value is None or isinstance(value, (str, int, bool)) else str(value)


def csv_rows(rows: Sequence[ChangeRow]) -> Iterator[Sequence[Any]]:
    """The history as CSV rows (through ``reports/csv.py``): one line per changed field."""
    yield CSV_HEADER
    for row in rows:
        fields: list[str | None] = list(_fields(row.before, row.after)) or [None]
        for field in fields:
            yield (
                row.id,
                row.changed_at,
                row.actor_user_id,
                row.actor_name,
                row.kind.value,
                row.member_id,
                row.member_name,
                row.transaction_id,
                field,
                _value(row.before, field),
                _value(row.after, field),
            )


# Keys of before/after that hold personal data (what identifies a person).
PERSONAL_KEYS = frozenset({"display_name", "email", "username"})


async def erase_from_history(
    conn: AsyncConnection,
    organisation_id: int,
    member_id: int,
    user_id: int | None,
    names_them: Callable[[str], bool],
) -> int:
    """Replace by the marker what in this organisation's history identifies an erased member:
    the before/after of rows about them that hold personal fields, any before/after that
    ``names_them`` (as erasure finds names in descriptions), and their own name where they
    acted. The one change the history's append-only guard allows. Returns the rows changed."""
    rows = await conn.execute(
        select(
            changes.c.id,
            changes.c.member_id,
            changes.c.actor_user_id,
            changes.c.actor_name,
            changes.c.before_state,
            changes.c.after_state,
        )
        .where(changes.c.organisation_id == organisation_id)
        .order_by(changes.c.id)
    )
    changed = 0
    for row in rows.all():
        values: dict[str, Any] = {}
        for column, state in (("before_state", row.before_state), ("after_state", row.after_state)):
            if state is None or state == ERASED:
                continue
            about_them = row.member_id == member_id and isinstance(state, dict) and PERSONAL_KEYS & state.keys()
            if about_them or names_them(json.dumps(state, ensure_ascii=False)):
                values[column] = ERASED
        if user_id is not None and row.actor_user_id == user_id and row.actor_name not in (None, ERASED):
            values["actor_name"] = ERASED
        if values:
            await conn.execute(
                update(changes)
                .where(changes.c.organisation_id == organisation_id, changes.c.id == row.id)
                .values(**values)
            )
            changed += 1
    return changed
