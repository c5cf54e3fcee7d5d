"""A demo day centre: members, staff, a coordinator and a few months of exchanges.

Loading is idempotent: the organisation is marked complete when done and a second
run changes nothing. Exchanges use fixed idempotency keys, so even a run that was
interrupted half-way finishes without posting anything twice.
"""

import datetime as dt
import random
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import select

from timebank import ledger
from timebank.auth.passwords import hash_password
from timebank.db import Database
from timebank.ledger import errors
from timebank.members.service import create_member
from timebank.models import Account, AccountKind, Member, Organisation, Role, User
from timebank.orgs.service import create_organisation

DEMO_SLUG = "riverside"
DEMO_NAME = "Riverside Day Centre (demo)"
DEMO_TIMEZONE = "Europe/London"
MONTHS_OF_HISTORY = 4

# username, password, display name, role: printed by `scripts/serve --demo`.
DEMO_LOGINS = (
    ("admin", "demo-admin-pass", "Site administrator", None),
    ("coordinator", "demo-coordinator", "Grace Okafor", Role.COORDINATOR),
    ("staff", "demo-staff-pass", "Sam Patel", Role.STAFF),
    ("alice", "demo-member-pass", "Alice Murray", Role.MEMBER),
    ("ben", "demo-member-pass", "Ben Adeyemi", Role.MEMBER),
)
MEMBERS_WITHOUT_LOGIN = (
    "Carol Whitfield",
    "Dev Sharma",
    "Edna Lowe",
    "Femi Bello",
    "Gwen Hughes",
    "Harry Doyle",
    "Irene Kowalski",
    "Jamal Rahman",
    "Kath O'Neill",
    "Leon Grant",
    "Maria Santos",
    "Nora Byrne",
)
HELP = (
    ("Gardening", "Weeding the centre's vegetable beds"),
    ("Cooking", "Helped cook the Friday lunch"),
    ("Befriending", "Phone call and a walk in the park"),
    ("Admin and office", "Answered the phone at reception"),
    ("Arts and crafts", "Helped with the mosaic project"),
    ("Teaching and skills", "Showed how to use a smartphone"),
    ("Transport", "Accompanied to a hospital appointment"),
    ("Cooking", "Baked for the coffee morning"),
)


@dataclass(frozen=True)
class DemoResult:
    created: bool
    organisation_slug: str
    exchanges: int


async def load_demo(db: Database, *, seed: int = 7) -> DemoResult:
    """Create the demo centre unless it is already complete."""
    organisation = await _demo_organisation(db)
    assert organisation.id is not None
    if organisation.settings.get("demo_complete"):
        return DemoResult(False, DEMO_SLUG, 0)
    accounts, staff_user = await _demo_people(db, organisation.id)
    exchanges = await _demo_history(db, organisation, accounts, staff_user, random.Random(seed))
    async with db.transaction() as conn:
        await conn.execute(
            update(Organisation.__table__)
            .where(Organisation.__table__.c.id == organisation.id)
            .values(settings={**organisation.settings, "demo_complete": True})
        )
    return DemoResult(True, DEMO_SLUG, exchanges)


async def _demo_organisation(db: Database) -> Organisation:
    async with db.session() as session:
        found = (await session.exec(select(Organisation).where(Organisation.slug == DEMO_SLUG))).first()
    if found is not None:
        return found
    return await create_organisation(
        db, slug=DEMO_SLUG, name=DEMO_NAME, timezone=DEMO_TIMEZONE, min_balance_minutes=-10 * 60, changed_by=None
    )


async def _demo_people(db: Database, organisation_id: int) -> tuple[dict[str, int], int]:
    """Accounts by display name (created if missing), and the staff member's user id."""
    async with db.session() as session:
        rows = (
            await session.exec(
                select(Member.display_name, Account.id)
                .join(Account, Account.member_id == Member.id)
                .where(Member.organisation_id == organisation_id)
            )
        ).all()
        accounts = {name: account_id for name, account_id in rows}
        if (await session.exec(select(User).where(User.username == "admin"))).first() is None:
            session.add(User(username="admin", password_hash=hash_password("demo-admin-pass"), is_site_admin=True))
            await session.commit()
    for username, password, name, role in DEMO_LOGINS:
        if role is not None and name not in accounts:
            new = await create_member(
                db,
                organisation_id,
                display_name=name,
                role=role,
                username=username,
                password=password,
                changed_by=None,
            )
            accounts[name] = new.account.id  # type: ignore[assignment]
    for name in MEMBERS_WITHOUT_LOGIN:
        if name not in accounts:
            new = await create_member(db, organisation_id, display_name=name, changed_by=None)
            accounts[name] = new.account.id  # type: ignore[assignment]
    return accounts, await _user_id(db, "staff")


async def _user_id(db: Database, username: str) -> int:
    async with db.session() as session:
        return (await session.exec(select(User.id).where(User.username == username))).one()  # type: ignore[return-value]


async def _demo_history(
    db: Database, organisation: Organisation, accounts: dict[str, int], staff_user: int, rng: random.Random
) -> int:
    assert organisation.id is not None
    org_id = organisation.id
    today = dt.datetime.now(ZoneInfo(organisation.timezone)).date()
    start = today - dt.timedelta(days=30 * MONTHS_OF_HISTORY)
    members = [name for name in accounts if name not in ("Grace Okafor", "Sam Patel")]
    agency = await ledger.shared_account_id(db, org_id, AccountKind.AGENCY)
    posted = 0
    step = 0

    async def attempt(post) -> None:  # type: ignore[no-untyped-def]
        nonlocal posted
        try:
            await post
            posted += 1
        except (errors.InsufficientBalance, errors.IdempotencyConflict):
            pass  # a random pairing that would break a limit is simply not part of the story

    day = start
    while day <= today:
        if day.weekday() < 5:  # the centre is open on weekdays
            for _ in range(rng.randint(1, 4)):
                step += 1
                giver, receiver = rng.sample(members, 2)
                category, description = rng.choice(HELP)
                await attempt(
                    ledger.post_exchange(
                        db,
                        org_id,
                        giver_account_id=accounts[giver],
                        receiver_account_id=accounts[receiver],
                        minutes=rng.choice((30, 60, 60, 90, 120)),
                        occurred_on=day,
                        description=description,
                        category=category,
                        recorded_by=staff_user,
                        idempotency_key=f"demo-{step}",
                    )
                )
            if day.weekday() == 2:  # Wednesday: a volunteer runs the art group for three attendees
                step += 1
                volunteer, *attendees = rng.sample(members, 4)
                await attempt(
                    ledger.post_group_activity(
                        db,
                        org_id,
                        givers=[(accounts[volunteer], 90)],
                        receivers=[(accounts[a], 30) for a in attendees],
                        occurred_on=day,
                        description="Ran the Wednesday art group",
                        category="Arts and crafts",
                        recorded_by=staff_user,
                        idempotency_key=f"demo-{step}",
                    )
                )
            if day.weekday() == 4:  # Friday: a member helps the centre itself (service hours)
                step += 1
                await attempt(
                    ledger.post_exchange(
                        db,
                        org_id,
                        giver_account_id=accounts[rng.choice(members)],
                        receiver_account_id=agency,
                        minutes=120,
                        occurred_on=day,
                        description="Set up and ran the coffee morning",
                        category="Events",
                        recorded_by=staff_user,
                        idempotency_key=f"demo-{step}",
                    )
                )
        if day.day == 1:  # monthly: a donation to the pot and a grant from it
            step += 1
            await attempt(
                ledger.donate_to_pot(
                    db,
                    org_id,
                    member_account_id=accounts["Alice Murray"],
                    minutes=60,
                    occurred_on=day,
                    description="Donated hours to the community pot",
                    recorded_by=staff_user,
                    idempotency_key=f"demo-{step}",
                )
            )
            step += 1
            await attempt(
                ledger.grant_from_pot(
                    db,
                    org_id,
                    member_account_id=accounts[rng.choice(members)],
                    minutes=60,
                    occurred_on=day,
                    description="Grant from the pot for a new member",
                    recorded_by=staff_user,
                    idempotency_key=f"demo-{step}",
                )
            )
        day += dt.timedelta(days=1)
    # A mistake and its correction, as coordinators make them.
    mistaken = ledger.post_exchange(
        db,
        org_id,
        giver_account_id=accounts["Ben Adeyemi"],
        receiver_account_id=accounts["Carol Whitfield"],
        minutes=60,
        occurred_on=today,
        description="Logged against the wrong member",
        category="Befriending",
        recorded_by=staff_user,
        idempotency_key="demo-mistake",
    )
    try:
        wrong = await mistaken
        coordinator = await _user_id(db, "coordinator")  # only coordinators reverse
        await ledger.reverse_transaction(
            db,
            org_id,
            wrong.id,
            reason="Logged against the wrong member",
            recorded_by=coordinator,
            idempotency_key="demo-mistake-reversal",
        )
        posted += 2
    except errors.LedgerError:
        pass
    return posted
