"""Registering members (with or without a login) and their time accounts."""

import asyncio
import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import and_, update
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from timebank.auth import rate_limit
from timebank.auth.context import STAFF_ROLES
from timebank.auth.passwords import check_new_password, hash_password, normalise_username
from timebank.auth.service import end_browser_sessions_of, temporary_password_statements
from timebank.db import Database, as_utc
from timebank.history.service import ChangeKind, record_change
from timebank.ledger import errors
from timebank.models import Account, AccountKind, Member, Organisation, Role, User

MAX_DISPLAY_NAME = 200


@dataclass(frozen=True)
class NewMember:
    member: Member
    account: Account
    user: User | None


@dataclass(frozen=True)
class NewLogin:
    """A login's username checked and its password hashed, before any transaction begins.

    argon2 takes about 90 ms of CPU. Hashed inside the transaction, on SQLite that time was
    spent holding the writer turn, and every other write of the process waited for it."""

    username: str  # normalised
    password_hash: str
    temporary: bool = False


async def new_login(username: str, password: str | None, *, temporary: bool = False) -> NewLogin:
    """Check a new login's username and password, and hash the password (in a thread).

    Whether the username is taken is checked where the login is added (``add_login``), in
    the transaction that adds it."""
    normalised = normalise_username(username)
    if not normalised or len(normalised) > 150:
        raise errors.InvalidEntry("a username must be 1 to 150 characters", field="username")
    if password is None:
        raise errors.InvalidEntry("a username needs a password to go with it", field="password")
    try:
        check_new_password(password)
    except ValueError as exc:
        raise errors.InvalidEntry(str(exc), field="password") from None
    # Off the event loop as well as outside the transaction.
    password_hash = await asyncio.to_thread(hash_password, password)
    return NewLogin(normalised, password_hash, temporary)


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
    temporary_password: bool = False,
    changed_by: int | None,
) -> NewMember:
    """Register a member and open their account. With a username they can sign in; with
    ``temporary_password`` they must change the password at their first sign-in.
    ``changed_by``: who registers them, for the history (None for the command line)."""
    if username is None and password is not None:
        raise errors.InvalidEntry("a password needs a username to go with it")
    login = None if username is None else await new_login(username, password, temporary=temporary_password)
    async with db.session() as session:
        new = await add_member(
            session,
            organisation_id,
            display_name=display_name,
            role=role,
            login=login,
            email=email,
            joined_on=joined_on,
            changed_by=changed_by,
        )
        await session.commit()
        return new


async def add_member(
    session: AsyncSession,
    organisation_id: int,
    *,
    display_name: str,
    role: Role = Role.MEMBER,
    login: NewLogin | None = None,
    email: str | None = None,
    joined_on: dt.date | None = None,
    changed_by: int | None,
) -> NewMember:
    """Add a member and account to ``session`` without committing (for bulk imports), with
    its history row (``changed_by``: the acting user, None for the command line), and
    with ``login`` (from ``new_login``, made before the transaction) a way to sign in."""
    display_name = " ".join((display_name or "").split())
    if not display_name:
        raise errors.InvalidEntry("a member needs a display name", field="display_name")
    if len(display_name) > MAX_DISPLAY_NAME:
        raise errors.InvalidEntry(f"a display name must be at most {MAX_DISPLAY_NAME} characters", field="display_name")
    organisation = await session.get(Organisation, organisation_id)
    if organisation is None:
        raise errors.OrganisationNotFound(f"no organisation {organisation_id}")
    user = None if login is None else await add_login(session, login, email)
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
    registered: dict[str, object] = {
        "display_name": display_name,
        "role": role.value,
        "email": email,
        "joined_on": member.joined_on.isoformat(),
    }
    if user is not None:
        registered["username"] = user.username
    await record_change(
        session,
        organisation_id,
        ChangeKind.MEMBER_REGISTERED,
        changed_by=changed_by,
        member_id=member.id,
        after=registered,
    )
    return NewMember(member, account, user)


async def add_login(session: AsyncSession, login: NewLogin, email: str | None, *, is_site_admin: bool = False) -> User:
    """A new login in ``session``'s transaction. Usernames are unique across the installation."""
    if (await session.exec(select(User.id).where(User.username == login.username))).first() is not None:
        raise errors.LedgerConflict(
            f"the username {login.username!r} is already taken; choose another", field="username"
        )
    user = User(
        username=login.username,
        password_hash=login.password_hash,
        email=email,
        must_change_password=login.temporary,
        is_site_admin=is_site_admin,
    )
    session.add(user)
    await session.flush()
    return user


def check_may_register(editor_role: Role, role: Role) -> None:
    """Staff and coordinators register members; only a coordinator gives another role."""
    if editor_role not in STAFF_ROLES:
        raise errors.NotAllowed("only staff and coordinators may register members")
    if role is not Role.MEMBER and editor_role is not Role.COORDINATOR:
        raise errors.NotAllowed("only a coordinator may give a role other than member")


def check_may_edit(editor_role: Role, member_role: Role, new_role: Role | None = None) -> None:
    """Staff edit and deactivate members and staff; a coordinator's record and anyone's role
    are a coordinator's to change (the API and the pages both ask here)."""
    if editor_role not in STAFF_ROLES:
        raise errors.NotAllowed("only staff and coordinators may edit members")
    if editor_role is Role.COORDINATOR:
        return
    if member_role is Role.COORDINATOR:
        raise errors.NotAllowed("only a coordinator may edit a coordinator")
    if new_role is not None and new_role is not member_role:
        raise errors.NotAllowed("only a coordinator may change a member's role")


async def give_sign_in(
    db: Database,
    organisation_id: int,
    member_id: int,
    *,
    editor_role: Role,
    username: str,
    password: str,
    changed_by: int | None,
) -> None:
    """Give a member who has none a sign-in with a temporary password (changed at first sign-in)."""
    login = await new_login(username, password, temporary=True)
    async with db.session() as session:
        member = await _member_in(session, organisation_id, member_id)
        check_may_edit(editor_role, member.role)
        if member.user_id is not None:
            raise errors.LedgerConflict("this member can already sign in", reason="has_sign_in")
        user = await add_login(session, login, member.email)
        member.user_id = user.id
        session.add(member)
        await record_change(
            session,
            organisation_id,
            ChangeKind.SIGN_IN_GIVEN,
            changed_by=changed_by,
            member_id=member_id,
            after={"username": user.username},
        )
        await session.commit()


async def password_reset_refusal(db: Database, organisation_id: int, member_id: int) -> str | None:
    """Why staff may not reset this member's password, or None if they may.

    Only a plain member of this organisation alone: never staff, coordinators, site
    administrators, or someone who is also a member elsewhere (their password opens
    more than this organisation). The reasons: ``no_sign_in``, ``not_a_plain_member``,
    ``site_admin``, ``member_elsewhere``.
    """
    async with db.read_session() as session:
        member = await _member_in(session, organisation_id, member_id)
        if member.user_id is None:
            return "no_sign_in"
        if member.role is not Role.MEMBER:
            return "not_a_plain_member"
        user = await session.get(User, member.user_id)
        assert user is not None
        if user.is_site_admin:
            return "site_admin"
        elsewhere = (
            await session.exec(
                select(func.count())
                .select_from(Member)
                .where(Member.user_id == member.user_id, Member.organisation_id != organisation_id)
            )
        ).one()
        return "member_elsewhere" if elsewhere else None


async def reset_member_password(
    db: Database, organisation_id: int, member_id: int, *, editor_role: Role, password: str, changed_by: int | None
) -> None:
    """Staff give a plain member a new temporary password (handed over in person): every
    open session and token of theirs ends, and they must change it at the next sign-in. The
    history records only that it happened, never the password."""
    if editor_role not in STAFF_ROLES:
        raise errors.NotAllowed("only staff and coordinators may reset passwords")
    refusal = await password_reset_refusal(db, organisation_id, member_id)
    if refusal is not None:
        raise errors.NotAllowed(
            "staff may reset the password of a plain member of this organisation only", reason=refusal
        )
    try:
        check_new_password(password)
    except ValueError as exc:
        raise errors.InvalidEntry(str(exc), field="password") from None
    new_hash = await asyncio.to_thread(hash_password, password)
    async with db.session() as session:
        member = await _member_in(session, organisation_id, member_id)
        assert member.user_id is not None
        for statement in temporary_password_statements(member.user_id, new_hash, dt.datetime.now(dt.UTC)):
            await session.exec(statement)
        await record_change(
            session, organisation_id, ChangeKind.PASSWORD_RESET, changed_by=changed_by, member_id=member_id
        )
        await session.commit()


async def _member_in(session: AsyncSession, organisation_id: int, member_id: int) -> Member:
    member = (
        await session.exec(select(Member).where(Member.organisation_id == organisation_id, Member.id == member_id))
    ).first()
    if member is None:
        raise errors.NotFound(f"no member {member_id} in this organisation")
    return member


async def set_member_active(
    db: Database, organisation_id: int, member_id: int, active: bool, *, changed_by: int | None
) -> None:
    """Deactivate (or reactivate) a member. Their account and its history stay."""
    await update_member(db, organisation_id, member_id, is_active=active, changed_by=changed_by)


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
    async with db.read_session() as session:
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
    async with db.read_session() as session:
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
    changed_by: int | None,
) -> None:
    """Edit a member. Deactivating keeps their account and history; the last coordinator stays.

    Each kind of change writes its own history row (details, role, deactivation), so a role
    change is never hidden among edits; what did not change writes nothing.
    """
    async with db.session() as session:
        member = await _member_in(session, organisation_id, member_id)
        changes: dict[str, object] = {}
        if display_name is not None:
            cleaned = " ".join(display_name.split())
            if not cleaned:
                raise errors.InvalidEntry("a member needs a display name", field="display_name")
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
            if not is_active and member.user_id is not None:
                await _sign_out_if_nowhere_else(session, member)
        # As it was: the ORM refreshes ``member`` when the update below runs.
        was = {name: getattr(member, name) for name in ("display_name", "email", "role", "is_active")}
        changes = {name: value for name, value in changes.items() if was[name] != value}
        if changes:
            await session.exec(
                update(Member)
                .where(Member.organisation_id == organisation_id, Member.id == member_id)  # type: ignore[arg-type]
                .values(**changes)
            )
        await _record_member_changes(session, organisation_id, member_id, was, changes, changed_by)
        await session.commit()


async def _record_member_changes(
    session: AsyncSession,
    organisation_id: int,
    member_id: int,
    was: dict[str, object],
    changes: dict[str, object],
    changed_by: int | None,
) -> None:
    """The history rows of an edit: ``was`` the member before it, ``changes`` what differs."""
    details = [name for name in ("display_name", "email") if name in changes]
    if details:
        await record_change(
            session,
            organisation_id,
            ChangeKind.DETAILS_EDITED,
            changed_by=changed_by,
            member_id=member_id,
            before={name: was[name] for name in details},
            after={name: changes[name] for name in details},
        )
    if "role" in changes:
        await record_change(
            session,
            organisation_id,
            ChangeKind.ROLE_CHANGED,
            changed_by=changed_by,
            member_id=member_id,
            before={"role": Role(str(was["role"])).value},
            after={"role": Role(str(changes["role"])).value},
        )
    if "is_active" in changes:
        await record_change(
            session,
            organisation_id,
            ChangeKind.REACTIVATED if changes["is_active"] else ChangeKind.DEACTIVATED,
            changed_by=changed_by,
            member_id=member_id,
            before={"is_active": was["is_active"]},
            after={"is_active": changes["is_active"]},
        )


async def _sign_out_if_nowhere_else(session: AsyncSession, member: Member) -> None:
    """A deactivated member with no other active membership is signed out of the pages at
    once (their browser sessions end: on a shared computer nobody is left signed in to
    nothing); one who belongs elsewhere stays signed in there. Either way this
    organisation's pages and API close to them at their next request; their API tokens
    stay, as they did (the API answers 404 for this organisation)."""
    assert member.user_id is not None
    elsewhere = (
        await session.exec(
            select(func.count())
            .select_from(Member)
            .where(
                Member.user_id == member.user_id,
                Member.organisation_id != member.organisation_id,
                Member.is_active.is_(True),  # type: ignore[attr-defined]
            )
        )
    ).one()
    if not elsewhere:
        await session.exec(end_browser_sessions_of(member.user_id, dt.datetime.now(dt.UTC)))


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


@dataclass(frozen=True)
class AccessView:
    """A member as the "Roles and access" page shows them: role, whether active, sign-in."""

    id: int
    display_name: str
    role: Role
    is_active: bool
    username: str | None
    last_signed_in_at: dt.datetime | None


async def list_access(db: Database, organisation_id: int) -> list[AccessView]:
    """Every member of the organisation, active or not, by name, with their sign-in if any."""
    async with db.read_session() as session:
        rows = (
            await session.exec(
                select(
                    Member.id,
                    Member.display_name,
                    Member.role,
                    Member.is_active,
                    User.username,
                    User.last_signed_in_at,
                )
                .outerjoin(User, User.id == Member.user_id)
                .where(Member.organisation_id == organisation_id)
                .order_by(Member.display_name, Member.id)
            )
        ).all()
    return [AccessView(*row[:5], as_utc(row[5]) if row[5] is not None else None) for row in rows]


async def clear_sign_in_lockout(
    db: Database, organisation_id: int, member_id: int, *, editor_role: Role, changed_by: int | None
) -> bool:
    """A coordinator lets a member who is locked out by failed sign-ins try again at once.

    Clears the failures counted against the member's username (auth/rate_limit.py:
    ``clear_lockout`` says why the shared address's count stays). True if there were any.
    """
    if editor_role is not Role.COORDINATOR:
        raise errors.NotAllowed("only a coordinator may clear a sign-in lockout")
    async with db.session() as session:
        member = await _member_in(session, organisation_id, member_id)
        user = await session.get(User, member.user_id) if member.user_id is not None else None
        if user is None:
            raise errors.LedgerConflict("this member has no sign-in", reason="no_sign_in")
        cleared = await rate_limit.clear_lockout(session, user.username)
        if cleared:  # nothing to forgive is no change
            await record_change(
                session, organisation_id, ChangeKind.LOCKOUT_CLEARED, changed_by=changed_by, member_id=member_id
            )
        await session.commit()
    return cleared


async def name_in_organisation(db: Database, organisation_id: int, user_id: int) -> str | None:
    """What the organisation calls a user (who recorded an entry): their member name here, or
    None if they are not a member of it (a site administrator, say)."""
    async with db.read_session() as session:
        return (
            await session.exec(
                select(Member.display_name).where(Member.organisation_id == organisation_id, Member.user_id == user_id)
            )
        ).first()
