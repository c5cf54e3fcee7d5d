"""Creating and reading organisations."""

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import bindparam, case, update
from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from timebank.db import Database
from timebank.db.hot_path import HotStatement
from timebank.history.service import ChangeKind, record_change
from timebank.ledger import errors
from timebank.members.service import add_member, new_login
from timebank.models import Account, AccountKind, Category, Member, Organisation, Role, Transaction, category_key

# As the API's schema allows (orgs/schemas.py): far beyond any day centre's.
LOWEST_MIN_BALANCE = -10_000 * 60
SLUG_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")

# What a day service's time bank typically records; a coordinator can change them.
DEFAULT_CATEGORIES = (
    "Befriending",
    "Cooking",
    "Gardening",
    "Admin and office",
    "Arts and crafts",
    "Teaching and skills",
    "Events",
    "Transport",
    "Other",
)


def check_slug(slug: str) -> str:
    if not SLUG_PATTERN.fullmatch(slug):
        raise errors.InvalidEntry(
            f"{slug[:64]!r} is not a valid slug: use 1 to 63 lower-case letters, digits and hyphens"
        )
    return slug


def check_timezone(timezone: str) -> str:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a directory such as "Europe"
        raise errors.InvalidEntry(f"{timezone[:64]!r} is not a time zone name such as Europe/London") from None
    return timezone


async def create_organisation(
    db: Database,
    *,
    slug: str,
    name: str,
    timezone: str = "Europe/London",
    min_balance_minutes: int = -20 * 60,
    categories: tuple[str, ...] = DEFAULT_CATEGORIES,
    first_coordinator: "FirstCoordinator | None" = None,
    changed_by: int | None,
) -> Organisation:
    """A new organisation with its agency account, its community pot and its categories.

    With ``first_coordinator``, also its first coordinator's membership and login,
    in the same transaction: an organisation never exists without someone to run it.
    Their registration is the first row of its history (``changed_by``: the site
    administrator, None for the command line).
    """
    check_slug(slug)
    check_timezone(timezone)
    if not name.strip():
        raise errors.InvalidEntry("an organisation needs a name")
    if min_balance_minutes > 0:
        raise errors.InvalidEntry("the minimum balance must be zero or negative")
    coordinator_login = None
    if first_coordinator is not None:
        coordinator_login = await new_login(first_coordinator.username, first_coordinator.password)
    async with db.session() as session:
        if (await session.exec(select(Organisation.id).where(Organisation.slug == slug))).first():
            raise errors.LedgerConflict(f"an organisation with the slug {slug!r} already exists")
        organisation = Organisation(
            slug=slug, name=name.strip(), timezone=timezone, min_balance_minutes=min_balance_minutes
        )
        session.add(organisation)
        await session.flush()
        assert organisation.id is not None
        session.add(Account(organisation_id=organisation.id, kind=AccountKind.AGENCY))
        session.add(Account(organisation_id=organisation.id, kind=AccountKind.POT, min_balance_minutes=0))
        for category in categories:
            session.add(Category.named(organisation.id, category))
        if first_coordinator is not None:
            await add_member(
                session,
                organisation.id,
                display_name=first_coordinator.display_name,
                role=Role.COORDINATOR,
                login=coordinator_login,
                changed_by=changed_by,
            )
        await session.commit()
        return organisation


@dataclass(frozen=True)
class FirstCoordinator:
    display_name: str
    username: str
    password: str


async def get_organisation_by_slug(db: Database, slug: str) -> Organisation:
    async with db.read_session() as session:
        found = (await session.exec(select(Organisation).where(Organisation.slug == slug))).first()
    if found is None:
        raise errors.OrganisationNotFound(f"no organisation {slug!r}")
    return found


async def update_organisation(
    db: Database,
    organisation_id: int,
    *,
    name: str | None = None,
    timezone: str | None = None,
    min_balance_minutes: int | None = None,
    categories: list[str] | None = None,
    changed_by: int | None,
) -> None:
    """Change an organisation's settings; only what is given changes.

    What changed is in the history, in the same transaction: one row for the settings
    (name, time zone, minimum balance; before and after) and one per category added,
    renamed, retired or brought back.

    Not ``books_closed_through``: only closing a month moves it (``timebank.reports.closing``).
    """
    if timezone is not None:
        check_timezone(timezone)
    if min_balance_minutes is not None and min_balance_minutes > 0:
        raise errors.InvalidEntry("the minimum balance must be zero or negative")
    if min_balance_minutes is not None and min_balance_minutes < LOWEST_MIN_BALANCE:
        raise errors.InvalidEntry(
            f"the minimum balance may be at most {-LOWEST_MIN_BALANCE // 60:,} hours below zero", reason="too_low"
        )
    async with db.session() as session:
        # Locked first, then the accounts (when re-flooring), in the order a month close takes them.
        organisation = await session.get(Organisation, organisation_id, with_for_update=True)
        if organisation is None:
            raise errors.OrganisationNotFound(f"no organisation {organisation_id}")
        wanted: dict[str, object] = {
            "name": name.strip() if name is not None else None,
            "timezone": timezone,
            "min_balance_minutes": min_balance_minutes,
        }
        before: dict[str, object] = {}
        after: dict[str, object] = {}
        for setting, value in wanted.items():
            if value is not None and value != getattr(organisation, setting):
                before[setting], after[setting] = getattr(organisation, setting), value
        if min_balance_minutes is not None and "min_balance_minutes" in after:
            await _refloor_member_accounts(session, organisation_id, min_balance_minutes)
        for setting, value in after.items():
            setattr(organisation, setting, value)
        if after:
            await record_change(
                session, organisation_id, ChangeKind.SETTINGS_CHANGED, changed_by=changed_by, before=before, after=after
            )
        if categories is not None:
            await _set_categories(session, organisation_id, categories, changed_by)
        session.add(organisation)
        await session.commit()


async def _refloor_member_accounts(session: AsyncSession, organisation_id: int, new_minimum: int) -> None:
    """Hold every member account to the new minimum, or to its balance where that is lower.

    The rows are locked in id order first, as the ledger does, so this cannot
    deadlock with postings; a member already below a tightened limit may still
    receive hours but not spend more.
    """
    member_accounts = (Account.organisation_id == organisation_id) & (Account.kind == AccountKind.MEMBER)
    await session.exec(select(Account.id).where(member_accounts).order_by(Account.id).with_for_update())  # type: ignore[arg-type]
    await session.exec(
        update(Account)
        .where(member_accounts)  # type: ignore[arg-type]
        .values(
            min_balance_minutes=case(
                (Account.balance_minutes < new_minimum, Account.balance_minutes), else_=new_minimum
            )
        )
    )


async def _set_categories(
    session: AsyncSession, organisation_id: int, names: list[str], changed_by: int | None
) -> None:
    existing = {
        category.name_key: (category.id, category.name, category.is_active)
        for category in (await session.exec(select(Category).where(Category.organisation_id == organisation_id))).all()
    }
    wanted = {category_key(name): name for name in names}
    for key, (category_id, old_name, was_active) in existing.items():
        new_name, active = wanted.get(key, old_name), key in wanted
        if (new_name, active) == (old_name, was_active):
            continue
        # A Core statement naming the organisation: the ORM would update by id alone. A new
        # spelling of the same name keeps its key.
        await session.exec(
            update(Category)
            .where(Category.organisation_id == organisation_id, Category.id == category_id)  # type: ignore[arg-type]
            .values(is_active=active, name=new_name)
        )
        if active != was_active:
            kind = ChangeKind.CATEGORY_RESTORED if active else ChangeKind.CATEGORY_RETIRED
            before, after = {"category": old_name, "active": was_active}, {"category": new_name, "active": active}
        else:
            kind, before, after = ChangeKind.CATEGORY_RENAMED, {"category": old_name}, {"category": new_name}
        await record_change(session, organisation_id, kind, changed_by=changed_by, before=before, after=after)
    for key, name in wanted.items():
        if key not in existing:
            session.add(Category.named(organisation_id, name))
            await record_change(
                session, organisation_id, ChangeKind.CATEGORY_ADDED, changed_by=changed_by, after={"category": name}
            )


@dataclass(frozen=True)
class OrganisationDetails:
    organisation: Organisation
    categories: list[str]
    agency_account_id: int
    pot_account_id: int


# The categories an entry form offers, in the order it lists them.
_ACTIVE_CATEGORY_NAMES = (
    select(Category.name)
    .where(Category.organisation_id == bindparam("organisation_id"), Category.is_active.is_(True))  # type: ignore[attr-defined]
    .order_by(Category.name)
)
_ACTIVE_CATEGORY_NAMES_HOT = HotStatement(_ACTIVE_CATEGORY_NAMES)


async def active_category_names(db: Database, organisation_id: int) -> list[str]:
    """The names an entry form offers and checks a chosen category against: one statement,
    for the forms' submits, which need nothing else of ``get_organisation_details``."""
    return [row["name"] for row in await _ACTIVE_CATEGORY_NAMES_HOT.all(db, {"organisation_id": organisation_id})]


async def get_organisation_details(db: Database, organisation_id: int) -> OrganisationDetails:
    async with db.read_session() as session:
        organisation = await session.get(Organisation, organisation_id)
        if organisation is None:
            raise errors.OrganisationNotFound(f"no organisation {organisation_id}")
        names = (await session.exec(_ACTIVE_CATEGORY_NAMES, params={"organisation_id": organisation_id})).all()
        shared = dict(
            (
                await session.exec(
                    select(Account.kind, Account.id).where(
                        Account.organisation_id == organisation_id, Account.kind != AccountKind.MEMBER
                    )
                )
            ).all()
        )
    return OrganisationDetails(organisation, list(names), shared[AccountKind.AGENCY], shared[AccountKind.POT])


MAX_CATEGORY_NAME = 80


@dataclass(frozen=True)
class CategoryInUse:
    """A category on the settings page: retired ones too, with how many entries use it."""

    id: int
    name: str
    is_active: bool
    entries: int


async def list_categories(db: Database, organisation_id: int) -> list[CategoryInUse]:
    """Every category of the organisation, active and retired, by name."""
    entries = (
        select(func.count())
        .select_from(Transaction)
        .where(Transaction.organisation_id == organisation_id, Transaction.category_id == Category.id)
        .scalar_subquery()
    )
    async with db.read_session() as session:
        rows = (
            await session.exec(
                select(Category.id, Category.name, Category.is_active, entries)
                .where(Category.organisation_id == organisation_id)
                .order_by(Category.name)
            )
        ).all()
    return [CategoryInUse(*row) for row in rows]


def check_category_name(name: str) -> str:
    """The name with its spacing tidied, or refused (``reason`` says why, for the pages)."""
    cleaned = " ".join(name.split())
    if not cleaned:
        raise errors.InvalidEntry("a category needs a name", field="name", reason="no_name")
    if len(cleaned) > MAX_CATEGORY_NAME:
        raise errors.InvalidEntry(
            f"a category name must be at most {MAX_CATEGORY_NAME} characters", field="name", reason="too_long"
        )
    return cleaned


async def _same_name(session: AsyncSession, organisation_id: int, name: str, except_id: int | None = None) -> None:
    """Refuse a name another category of the organisation already has (retired ones too:
    restore that one instead, so old entries and new share one category)."""
    other = (
        await session.exec(
            select(Category).where(
                Category.organisation_id == organisation_id,
                Category.name_key == category_key(name),
                Category.id != (except_id or 0),
            )
        )
    ).first()
    if other is not None:
        raise errors.LedgerConflict(
            f"there is already a category called {other.name!r}",
            field="name",
            reason="name_taken" if other.is_active else "name_retired",
            name=other.name,
        )


async def check_category_name_free(
    db: Database, organisation_id: int, name: str, *, except_id: int | None = None
) -> None:
    """Refuse (``LedgerConflict``, reason ``name_taken`` or ``name_retired``) a name another
    category already has: the check step asks before anything is saved."""
    async with db.read_session() as session:
        await _same_name(session, organisation_id, name, except_id)


async def add_category(db: Database, organisation_id: int, name: str, *, changed_by: int | None) -> int:
    """A new category, offered on every form from now on. Its id."""
    name = check_category_name(name)
    async with db.session() as session:
        await _same_name(session, organisation_id, name)
        category = Category.named(organisation_id, name)
        session.add(category)
        await record_change(
            session, organisation_id, ChangeKind.CATEGORY_ADDED, changed_by=changed_by, after={"category": name}
        )
        await session.commit()
        assert category.id is not None
        return category.id


async def _category_in(session: AsyncSession, organisation_id: int, category_id: int) -> Category:
    found = (
        await session.exec(
            select(Category).where(Category.organisation_id == organisation_id, Category.id == category_id)
        )
    ).first()
    if found is None:
        raise errors.NotFound(f"no category {category_id} in this organisation")
    return found


async def get_category(db: Database, organisation_id: int, category_id: int) -> CategoryInUse:
    for category in await list_categories(db, organisation_id):
        if category.id == category_id:
            return category
    raise errors.NotFound(f"no category {category_id} in this organisation")


async def rename_category(
    db: Database, organisation_id: int, category_id: int, name: str, *, changed_by: int | None
) -> None:
    """Give a category a new name. The same row keeps its id, so every entry already in it,
    however old, shows the new name (``update_organisation(categories=...)`` matches by
    name instead: a new name there is a new category)."""
    name = check_category_name(name)
    async with db.session() as session:
        old_name = (await _category_in(session, organisation_id, category_id)).name
        if name == old_name:
            return  # nothing changes, and no history row says it did
        await _same_name(session, organisation_id, name, except_id=category_id)
        # A Core statement naming the organisation: the ORM would update by id alone.
        await session.exec(
            update(Category)
            .where(Category.organisation_id == organisation_id, Category.id == category_id)  # type: ignore[arg-type]
            .values(name=name, name_key=category_key(name))
        )
        await record_change(
            session,
            organisation_id,
            ChangeKind.CATEGORY_RENAMED,
            changed_by=changed_by,
            before={"category": old_name},
            after={"category": name},
        )
        await session.commit()


async def set_category_active(
    db: Database, organisation_id: int, category_id: int, active: bool, *, changed_by: int | None
) -> None:
    """Retire a category (no new entries in it; old entries keep it) or restore one."""
    async with db.session() as session:
        category = await _category_in(session, organisation_id, category_id)
        if category.is_active == active:
            return  # already so: no change, no history row
        await record_change(
            session,
            organisation_id,
            ChangeKind.CATEGORY_RESTORED if active else ChangeKind.CATEGORY_RETIRED,
            changed_by=changed_by,
            before={"category": category.name, "active": not active},
            after={"category": category.name, "active": active},
        )
        await session.exec(
            update(Category)
            .where(Category.organisation_id == organisation_id, Category.id == category_id)  # type: ignore[arg-type]
            .values(is_active=active)
        )
        await session.commit()


@dataclass(frozen=True)
class MemberBelow:
    member_id: int
    display_name: str
    balance_minutes: int


async def members_below(db: Database, organisation_id: int, minimum_minutes: int) -> list[MemberBelow]:
    """Members whose balance is already below ``minimum_minutes``, lowest first: what
    tightening the minimum balance would hold at their balance (``_refloor_member_accounts``)."""
    async with db.read_session() as session:
        rows = (
            await session.exec(
                select(Member.id, Member.display_name, Account.balance_minutes)
                .join(Account, (Account.organisation_id == Member.organisation_id) & (Account.member_id == Member.id))
                .where(
                    Member.organisation_id == organisation_id,
                    Account.kind == AccountKind.MEMBER,
                    Account.balance_minutes < minimum_minutes,
                )
                .order_by(Account.balance_minutes, Member.display_name)
            )
        ).all()
    return [MemberBelow(*row) for row in rows]
