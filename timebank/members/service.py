"""Registering members (with or without a login) and their time accounts."""

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import and_, update
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from timebank.auth.passwords import check_new_password, hash_password, normalise_username
from timebank.db import Database
from timebank.ledger import errors
from timebank.models import Account, AccountKind, Member, Organisation, Role, User

MAX_DISPLAY_NAME = 200


@dataclass(frozen=True)
class NewMember:
    member: Member
    account: Account
    user: User | None


async def create_member(
    db: Database,
    organisation_id: int,
    *,
    display_name: str,
    role: Role = Role.MEMBER,
    username: str | None = None,
    password: str | None = None,
    email: str | None = None,
    joined_on: dt.date | None = None,
) -> NewMember:
    """Register a member and open their account. With a username they can sign in."""
    async with db.session() as session:
        new = await add_member(
            session,
            organisation_id,
            display_name=display_name,
            role=role,
            username=username,
            password=password,
            email=email,
            joined_on=joined_on,
        )
        await session.commit()
        return new


async def add_member(
    session: AsyncSession,
    organisation_id: int,
    *,
    display_name: str,
    role: Role = Role.MEMBER,
    username: str | None = None,
    password: str | None = None,
    email: str | None = None,
    joined_on: dt.date | None = None,
) -> NewMember:
    """Add a member and account to ``session`` without committing (for bulk imports)."""
    display_name = " ".join((display_name or "").split())
    if not display_name:
        raise errors.InvalidEntry("a member needs a display name")
    if len(display_name) > MAX_DISPLAY_NAME:
        raise errors.InvalidEntry(f"a display name must be at most {MAX_DISPLAY_NAME} characters")
    organisation = await session.get(Organisation, organisation_id)
    if organisation is None:
        raise errors.OrganisationNotFound(f"no organisation {organisation_id}")
    user = None
    if username is not None:
        user = await _new_user(session, username, password, email)
    elif password is not None:
        raise errors.InvalidEntry("a password needs a username to go with it")
    member = Member(
        organisation_id=organisation_id,
        user_id=user.id if user else None,
        role=role,
        display_name=display_name,
        email=email,
        joined_on=joined_on or dt.datetime.now(ZoneInfo(organisation.timezone)).date(),
    )
    session.add(member)
    await session.flush()
    assert member.id is not None
    account = Account(
        organisation_id=organisation_id,
        kind=AccountKind.MEMBER,
        member_id=member.id,
        min_balance_minutes=min(organisation.min_balance_minutes, 0),
    )
    session.add(account)
    await session.flush()
    return NewMember(member, account, user)


async def _new_user(session: AsyncSession, username: str, password: str | None, email: str | None) -> User:
    """A new login. Usernames are unique across the installation."""
    normalised = normalise_username(username)
    if not normalised or len(normalised) > 150:
        raise errors.InvalidEntry("a username must be 1 to 150 characters")
    if (await session.exec(select(User.id).where(User.username == normalised))).first() is not None:
        raise errors.LedgerConflict(f"the username {normalised!r} is already taken; choose another")
    if password is None:
        raise errors.InvalidEntry("a username needs a password to go with it")
    try:
        check_new_password(password)
    except ValueError as exc:
        raise errors.InvalidEntry(str(exc)) from None
    user = User(username=normalised, password_hash=hash_password(password), email=email)
    session.add(user)
    await session.flush()
    return user


async def set_member_active(db: Database, organisation_id: int, member_id: int, active: bool) -> None:
    """Deactivate (or reactivate) a member. Their account and its history stay."""
    await update_member(db, organisation_id, member_id, is_active=active)


@dataclass(frozen=True)
class MemberView:
    """A member as staff see them: with their login name, account and balance."""

    id: int
    display_name: str
    email: str | None
    role: Role
    username: str | None
    joined_on: dt.date
    is_active: bool
    account_id: int
    balance_minutes: int


def _member_view_query():  # type: ignore[no-untyped-def]
    return (
        select(
            Member.id,
            Member.display_name,
            Member.email,
            Member.role,
            User.username,
            Member.joined_on,
            Member.is_active,
            Account.id,
            Account.balance_minutes,
        )
        .join(Account, and_(Account.organisation_id == Member.organisation_id, Account.member_id == Member.id))
        .outerjoin(User, User.id == Member.user_id)
    )


async def get_member(db: Database, organisation_id: int, member_id: int) -> MemberView:
    async with db.session() as session:
        row = (
            await session.exec(
                _member_view_query().where(Member.organisation_id == organisation_id, Member.id == member_id)
            )
        ).first()
    if row is None:
        raise errors.NotFound(f"no member {member_id} in this organisation")
    return MemberView(*row)


async def list_members(
    db: Database, organisation_id: int, *, search: str | None, active: bool | None, limit: int, offset: int
) -> tuple[list[MemberView], int]:
    """A page of members by name, and how many match in all."""
    conditions = [Member.organisation_id == organisation_id]
    if search:
        escaped = search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(Member.display_name.ilike(f"%{escaped}%", escape="\\"))  # type: ignore[attr-defined]
    if active is not None:
        conditions.append(Member.is_active == active)
    async with db.session() as session:
        rows = (
            await session.exec(
                _member_view_query()
                .where(*conditions)
                .order_by(Member.display_name, Member.id)
                .limit(limit)
                .offset(offset)
            )
        ).all()
        total = (await session.exec(select(func.count()).select_from(Member).where(*conditions))).one()
    return [MemberView(*row) for row in rows], total


async def update_member(
    db: Database,
    organisation_id: int,
    member_id: int,
    *,
    display_name: str | None = None,
    email: str | None = None,
    role: Role | None = None,
    is_active: bool | None = None,
) -> None:
    """Edit a member. Deactivating keeps their account and history; the last coordinator stays."""
    async with db.session() as session:
        member = (
            await session.exec(select(Member).where(Member.organisation_id == organisation_id, Member.id == member_id))
        ).first()
        if member is None:
            raise errors.NotFound(f"no member {member_id} in this organisation")
        changes: dict[str, object] = {}
        if display_name is not None:
            cleaned = " ".join(display_name.split())
            if not cleaned:
                raise errors.InvalidEntry("a member needs a display name")
            changes["display_name"] = cleaned
        if email is not None:
            changes["email"] = email
        losing_coordinator = (
            member.role is Role.COORDINATOR
            and member.is_active
            and ((role is not None and role is not Role.COORDINATOR) or is_active is False)
        )
        if losing_coordinator and await _active_coordinators(session, organisation_id) <= 1:
            raise errors.LedgerConflict(
                "this is the organisation's last active coordinator; make someone else coordinator first"
            )
        if role is not None:
            changes["role"] = role
        if is_active is not None and is_active != member.is_active:
            changes["is_active"] = is_active
            # Core statements that name the organisation (the ORM would update by id alone).
            await session.exec(
                update(Account)
                .where(Account.organisation_id == organisation_id, Account.member_id == member_id)  # type: ignore[arg-type]
                .values(is_active=is_active)
            )
        if changes:
            await session.exec(
                update(Member)
                .where(Member.organisation_id == organisation_id, Member.id == member_id)  # type: ignore[arg-type]
                .values(**changes)
            )
        await session.commit()


async def _active_coordinators(session: AsyncSession, organisation_id: int) -> int:
    return (
        await session.exec(
            select(func.count())
            .select_from(Member)
            .where(
                Member.organisation_id == organisation_id,
                Member.role == Role.COORDINATOR,
                Member.is_active.is_(True),  # type: ignore[attr-defined]
            )
        )
    ).one()
