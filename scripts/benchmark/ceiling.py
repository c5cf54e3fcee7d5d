"""The ceiling: the same ledger write as the service's, from a minimal asyncpg client.

Each call is the statement the service sends for an exchange — timebank_post:
claim the idempotency key, lock both accounts, insert the transaction and its
two postings, update both balances — with no HTTP, no JSON and no framework in
the way. Whatever the service reaches, as a fraction of this, is what our own
code costs.

    python -m scripts.benchmark.ceiling DSN ORG_ID ACCOUNTS CONCURRENCY SECONDS RUN DATE
"""

import asyncio
import datetime as dt
import hashlib
import json
import random
import sys
import time

import asyncpg
import uvloop

CALL = "SELECT transaction_id FROM timebank_post($1, 'exchange', $2, $3, $4, $5, 'benchmark', NULL, NULL, $6, $7, $8)"
ALLOWED = ["agency,member", "agency,member"]


async def worker(
    pool: asyncpg.Pool,
    org_id: int,
    accounts: list[int],
    day: dt.date,
    key_prefix: str,
    deadline: float,
    latencies: list[float],
) -> None:
    sent = 0
    async with pool.acquire() as conn:
        statement = await conn.prepare(CALL)
        while time.perf_counter() < deadline:
            sent += 1
            giver, receiver = random.sample(accounts, 2)
            key = f"{key_prefix}-{sent}"
            fingerprint = hashlib.sha256(f"{giver}:{receiver}:30:{day}:{key}".encode()).hexdigest()
            began = time.perf_counter()
            await statement.fetch(
                org_id, [giver, receiver], [30, -30], ALLOWED, day, key, fingerprint, dt.datetime.now(dt.UTC)
            )
            latencies.append(time.perf_counter() - began)


async def main(
    dsn: str, org_id: int, accounts: list[int], concurrency: int, seconds: float, run: str, day: dt.date
) -> dict[str, float]:
    # No TLS, as the service connects to a database on the same machine.
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency, ssl=False)
    latencies: list[float] = []
    began = time.perf_counter()
    deadline = began + seconds
    await asyncio.gather(
        *(worker(pool, org_id, accounts, day, f"{run}-c{n}", deadline, latencies) for n in range(concurrency))
    )
    elapsed = time.perf_counter() - began
    await pool.close()
    latencies.sort()

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] * 1000

    return {
        "requests": len(latencies),
        "per_second": len(latencies) / elapsed,
        "p50_ms": percentile(50),
        "p95_ms": percentile(95),
        "p99_ms": percentile(99),
    }


if __name__ == "__main__":
    dsn, org, accounts_text, concurrency, seconds, run, day = sys.argv[1:8]
    result = uvloop.run(
        main(
            dsn,
            int(org),
            [int(a) for a in accounts_text.split(",")],
            int(concurrency),
            float(seconds),
            run,
            dt.date.fromisoformat(day),
        )
    )
    print("CEILING_JSON " + json.dumps(result))
