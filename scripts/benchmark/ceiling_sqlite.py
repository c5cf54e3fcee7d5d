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

    python -m scripts.benchmark.ceiling_sqlite FILE ORG_ID ACCOUNTS CONCURRENCY SECONDS RUN DATE
"""

import asyncio
import datetime as dt
import hashlib
import json
import random
import sys
import time
from collections.abc import Mapping
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


async def post_one(conn: aiosqlite.Connection, org: int, giver: int, receiver: int, day: str, key: str) -> None:
    fingerprint = hashlib.sha256(f"{giver}:{receiver}:30:{day}:{key}".encode()).hexdigest()
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
    await conn.execute("BEGIN IMMEDIATE")
    try:
        claimed = await conn.execute_fetchall(
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
        )
        tx = next(iter(claimed))[0]
        ids = json.dumps(sorted((giver, receiver)))
        rows = await conn.execute_fetchall(LOCK.sql, LOCK.values({"organisation_id": org, "account_ids": ids}))
        locked = {row[0]: row for row in rows}
        rules = {"organisation_id": org, "caller_user_id": None}  # the service's statement, no caller to confirm
        floor = next(iter(await conn.execute_fetchall(RULES.sql, RULES.values(rules))))[1]
        lines = [(giver, -30), (receiver, 30)]
        await conn.executemany(
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
        )
        await conn.executemany(
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
