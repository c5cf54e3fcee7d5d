"""Creating and reading organisations."""

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import case, update
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from timebank.db import Database
from timebank.history.service import ChangeKind, record_change
from timebank.ledger import errors
from timebank.members.service import add_member
from timebank.models import Account, AccountKind, Category, Organisation, Role, category_key

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
                username=first_coordinator.username,
                password=first_coordinator.password,
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
    async with db.session() as session:
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


async def get_organisation_details(db: Database, organisation_id: int) -> OrganisationDetails:
    async with db.session() as session:
        organisation = await session.get(Organisation, organisation_id)
        if organisation is None:
            raise errors.OrganisationNotFound(f"no organisation {organisation_id}")
        names = (
            await session.exec(
                select(Category.name)
                .where(Category.organisation_id == organisation_id, Category.is_active.is_(True))  # type: ignore[attr-defined]
                .order_by(Category.name)
            )
        ).all()
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
