"""Read sessions (``Database.read_session``): an ORM read never waits among the writers.

On SQLite every ordinary session begins IMMEDIATE and so takes the writer turn: a page
that only reads (the members list, the entry forms' settings) would wait behind every
exchange queued before it. A read session begins DEFERRED and reads the last commit
while a writer goes on; on PostgreSQL it is READ ONLY. On both databases.
"""

import asyncio

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from tests.conftest import make_org
from timebank.db import Database
from timebank.members.service import list_members
from timebank.models import Organisation
from timebank.orgs.service import get_organisation_by_slug, get_organisation_details

organisations = Organisation.__table__


async def test_a_read_answers_at_once_while_a_writer_is_mid_transaction(db: Database) -> None:
    org = await make_org(db)
    await org.member("Ada")
    original = (await get_organisation_details(db, org.id)).organisation.name
    written, release = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        async with db.transaction() as conn:  # holds SQLite's write lock (and the writer turn)
            await conn.execute(update(organisations).where(organisations.c.id == org.id).values(name="Not yet"))
            written.set()
            await release.wait()

    writing = asyncio.create_task(writer())
    await written.wait()
    try:
        # With the writer turn these would wait until the writer ends: here, for ever.
        details = await asyncio.wait_for(get_organisation_details(db, org.id), timeout=10)
        by_slug = await asyncio.wait_for(get_organisation_by_slug(db, org.slug), timeout=10)
        members, total = await asyncio.wait_for(
            list_members(db, org.id, search=None, active=None, limit=10, offset=0), timeout=10
        )
    finally:
        release.set()
        await writing
    assert details.organisation.name == by_slug.name == original  # the last commit, not the write under way
    assert total == 1 and members[0].display_name == "Ada"
    assert (await get_organisation_details(db, org.id)).organisation.name == "Not yet"


async def test_a_write_slipped_into_a_read_session_is_not_kept(db: Database) -> None:
    org = await make_org(db)
    renamed = update(organisations).where(organisations.c.id == org.id).values(name="Renamed in a read")
    if db.is_postgres:
        with pytest.raises(DBAPIError, match="read-only transaction"):
            async with db.read_session() as session:
                await (await session.connection()).execute(renamed)
    else:  # SQLite lets it through, and the session's end rolls it back
        async with db.read_session() as session:
            await (await session.connection()).execute(renamed)
    async with db.autocommit() as conn:
        name = await conn.scalar(select(organisations.c.name).where(organisations.c.id == org.id))
    assert name != "Renamed in a read"
