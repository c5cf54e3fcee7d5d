"""Registering members (with or without a login) and their time accounts."""

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlmodel import select
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
    async with db.session() as session:
        member = (
            await session.exec(
                select(Member).where(Member.organisation_id == organisation_id, Member.id == member_id)
            )
        ).first()
        if member is None:
            raise errors.NotFound(f"no member {member_id} in this organisation")
        account = (await session.exec(select(Account).where(Account.member_id == member_id))).one()
        member.is_active = active
        account.is_active = active
        session.add_all([member, account])
        await session.commit()
