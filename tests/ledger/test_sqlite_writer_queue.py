"""SQLite writers of one process take turns in order of arrival (db/engine.py: sqlite_writer_turn).

Left to SQLite's busy handler, concurrent writers sleep and retry in growing steps and
nobody is served in order. These tests check that writers queue on the process's own
FIFO turn instead: every concurrent posting completes with no update lost, none of
them ever meets SQLite's lock ("database is locked"), and the turn goes first come,
first served. No timings: how fast it is goes in scripts/bench.
"""

import asyncio
import itertools
import threading

import pytest
from sqlalchemy import event

from tests.conftest import Org, make_org, new_key, today
from tests.ledger.support import exchange, opening_balance, org_total
from timebank import ledger
from timebank.db import Database, create_database, retry
from timebank.db.engine import sqlite_writer_turn
from timebank.db.migrate import upgrade
from timebank.db.retry import is_retryable
from timebank.ledger.verify import verify_ledger
from timebank.members import service as members_service
from timebank.members.service import create_member, give_sign_in
from timebank.models import Role
from timebank.orgs.service import FirstCoordinator, create_organisation

WRITERS = 16
POSTINGS_EACH = 5


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'queue.sqlite3'}"
    upgrade(url)
    return url


def impatient(url: str, database_errors: list[BaseException]) -> Database:
    """A Database on ``url`` whose connections never wait for SQLite's lock (busy timeout 0),
    recording every error the database raises: any writer that met another's lock shows here
    (the retries in db/retry.py would otherwise hide it)."""
    db = create_database(url)
    for engine in (db.engine, db.autocommit_engine):

        @event.listens_for(engine.sync_engine, "connect")
        def _no_waiting(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout=0")
            cursor.close()

        @event.listens_for(engine.sync_engine, "handle_error")
        def _record(context) -> None:  # type: ignore[no-untyped-def]
            database_errors.append(context.original_exception)

    return db


async def test_sixteen_concurrent_writers_all_complete_without_meeting_the_lock(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    database_errors: list[BaseException] = []

    # A new posting's statements are sent past SQLAlchemy's execution (db/hot_path.py), so its
    # errors reach no "handle_error" listener: every error the retries see is recorded too.
    def recorded(exc: BaseException) -> bool:
        database_errors.append(exc)
        return is_retryable(exc)

    monkeypatch.setattr(retry, "is_retryable", recorded)
    # Two Database objects on one file, as the app and a background task would have:
    # they share the one queue of this process.
    first, second = impatient(sqlite_url, database_errors), impatient(sqlite_url, database_errors)
    try:
        org = await make_org(first)
        people = [await org.member(f"Neighbour {n}") for n in range(WRITERS)]
        for account_id in people:
            await opening_balance(org, account_id, 600)

        async def writer(n: int) -> list[ledger.PostedTransaction]:
            db = first if n % 2 else second
            posted = []
            for k in range(POSTINGS_EACH):
                posted.append(
                    await ledger.post_exchange(
                        db,
                        org.id,
                        giver_account_id=people[n],
                        receiver_account_id=people[(n + k + 1) % WRITERS],
                        minutes=10,
                        occurred_on=today(),
                        description="Queued",
                        recorded_by=None,
                        idempotency_key=new_key(),
                    )
                )
                if k == 2:
                    # A reversal is written statement by statement in a transaction of its own, while
                    # the other writers' exchanges go in one call each (db/hot_path.py): both kinds
                    # take the same turn.
                    await ledger.reverse_transaction(
                        db,
                        org.id,
                        posted[0].id,
                        reason="Queued by mistake",
                        recorded_by=None,
                        idempotency_key=new_key(),
                    )
            return posted

        results = await asyncio.gather(*(writer(n) for n in range(WRITERS)))

        assert database_errors == []
        posted = list(itertools.chain.from_iterable(results))
        assert len(posted) == WRITERS * POSTINGS_EACH
        # Every writer gave 5 x 10 minutes and received as many, and had one gift given back and
        # one of its own taken back: nobody's update was lost.
        for account_id in people:
            assert await ledger.current_balance(first, org.id, account_id) == 600
        assert await org_total(first, org.id) == 0
        assert await verify_ledger(first) == []
    finally:
        await first.dispose()
        await second.dispose()


async def test_the_turn_goes_in_order_of_arrival(tmp_path) -> None:
    path = str(tmp_path / "order.sqlite3")
    queued: list[int] = []
    served: list[int] = []
    holding, everyone_waits, let_go = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def first_writer() -> None:
        async with sqlite_writer_turn(path):
            holding.set()
            await let_go.wait()

    async def writer(n: int) -> None:
        queued.append(n)
        if len(queued) == WRITERS:
            everyone_waits.set()
        # Nothing between being counted and joining the queue lets another task run.
        async with sqlite_writer_turn(path):
            served.append(n)

    # Started outside the first writer's turn (tasks started inside it share its turn).
    holder = asyncio.create_task(first_writer())
    await holding.wait()
    tasks = [asyncio.create_task(writer(n)) for n in range(WRITERS)]
    await everyone_waits.wait()
    assert served == []
    let_go.set()
    await asyncio.gather(holder, *tasks)

    assert served == list(range(WRITERS))


async def test_a_transaction_inside_a_transaction_does_not_wait_for_itself(tmp_path) -> None:
    path = str(tmp_path / "nested.sqlite3")
    async with sqlite_writer_turn(path), sqlite_writer_turn(path):
        pass
    # And the turn is free again afterwards.
    async with asyncio.timeout(5), sqlite_writer_turn(path):
        pass


@pytest.mark.parametrize("adds_a_login", ["registering a member", "giving a member a sign-in", "a new organisation"])
async def test_other_writers_go_on_while_a_new_logins_password_hashes(
    sqlite_org: Org, monkeypatch: pytest.MonkeyPatch, adds_a_login: str
) -> None:
    """argon2 takes about 90 ms of CPU. Hashed inside the transaction that adds the login,
    it held the writer turn all that time, and every other write of the process waited
    behind it. Here the hash waits until another write has gone through; before the hash
    moved out of the transaction, that write waited for the turn, and the test timed out."""
    org = sqlite_org
    giver, receiver = await org.member(), await org.member()
    await opening_balance(org, giver, 600)
    without_login = await create_member(org.db, org.id, display_name="Dee", changed_by=None)
    hashing, go_on = threading.Event(), threading.Event()
    hash_for_real = members_service.hash_password

    def hash_once_the_other_write_is_done(password: str) -> str:
        hashing.set()
        assert go_on.wait(10), "the other write did not go through while the password hashed"
        return hash_for_real(password)

    monkeypatch.setattr(members_service, "hash_password", hash_once_the_other_write_is_done)
    password = "a long enough password"
    if adds_a_login == "registering a member":
        adding = create_member(
            org.db, org.id, display_name="Cy", username=f"cy-{org.slug}", password=password, changed_by=None
        )
    elif adds_a_login == "giving a member a sign-in":
        assert without_login.member.id is not None
        adding = give_sign_in(
            org.db, org.id, without_login.member.id, editor_role=Role.COORDINATOR,
            username=f"dee-{org.slug}", password=password, changed_by=None,
        )  # fmt: skip
    else:
        coordinator = FirstCoordinator(display_name="Em", username=f"em-{org.slug}", password=password)
        adding = create_organisation(
            org.db, slug=f"{org.slug}-2", name="Another centre", first_coordinator=coordinator, changed_by=None
        )
    added = asyncio.create_task(adding)
    try:
        assert await asyncio.to_thread(hashing.wait, 10)
        async with asyncio.timeout(5):
            await exchange(org, giver, receiver, 30)
    finally:
        go_on.set()
    await added
    assert await org_total(org.db, org.id) == 0
