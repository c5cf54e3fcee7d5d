"""The SQLite ceiling: the service's exchange write, statement for statement, from a minimal aiosqlite client.

The statements are the very SQL texts ``ledger/stepwise.py`` sends on SQLite (its
``HotStatement``s' SQLite forms): ``BEGIN IMMEDIATE``; claim the idempotency key
(insert the transaction ``ON CONFLICT DO NOTHING RETURNING``); read and lock both
accounts; read the organisation's rules; insert both postings; update both
balances; ``COMMIT``. Each is one call to aiosqlite's thread, with its parameters
already in SQLite's own form. The connection has the service's settings (WAL,
``synchronous=FULL``, foreign keys, the busy timeout), so every commit waits for
the disk as the service's does. There is no HTTP, no JSON and no framework.

SQLite allows one writer at a time, so the concurrent clients here take turns on
an ``asyncio.Lock`` as the service's writers do (``db/engine.py``): the best a
single process can do, and what the service is measured against.

With ``--one-call`` each transaction is sent whole, in one call to aiosqlite's thread, as
the service has sent a new posting since round ten (``db/hot_path.py``): the same
statements, without a trip to the thread and back for each.

    python -m scripts.benchmark.ceiling_sqlite FILE ORG_ID ACCOUNTS CONCURRENCY SECONDS RUN DATE [--one-call]
"""

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import random
import sqlite3
import sys
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from typing import Any

import aiosqlite
import uvloop

from timebank.db.engine import SQLITE_BUSY_TIMEOUT_MS
from timebank.db.hot_path import HotStatement
from timebank.ledger import stepwise


class Statement:
    """One of the service's statements: its SQLite text, and its parameters' order."""

    def __init__(self, hot: HotStatement) -> None:
        self.sql = hot.sqlite.sql
        self.names = [name for name, _ in hot.sqlite.parameters]

    def values(self, parameters: Mapping[str, Any]) -> list[Any]:
        return [parameters[name] for name in self.names]


CLAIM = Statement(stepwise._CLAIM_CATEGORY_ID)
LOCK = Statement(stepwise._LOCK_ACCOUNTS)
RULES = Statement(stepwise._RULES)
POSTING = Statement(stepwise._INSERT_POSTINGS)
BALANCE = Statement(stepwise._UPDATE_ACCOUNTS)


async def connect(path: str) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", f"busy_timeout={SQLITE_BUSY_TIMEOUT_MS}", "synchronous=FULL"):
        await conn.execute(f"PRAGMA {pragma}")
    return conn


# One write's statements, in order, as a generator: each step is (SQL, values, many); what the
# statement returns is sent back in. Sent one call each (``post_one``) or all in one call on
# aiosqlite's thread (``post_one_in_one_call``), as the service sends them (db/hot_path.py).
Step = tuple[str, Any, bool]


def steps(org: int, giver: int, receiver: int, day: str, key: str) -> Generator[Step, list, None]:
    fingerprint = hashlib.sha256(f"{giver}:{receiver}:30:{day}:{key}".encode()).hexdigest()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
    claimed = yield (
        CLAIM.sql,
        CLAIM.values(
            {
                "c_organisation_id": org,
                "c_kind": "exchange",
                "c_occurred_on": day,
                "c_recorded_at": now,
                "c_recorded_by_user_id": None,
                "c_description": "benchmark",
                "c_category_id": None,
                "c_idempotency_key": key,
                "c_request_fingerprint": fingerprint,
                "c_reverses_id": None,
            }
        ),
        False,
    )
    tx = claimed[0][0]
    ids = json.dumps(sorted((giver, receiver)))
    rows = yield (LOCK.sql, LOCK.values({"organisation_id": org, "account_ids": ids}), False)
    locked = {row[0]: row for row in rows}
    rules = {"organisation_id": org, "caller_user_id": None}  # the service's statement, no caller to confirm
    floor = (yield (RULES.sql, RULES.values(rules), False))[0][1]
    lines = [(giver, -30), (receiver, 30)]
    yield (
        POSTING.sql,
        [
            POSTING.values(
                {
                    "organisation_id": org,
                    "transaction_id": tx,
                    "account_id": account,
                    "minutes": minutes,
                    "balance_after": locked[account][2] + minutes,
                    "account_version": locked[account][3] + 1,
                    "occurred_on": day,
                }
            )
            for account, minutes in lines
        ],
        True,
    )
    yield (
        BALANCE.sql,
        [
            BALANCE.values(
                {
                    "b_organisation_id": org,
                    "b_id": account,
                    "b_balance": locked[account][2] + minutes,
                    "b_version": locked[account][3] + 1,
                    "b_floor": min(floor, locked[account][2] + minutes) if locked[account][1] == "member" else None,
                }
            )
            for account, minutes in lines
        ],
        True,
    )


async def post_one(conn: aiosqlite.Connection, *write: Any) -> None:
    """One call to aiosqlite's thread for each statement, BEGIN and COMMIT included."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        writing, rows = steps(*write), None
        with contextlib.suppress(StopIteration):
            while True:
                sql, values, many = writing.send(rows)
                rows = await (conn.executemany(sql, values) if many else conn.execute_fetchall(sql, values))
                rows = None if many else list(rows)
        await conn.execute("COMMIT")
    except BaseException:
        await conn.execute("ROLLBACK")
        raise


def write_now(conn: sqlite3.Connection, *write: Any) -> None:
    """The same transaction on the sqlite3 connection itself, on aiosqlite's thread."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        writing, rows = steps(*write), None
        with contextlib.suppress(StopIteration):
            while True:
                sql, values, many = writing.send(rows)
                if many:
                    conn.executemany(sql, values)
                    rows = None
                else:
                    rows = conn.execute(sql, values).fetchall()
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


async def post_one_in_one_call(conn: aiosqlite.Connection, *write: Any) -> None:
    """The whole transaction in one call to aiosqlite's thread, as the service sends a write."""
    await conn._execute(write_now, conn._conn, *write)


async def worker(
    post: Callable[..., Awaitable[None]],
    path: str,
    turn: asyncio.Lock,
    org: int,
    accounts_: list[int],
    day: str,
    prefix: str,
    deadline: float,
    out: list,
) -> None:
    conn = await connect(path)
    sent = 0
    try:
        while time.perf_counter() < deadline:
            sent += 1
            giver, receiver = random.sample(accounts_, 2)
            began = time.perf_counter()
            async with turn:
                await post(conn, org, giver, receiver, day, f"{prefix}-{sent}")
            out.append(time.perf_counter() - began)
    finally:
        await conn.close()


async def main(
    path: str, org: int, accounts_: list[int], concurrency: int, seconds: float, run: str, day: str, one_call: bool
) -> dict:
    post = post_one_in_one_call if one_call else post_one
    turn = asyncio.Lock()
    latencies: list[float] = []
    began = time.perf_counter()
    deadline = began + seconds
    await asyncio.gather(
        *(worker(post, path, turn, org, accounts_, day, f"{run}-c{n}", deadline, latencies) for n in range(concurrency))
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
    one_call = sys.argv[8:] == ["--one-call"]
    accounts_ = [int(a) for a in accounts_text.split(",")]
    result = uvloop.run(main(path, int(org), accounts_, int(concurrency), float(seconds), run, day, one_call))
    print("CEILING_JSON " + json.dumps(result))
