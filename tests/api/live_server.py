"""A real ``timebank serve`` process (scripts/drills/live_server.py) on a seeded database.

For tools that speak HTTP to a URL (schemathesis): the server runs its own event
loop and database pool, exactly as in production, so nothing is shared with the
test's loop. The database holds one organisation with people of every role who
sign in, a few exchanges and a site administrator, so the tools can be handed ids
that exist.
"""

import asyncio
import datetime as dt
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from scripts.drills.live_server import ServerProcess
from timebank import ledger
from timebank.auth.passwords import hash_password
from timebank.db import create_database
from timebank.ledger import shared_account_id
from timebank.members.service import create_member
from timebank.models import AccountKind, Role, User
from timebank.orgs.service import DEFAULT_CATEGORIES, create_organisation

PASSWORD = "correct horse battery staple"


@dataclass(frozen=True)
class Seeded:
    """What the seeded database holds: the organisation, who signs in, and ids that exist."""

    slug: str
    coordinator_username: str
    coordinator_member_id: int
    site_admin_username: str
    categories: list[str]
    member_ids: list[int]
    account_ids: list[int]
    transaction_ids: list[int]


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    seeded: Seeded
    log_file: Path

    def sign_in(self, username: str | None = None) -> str:
        """A new bearer token (for the coordinator unless told otherwise)."""
        r = httpx.post(
            f"{self.base_url}/api/v1/auth/token",
            json={"username": username or self.seeded.coordinator_username, "password": PASSWORD},
        )
        r.raise_for_status()
        return str(r.json()["access_token"])

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")


async def seed(database_url: str) -> Seeded:
    """An organisation with a coordinator, staff and members who sign in, some exchanges, a site admin."""
    db = create_database(database_url)
    try:
        slug = f"live-{uuid.uuid4().hex[:8]}"
        organisation = await create_organisation(
            db, slug=slug, name="Live test centre", min_balance_minutes=-20 * 60, changed_by=None
        )
        assert organisation.id is not None
        people = {}
        for role, username in [
            (Role.COORDINATOR, "coordinator"),
            (Role.STAFF, "staff"),
            (Role.MEMBER, "alice"),
            (Role.MEMBER, "bob"),
        ]:
            people[username] = await create_member(
                db,
                organisation.id,
                display_name=username.title(),
                role=role,
                username=username,
                password=PASSWORD,
                changed_by=None,
            )
        offline = await create_member(db, organisation.id, display_name="Carol, who never signs in", changed_by=None)
        members = [*people.values(), offline]
        account_ids = [m.account.id for m in members if m.account.id is not None]
        account_ids += [
            await shared_account_id(db, organisation.id, kind) for kind in (AccountKind.AGENCY, AccountKind.POT)
        ]
        transaction_ids = []
        for giver, receiver in [("alice", "bob"), ("bob", "alice"), ("staff", "alice"), ("alice", "staff")]:
            posted = await ledger.post_exchange(
                db,
                organisation.id,
                giver_account_id=people[giver].account.id,  # type: ignore[arg-type]
                receiver_account_id=people[receiver].account.id,  # type: ignore[arg-type]
                minutes=90,
                occurred_on=dt.date.today() - dt.timedelta(days=1),
                description=f"{giver} helped {receiver}",
                category="Gardening",
                recorded_by=None,
                idempotency_key=uuid.uuid4().hex,
            )
            transaction_ids.append(posted.id)
        async with db.session() as session:
            session.add(User(username="admin", password_hash=hash_password(PASSWORD), is_site_admin=True))
            await session.commit()
        coordinator_id = people["coordinator"].member.id
        assert coordinator_id is not None
        return Seeded(
            slug=slug,
            coordinator_username="coordinator",
            coordinator_member_id=coordinator_id,
            site_admin_username="admin",
            categories=list(DEFAULT_CATEGORIES),
            member_ids=[m.member.id for m in members if m.member.id is not None],
            account_ids=account_ids,
            transaction_ids=transaction_ids,
        )
    finally:
        await db.dispose()


@contextmanager
def live_server(database_url: str, workdir: Path, **settings: str) -> Iterator[LiveServer]:
    """Migrate and seed ``database_url``, serve it on a free port, and stop the server afterwards.

    ``settings`` are more TIMEBANK_* settings by name (``cookie_secure="false"``)."""
    with ServerProcess(database_url, workdir, **settings) as server:
        server.migrate()
        # In a thread of its own: the caller may be inside a running loop (Playwright's sync API).
        with ThreadPoolExecutor(max_workers=1) as thread:
            seeded = thread.submit(asyncio.run, seed(database_url)).result()
        server.start()
        yield LiveServer(server.base_url, seeded, server.log_file)
