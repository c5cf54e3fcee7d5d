"""Creating and reading organisations."""

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlmodel import select

from timebank.db import Database
from timebank.ledger import errors
from timebank.models import Account, AccountKind, Category, Organisation

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
            f"{slug!r} is not a valid slug: use 1 to 63 lower-case letters, digits and hyphens"
        )
    return slug


def check_timezone(timezone: str) -> str:
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise errors.InvalidEntry(f"{timezone!r} is not a time zone name such as Europe/London") from None
    return timezone


async def create_organisation(
    db: Database,
    *,
    slug: str,
    name: str,
    timezone: str = "Europe/London",
    min_balance_minutes: int = -20 * 60,
    categories: tuple[str, ...] = DEFAULT_CATEGORIES,
) -> Organisation:
    """A new organisation with its agency account, its community pot and its categories."""
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
            session.add(Category(organisation_id=organisation.id, name=category))
        await session.commit()
        return organisation


async def get_organisation_by_slug(db: Database, slug: str) -> Organisation:
    async with db.session() as session:
        found = (await session.exec(select(Organisation).where(Organisation.slug == slug))).first()
    if found is None:
        raise errors.OrganisationNotFound(f"no organisation {slug!r}")
    return found
