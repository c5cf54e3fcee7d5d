"""SQLite: a new posting is one transaction in one call to aiosqlite's thread (db/hot_path.py,
``sqlite_write_in_one_call``), and writes that wait together go in one call, each its own transaction.

The ledger's behaviour on this path (every refusal, replay and limit) is what the rest of
``tests/ledger`` checks on both databases; these tests check what is particular to it: that
a write in a batch stands or falls alone, that a caller gone before its write was sent
leaves nothing, that a busy file is still the retryable error, and that a write made
inside a transaction of its own task is not left waiting for ever behind itself.
"""

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError

from tests.conftest import Org, make_org, new_key
from tests.ledger.support import count_calls_to_the_thread, exchange, opening_balance, org_total
from timebank.db import create_database
from timebank.db.engine import sqlite_writer_turn
from timebank.db.migrate import upgrade
from timebank.db.retry import is_retryable
from timebank.ledger import errors
from timebank.ledger.verify import verify_ledger
from timebank.models import Transaction

transactions = Transaction.__table__


async def _transactions_with_key(org: Org, key: str) -> int:
    async with org.db.autocommit() as conn:
        return await conn.scalar(
            select(func.count()).where(transactions.c.organisation_id == org.id, transactions.c.idempotency_key == key)
        )


async def test_an_exchange_is_one_call_to_aiosqlites_thread(sqlite_org: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    """BEGIN IMMEDIATE, the claim, the locked accounts, the rules, the postings, the balances and
    COMMIT, all on the thread in one call: seven calls before, 26 through SQLAlchemy's adapter.

    (On PostgreSQL an exchange is one statement, ``timebank_post``.)"""
    org = sqlite_org
    giver, receiver = await org.member(), await org.member()
    await exchange(org, giver, receiver, 30)  # the connections are open and warm
    calls = count_calls_to_the_thread(monkeypatch)
    posted = await exchange(org, giver, receiver, 30)
    assert posted.created
    assert calls == {"_each_in_its_own_transaction": 1}


async def test_writes_that_wait_together_go_in_one_call_and_each_stands_alone(
    sqlite_org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = sqlite_org
    people = [await org.member() for _ in range(6)]
    for account in people:
        await opening_balance(org, account, 120)
    calls = count_calls_to_the_thread(monkeypatch)
    keys = [new_key() for _ in people]
    unknown_account = 10**9

    async def write(n: int):  # type: ignore[no-untyped-def]
        # The fourth names an account that does not exist: refused after its claim was
        # inserted, in the middle of the call.
        receiver = unknown_account if n == 3 else people[(n + 1) % len(people)]
        return await exchange(org, people[n], receiver, 30, idempotency_key=keys[n])

    outcomes = await asyncio.gather(*(write(n) for n in range(len(people))), return_exceptions=True)

    assert isinstance(outcomes[3], errors.LedgerError)
    assert all(outcome.created for n, outcome in enumerate(outcomes) if n != 3)
    # They waited together: fewer calls than writes (one, as they all arrived at once).
    assert calls["_each_in_its_own_transaction"] < len(people), calls
    assert await _transactions_with_key(org, keys[3]) == 0  # its claim was rolled back
    assert [await _transactions_with_key(org, key) for n, key in enumerate(keys) if n != 3] == [1] * 5
    assert await org_total(org.db, org.id) == 0
    assert await verify_ledger(org.db) == []


async def test_a_caller_gone_before_its_write_was_sent_leaves_nothing(sqlite_org: Org) -> None:
    org = sqlite_org
    giver, receiver = await org.member(), await org.member()
    held, let_go = asyncio.Event(), asyncio.Event()

    async def another_writer() -> None:  # e.g. an ORM session, holding the writer turn
        async with sqlite_writer_turn(org.db.sqlite_file):
            held.set()
            await let_go.wait()

    holder = asyncio.create_task(another_writer())
    await held.wait()
    gone_key, kept_key = new_key(), new_key()
    gone = asyncio.create_task(exchange(org, giver, receiver, 30, idempotency_key=gone_key))
    kept = asyncio.create_task(exchange(org, giver, receiver, 45, idempotency_key=kept_key))
    await asyncio.sleep(0.05)  # both are waiting for the turn
    gone.cancel()
    let_go.set()
    await holder
    assert (await kept).created
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert await _transactions_with_key(org, gone_key) == 0
    assert await _transactions_with_key(org, kept_key) == 1


@asynccontextmanager
async def impatient_org(tmp_path) -> AsyncIterator[Org]:  # type: ignore[no-untyped-def]
    """An organisation on a SQLite file of its own whose writers never wait for SQLite's lock
    (busy timeout 0), so meeting it shows at once."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'impatient.sqlite3'}"
    await asyncio.to_thread(upgrade, url)
    db = create_database(url)

    @event.listens_for(db.engine.sync_engine, "connect")
    def _no_waiting(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.cursor().execute("PRAGMA busy_timeout=0")

    try:
        yield await make_org(db)
    finally:
        await db.dispose()


async def test_a_busy_file_is_the_retryable_error_and_nothing_is_written(tmp_path) -> None:
    async with impatient_org(tmp_path) as org:
        giver, receiver = await org.member(), await org.member()
        key = new_key()
        other = sqlite3.connect(org.db.sqlite_file, isolation_level=None)  # another process's writer
        try:
            other.execute("BEGIN IMMEDIATE")
            with pytest.raises(OperationalError) as refused:
                await exchange(org, giver, receiver, 30, idempotency_key=key)
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert "database is locked" in str(refused.value.orig)
        assert is_retryable(refused.value)
        assert await _transactions_with_key(org, key) == 0
        assert (await exchange(org, giver, receiver, 30, idempotency_key=key)).created  # free again


async def test_a_write_inside_a_transaction_of_its_own_task_does_not_wait_for_itself(tmp_path) -> None:
    """It cannot queue behind the turn its own task holds: sent on its own, it meets SQLite's
    lock (here at once: busy timeout 0), as any transaction inside a transaction does."""
    async with impatient_org(tmp_path) as org:
        giver, receiver = await org.member(), await org.member()
        async with asyncio.timeout(10), org.db.transaction():
            with pytest.raises(OperationalError, match="database is locked"):
                await exchange(org, giver, receiver, 30)
