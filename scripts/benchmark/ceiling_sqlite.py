"""The SQLite ceiling: the service's exchange write, statement for statement, from a minimal aiosqlite client.

The statements are the ones ``ledger/stepwise.py`` sends on SQLite, compiled from
the same SQLAlchemy tables once at start: ``BEGIN IMMEDIATE``; claim the
idempotency key (insert the transaction ``ON CONFLICT DO NOTHING RETURNING``);
read both accounts; read the organisation's rules; insert both postings; update
both balances; ``COMMIT``. The connection has the service's settings (WAL,
``synchronous=FULL``, foreign keys, the busy timeout), so every commit waits for
the disk as the service's does. There is no HTTP, no JSON and no framework.

SQLite allows one writer at a time, so the concurrent clients here take turns on
an ``asyncio.Lock`` as the service's writers do (``db/engine.py``): the best a
single process can do, and what the service is measured against.

    python -m scripts.benchmark.ceiling_sqlite FILE ORG_ID ACCOUNTS CONCURRENCY SECONDS RUN DATE
"""

import asyncio
import datetime as dt
import hashlib
import json
import random
import sys
import time

import aiosqlite
import uvloop
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.dialects import sqlite

from timebank.db.engine import SQLITE_BUSY_TIMEOUT_MS
from timebank.models import Account, Organisation, Posting, Transaction

accounts = Account.__table__
organisations = Organisation.__table__
postings = Posting.__table__
transactions = Transaction.__table__
DIALECT = sqlite.dialect(paramstyle="named")


def compiled(statement: object) -> str:
    return str(statement.compile(dialect=DIALECT))  # type: ignore[attr-defined]


CLAIM = compiled(
    sqlite.insert(transactions)
    .values(
        organisation_id=bindparam("org"),
        kind=bindparam("kind"),
        occurred_on=bindparam("day"),
        recorded_at=bindparam("now"),
        recorded_by_user_id=bindparam("recorded_by_user_id"),
        description=bindparam("description"),
        category_id=bindparam("category_id"),
        idempotency_key=bindparam("key"),
        request_fingerprint=bindparam("fingerprint"),
        reverses_id=bindparam("reverses_id"),
    )
    .on_conflict_do_nothing(index_elements=["organisation_id", "idempotency_key"])
    .returning(transactions.c.id, transactions.c.category_id)
)
LOCK = compiled(
    select(accounts.c.id, accounts.c.kind, accounts.c.balance_minutes, accounts.c.version, accounts.c.is_active)
    .where(accounts.c.organisation_id == bindparam("org"), accounts.c.id.in_([bindparam("a"), bindparam("b")]))
    .order_by(accounts.c.id)
)
RULES = compiled(
    select(organisations.c.timezone, organisations.c.min_balance_minutes, organisations.c.books_closed_through).where(
        organisations.c.id == bindparam("org")
    )
)
POSTING = compiled(
    insert(postings).values(
        organisation_id=bindparam("org"),
        transaction_id=bindparam("tx"),
        account_id=bindparam("account"),
        minutes=bindparam("minutes"),
        balance_after=bindparam("balance"),
        account_version=bindparam("version"),
        occurred_on=bindparam("day"),
    )
)
BALANCE = compiled(
    update(accounts)
    .where(accounts.c.organisation_id == bindparam("org"), accounts.c.id == bindparam("b_id"))
    .values(
        balance_minutes=bindparam("b_balance"), version=bindparam("b_version"), min_balance_minutes=bindparam("b_floor")
    )
)


async def connect(path: str) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}", "synchronous=FULL"):
        await conn.execute(f"PRAGMA {pragma}")
    return conn


async def post_one(conn: aiosqlite.Connection, org: int, giver: int, receiver: int, day: str, key: str) -> None:
    fingerprint = hashlib.sha256(f"{giver}:{receiver}:30:{day}:{key}".encode()).hexdigest()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
    await conn.execute("BEGIN IMMEDIATE")
    try:
        cursor = await conn.execute(
            CLAIM,
            {
                "org": org,
                "kind": "exchange",
                "day": day,
                "now": now,
                "recorded_by_user_id": None,
                "description": "benchmark",
                "category_id": None,
                "key": key,
                "fingerprint": fingerprint,
                "reverses_id": None,
            },
        )
        tx = (await cursor.fetchone())[0]  # type: ignore[index]
        cursor = await conn.execute(LOCK, {"org": org, "a": giver, "b": receiver})
        locked = {row[0]: row for row in await cursor.fetchall()}
        cursor = await conn.execute(RULES, {"org": org})
        floor = (await cursor.fetchone())[1]  # type: ignore[index]
        lines = [(giver, -30), (receiver, 30)]
        await conn.executemany(
            POSTING,
            [
                {
                    "org": org,
                    "tx": tx,
                    "account": account,
                    "minutes": minutes,
                    "balance": locked[account][2] + minutes,
                    "version": locked[account][3] + 1,
                    "day": day,
                }
                for account, minutes in lines
            ],
        )
        await conn.executemany(
            BALANCE,
            [
                {
                    "org": org,
                    "b_id": account,
                    "b_balance": locked[account][2] + minutes,
                    "b_version": locked[account][3] + 1,
                    "b_floor": min(floor, locked[account][2] + minutes) if locked[account][1] == "member" else None,
                }
                for account, minutes in lines
            ],
        )
        await conn.execute("COMMIT")
    except BaseException:
        await conn.execute("ROLLBACK")
        raise


async def worker(
    path: str, turn: asyncio.Lock, org: int, accounts_: list[int], day: str, prefix: str, deadline: float, out: list
) -> None:
    conn = await connect(path)
    sent = 0
    try:
        while time.perf_counter() < deadline:
            sent += 1
            giver, receiver = random.sample(accounts_, 2)
            began = time.perf_counter()
            async with turn:
                await post_one(conn, org, giver, receiver, day, f"{prefix}-{sent}")
            out.append(time.perf_counter() - began)
    finally:
        await conn.close()


async def main(path: str, org: int, accounts_: list[int], concurrency: int, seconds: float, run: str, day: str) -> dict:
    turn = asyncio.Lock()
    latencies: list[float] = []
    began = time.perf_counter()
    deadline = began + seconds
    await asyncio.gather(
        *(worker(path, turn, org, accounts_, day, f"{run}-c{n}", deadline, latencies) for n in range(concurrency))
    )
    elapsed = time.perf_counter() - began
    latencies.sort()

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] * 1000

    return {
        "requests": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50_ms": percentile(50),
        "p95_ms": percentile(95),
        "p99_ms": percentile(99),
        "max_ms": latencies[-1] * 1000,
    }


if __name__ == "__main__":
    path, org, accounts_text, concurrency, seconds, run, day = sys.argv[1:8]
    result = uvloop.run(
        main(path, int(org), [int(a) for a in accounts_text.split(",")], int(concurrency), float(seconds), run, day)
    )
    print("CEILING_JSON " + json.dumps(result))
