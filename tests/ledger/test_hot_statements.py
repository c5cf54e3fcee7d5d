"""The statements sent by the driver itself (db/hot_path.py) read and fail exactly as through SQLAlchemy.

On SQLite a ``HotStatement`` converts its parameters and columns with SQLAlchemy's own
processors and sends them in one call to aiosqlite's thread: what comes back must be
what SQLAlchemy itself would have read (dates, times, enums, booleans, NULLs), and what
the database refuses must reach the retries and error handlers as SQLAlchemy's errors.
"""

import asyncio
import datetime as dt
import json
import sqlite3
from collections.abc import Iterator

import asyncpg
import pytest
from sqlalchemy import ARRAY, BigInteger, any_, bindparam, event, func, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from tests.conftest import EmptyDatabase, Org, make_org, today
from tests.ledger.support import count_calls_to_the_thread, exchange, own_postgres_database
from timebank.config import Settings
from timebank.db import Database, create_database
from timebank.db.hot_path import CONNECTION_ERRORS, HotStatement, in_json_list
from timebank.db.retry import is_retryable
from timebank.ledger.postgres_function import POST_STATEMENT
from timebank.ledger.posting import post_exchange
from timebank.ledger.reading import get_account
from timebank.models import Account, Member, Posting, Transaction

accounts = Account.__table__
postings = Posting.__table__
transactions = Transaction.__table__


def _of_organisation(table, *columns):  # type: ignore[no-untyped-def]
    """The rows of ``table`` with ids in the list ``ids``, as a HotStatement, and as SQLAlchemy would read them."""
    chosen = select(*columns) if columns else select(table)

    def where(listed):  # type: ignore[no-untyped-def]
        return chosen.where(table.c.organisation_id == bindparam("organisation_id"), listed)

    hot = HotStatement(
        where(in_json_list(table.c.id, "ids")),
        postgres=where(table.c.id == any_(bindparam("ids", type_=ARRAY(BigInteger)))),
    )
    return hot, lambda organisation_id, ids: chosen.where(
        table.c.organisation_id == organisation_id, table.c.id.in_(ids)
    )


# A column of every kind the ledger stores: integers, text, an enum, a date, a time with
# its zone, a boolean, and NULLs (recorded_by_user_id, category_id, reverses_id here).
_TRANSACTIONS = _of_organisation(transactions)
_ACCOUNTS = _of_organisation(
    accounts, accounts.c.id, accounts.c.kind, accounts.c.is_active, accounts.c.min_balance_minutes
)


async def test_what_it_reads_is_what_sqlalchemy_reads(db: Database, org: Org) -> None:
    giver, receiver = await org.member(), await org.member()
    posted = [await exchange(org, giver, receiver, 30), await exchange(org, receiver, giver, 45)]
    ids = [p.id for p in posted]
    for (hot, portable), wanted in ((_TRANSACTIONS, ids), (_ACCOUNTS, [giver, receiver, org.pot_account_id])):
        async with db.transaction() as conn:
            read_hot = [dict(row) for row in await hot.rows_in(conn, {"organisation_id": org.id, "ids": wanted})]
            read_by_sqlalchemy = [dict(row) for row in (await conn.execute(portable(org.id, wanted))).mappings().all()]
        read_autocommit = [dict(row) for row in await hot.all(db, {"organisation_id": org.id, "ids": wanted})]
        assert len(read_hot) == len(wanted)
        by_id = sorted(read_by_sqlalchemy, key=lambda row: row["id"])
        assert sorted(read_hot, key=lambda row: row["id"]) == by_id
        assert sorted(read_autocommit, key=lambda row: row["id"]) == by_id
        if not db.is_postgres:  # the same Python types too (asyncpg's own are its own: str for an enum)
            for hot_row, sqlalchemy_row in zip(read_hot, read_by_sqlalchemy, strict=True):
                assert {k: type(v) for k, v in hot_row.items()} == {k: type(v) for k, v in sqlalchemy_row.items()}


async def test_a_refused_write_is_sqlalchemys_integrity_error_and_writes_nothing(db: Database, org: Org) -> None:
    giver, receiver = await org.member(), await org.member()
    posted = await exchange(org, giver, receiver, 30)
    zero_minutes = HotStatement(
        insert(postings).values(
            organisation_id=bindparam("organisation_id"),
            transaction_id=bindparam("transaction_id"),
            account_id=bindparam("account_id"),
            minutes=bindparam("minutes"),
            balance_after=bindparam("balance_after"),
            account_version=bindparam("account_version"),
            occurred_on=bindparam("occurred_on"),
        )
    )
    row = {
        "organisation_id": org.id,
        "transaction_id": posted.id,
        "account_id": giver,
        "minutes": 0,  # postings.minutes <> 0
        "balance_after": -30,
        "account_version": 99,
        "occurred_on": today(),
    }
    with pytest.raises(IntegrityError):
        async with db.transaction() as conn:
            await zero_minutes.execute_many_in(conn, [row | {"minutes": 5, "account_version": 98}, row])
    async with db.autocommit() as conn:
        written = await conn.scalar(
            select(func.count()).where(postings.c.transaction_id == posted.id, postings.c.account_id == giver)
        )
    assert written == 1  # the exchange's own posting only


@pytest.mark.parametrize("refused_at", ["a hot statement", "a transaction's BEGIN"])
async def test_a_locked_sqlite_file_is_the_operational_error_the_retries_know(sqlite_org: Org, refused_at: str) -> None:
    """Hot statements are sent by aiosqlite itself, and so is a transaction's ``BEGIN
    IMMEDIATE`` (db/engine.py): SQLite's refusal must still arrive as SQLAlchemy's error."""
    db, org = sqlite_org.db, sqlite_org
    account = await org.member()
    set_version = HotStatement(
        update(accounts)
        .where(accounts.c.organisation_id == bindparam("organisation_id"), accounts.c.id == bindparam("id"))
        .values(version=accounts.c.version)
    )
    # Another process's writer holds the file's one write lock.
    other = sqlite3.connect(db.sqlite_file, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        engine = db.autocommit_engine if refused_at == "a hot statement" else db.engine
        async with engine.connect() as conn:
            raw = (await conn.get_raw_connection()).driver_connection
            await raw.execute("PRAGMA busy_timeout=0")
            try:
                with pytest.raises(OperationalError) as refused:
                    if refused_at == "a hot statement":
                        await set_version.execute_many_in(conn, [{"organisation_id": org.id, "id": account}])
                    else:
                        await conn.begin()
            finally:
                await raw.execute("PRAGMA busy_timeout=30000")
        assert "database is locked" in str(refused.value.orig)
        assert is_retryable(refused.value)
    finally:
        other.execute("ROLLBACK")
        other.close()


async def test_a_connection_handed_back_with_a_transaction_open_lets_go_of_the_write_lock(
    sqlite_org: Org,
) -> None:
    """The pool does not roll back every connection handed back (a trip to aiosqlite's thread
    that does nothing after a commit), but one still inside a transaction it must: else that
    connection keeps SQLite's one write lock and every other writer waits for ever."""
    db = sqlite_org.db
    async with db.engine.connect() as conn:
        # Begun behind SQLAlchemy's back: its own transaction would be ended by the close.
        raw = (await conn.get_raw_connection()).driver_connection
        await raw.execute_fetchall("BEGIN IMMEDIATE")
        assert raw.in_transaction
    other = sqlite3.connect(db.sqlite_file, isolation_level=None, timeout=0)
    try:
        other.execute("BEGIN IMMEDIATE")  # "database is locked" if the lock were still held
        other.execute("ROLLBACK")
    finally:
        other.close()


async def test_a_read_on_sqlite_is_one_call_to_aiosqlites_thread(
    sqlite_org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The statement itself; no rollback when its autocommit connection goes back to the pool."""
    account = await sqlite_org.member()
    await get_account(sqlite_org.db, sqlite_org.id, account)  # the pool has a connection open
    calls = count_calls_to_the_thread(monkeypatch)
    read = await get_account(sqlite_org.db, sqlite_org.id, account)
    assert read.id == account
    assert calls == {"_execute_fetchall": 1}


async def test_a_postgresql_connection_that_dies_under_a_hot_statement_is_not_lent_again(tmp_path) -> None:
    """A hot statement takes its asyncpg connection straight from SQLAlchemy's pool
    (db/hot_path.py, ``pooled_driver_connection``), so SQLAlchemy never sees its errors:
    a connection whose server went away must be thrown out of the pool here, or every
    request it is lent to afterwards fails too. On a database of its own (its connections
    are cut), whatever the test run's backend."""
    async with own_postgres_database(tmp_path, pool_size=2) as (database, admin_url):
        org = await make_org(database)
        member_account = await org.member("Ada")

        async def read() -> None:
            await get_account(database, org.id, member_account)

        await asyncio.gather(read(), read())  # both pooled connections in use once
        admin = await asyncpg.connect(admin_url)
        try:
            cut = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        finally:
            await admin.close()
        assert cut >= 2
        failures = 0
        for _ in range(10):
            try:
                await read()
                break
            except CONNECTION_ERRORS:
                failures += 1
        assert 1 <= failures <= 2  # each dead connection fails once, then is replaced
        for _ in range(5):
            await read()
        assert database.autocommit_engine.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]


async def test_bursts_beyond_the_shipped_pool_wait_for_its_connections_instead_of_opening_more(tmp_path) -> None:
    """A connection SQLAlchemy opens beyond the pool (its overflow) is closed as soon as it
    is handed back: with the shipped settings of 10 + 5, every burst of more than ten
    requests to a worker opened a PostgreSQL connection (a process of PostgreSQL's) per
    request beyond the pool, and at 16 concurrent writes lost a third of the writes a
    second (docs/performance.md, round eleven). With the shipped settings, bursts of twice
    the pool open the pool's connections once, and then none."""
    shipped = Settings()
    async with own_postgres_database(
        tmp_path, pool_size=shipped.db_pool_size, max_overflow=shipped.db_max_overflow
    ) as (database, _admin_url):
        org = await make_org(database)
        member_account = await org.member("Ada")
        opened: list[object] = []
        for engine in (database.engine, database.autocommit_engine):
            event.listen(engine.sync_engine, "connect", lambda connection, record: opened.append(connection))

        async def burst() -> int:
            before = len(opened)
            reads = [get_account(database, org.id, member_account) for _ in range(2 * shipped.db_pool_size)]
            assert all(read.id == member_account for read in await asyncio.gather(*reads))
            return len(opened) - before

        first = await burst()
        assert 1 <= first <= shipped.db_pool_size
        assert [await burst() for _ in range(3)] == [0, 0, 0]


async def test_a_postgresql_connection_that_cannot_be_made_is_sqlalchemys_error(tmp_path) -> None:
    """What the error handlers answer 503 to (a connect refused, a server shutting down) must
    arrive as SQLAlchemy's error, as when a ``Connection`` makes the connection, not as the
    driver adapter's own, which they would not know (a 500). The fault drill met this as
    "the database system is shutting down"; a database that does not exist is refused the
    same way, without stopping anything."""
    databases = EmptyDatabase("postgresql", tmp_path)
    url = await asyncio.to_thread(databases.create)  # it runs an event loop of its own
    await asyncio.to_thread(databases.drop_all)  # gone: every connect is refused
    database = create_database(url, pool_size=1, max_overflow=0)
    try:
        with pytest.raises(DBAPIError, match="does not exist"):
            await get_account(database, 1, 1)
        with pytest.raises(DBAPIError, match="does not exist"):
            await post_exchange(
                database, 1, giver_account_id=2, receiver_account_id=3, minutes=60, occurred_on=today(),
                description="Refused before it is sent", recorded_by=None, idempotency_key="k" * 16,
            )  # fmt: skip
    finally:
        await database.dispose()


@pytest.mark.parametrize("plan", ["force_custom_plan", "force_generic_plan"])
async def test_a_postgresql_write_looks_up_only_its_own_accounts_and_members(tmp_path, plan: str) -> None:
    """A write's one statement joins what ``timebank_post_as`` returns (a row per leg) with
    ``accounts`` and ``members`` for the names in its answer. PostgreSQL plans a function
    at its declared row count; at the default thousand it read every account and member
    of the organisation into hash tables on every write (migration 0013). In an
    organisation of a thousand members, with the statistics a live database has, the
    plan must look up each leg's rows by key, as prepared statements are planned (custom
    plans first, then possibly the generic one). On a database of its own, as the
    statistics are its own."""
    async with own_postgres_database(tmp_path, pool_size=1) as (database, admin_url):
        org = await make_org(database)
        giver, receiver = await org.member("Ada"), await org.member("Bea")
        async with database.transaction() as conn:
            others = await conn.execute(
                insert(Member.__table__).returning(Member.__table__.c.id),
                [{"organisation_id": org.id, "display_name": f"Member {n}", "joined_on": today()} for n in range(1000)],
            )
            await conn.execute(
                insert(accounts),
                [
                    {"organisation_id": org.id, "kind": "member", "member_id": member_id}
                    for member_id in others.scalars()
                ],
            )
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute("ANALYZE")
            await admin.execute(f"SET plan_cache_mode = {plan}")
            statement = await admin.prepare("EXPLAIN (FORMAT JSON) " + POST_STATEMENT)
            explained = await statement.fetchval(
                org.id, "exchange", [giver, receiver], [30, -30], ["member", "member"], today(),
                "Planned, not run", None, None, "k" * 16, "f" * 64, dt.datetime.now(dt.UTC), None, None,
            )  # fmt: skip
        finally:
            await admin.close()

    def nodes(node: dict) -> Iterator[dict]:
        yield node
        for child in node.get("Plans", []):
            yield from nodes(child)

    plan_nodes = list(nodes(json.loads(explained)[0]["Plan"]))
    scanned = {node["Relation Name"]: node["Node Type"] for node in plan_nodes if "Relation Name" in node}
    assert scanned == {"accounts": "Index Scan", "members": "Index Scan"}, plan_nodes
    assert not [node for node in plan_nodes if node["Node Type"] == "Hash Join"], plan_nodes
