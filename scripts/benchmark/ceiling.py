"""The ceiling: the service's own ledger write, from a minimal asyncpg client.

Each call is the statement the service sends for an exchange
(``timebank.ledger.postgres_function.POST_STATEMENT``): ``timebank_post_as`` checks
the caller's sign-in version, then ``timebank_post`` claims the idempotency key, locks
both accounts, inserts the transaction and its two postings and updates both balances,
and the accounts' kinds and names are joined for the answer — with no HTTP, no JSON and
no framework in the way. Whatever the service reaches, as a fraction of this, is what
our own code costs.

``--bare`` sends ``timebank_post`` alone instead (no caller, no names), the ceiling of
the bench before the statement grew those (issue 12, rounds one to seven), so that
figures stay comparable with theirs.

    python -m scripts.benchmark.ceiling DSN ORG_ID ACCOUNTS CONCURRENCY SECONDS RUN DATE CALLER [--bare]
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

from timebank.ledger.postgres_function import POST_STATEMENT

BARE = "SELECT transaction_id FROM timebank_post($1, 'exchange', $2, $3, $4, $5, 'benchmark', NULL, NULL, $6, $7, $8)"
ALLOWED = ["agency,member", "agency,member"]


def exchange_arguments(
    org_id: int, giver: int, receiver: int, day: dt.date, key: str, fingerprint: str, caller: tuple[int, int] | None
) -> tuple:
    """One exchange of 30 minutes, as the arguments of ``BARE`` when ``caller`` is None, else of
    ``POST_STATEMENT`` sent as ``caller`` (user id, sign-in version), who also records it."""
    legs = ([giver, receiver], [30, -30], ALLOWED, day)
    now = dt.datetime.now(dt.UTC)
    if caller is None:
        return (org_id, *legs, key, fingerprint, now)
    user_id, version = caller
    return (org_id, "exchange", *legs, "benchmark", None, user_id, key, fingerprint, now, user_id, version)


async def worker(
    pool: asyncpg.Pool,
    org_id: int,
    accounts: list[int],
    day: dt.date,
    key_prefix: str,
    deadline: float,
    latencies: list[float],
    caller: tuple[int, int] | None,
) -> None:
    """Post exchanges until ``deadline``: as ``caller`` (user id, sign-in version) with the
    service's statement, or with the bare ledger function when ``caller`` is None."""
    sent = 0
    async with pool.acquire() as conn:
        statement = await conn.prepare(BARE if caller is None else POST_STATEMENT)
        while time.perf_counter() < deadline:
            sent += 1
            giver, receiver = random.sample(accounts, 2)
            key = f"{key_prefix}-{sent}"
            fingerprint = hashlib.sha256(f"{giver}:{receiver}:30:{day}:{key}".encode()).hexdigest()
            began = time.perf_counter()
            await statement.fetch(*exchange_arguments(org_id, giver, receiver, day, key, fingerprint, caller))
            latencies.append(time.perf_counter() - began)


async def main(
    dsn: str,
    org_id: int,
    accounts: list[int],
    concurrency: int,
    seconds: float,
    run: str,
    day: dt.date,
    caller_username: str,
    bare: bool,
) -> dict[str, float]:
    # No TLS, as the service connects to a database on the same machine.
    pool = await asyncpg.create_pool(dsn, min_size=concurrency, max_size=concurrency, ssl=False)
    caller = None
    if not bare:
        row = await pool.fetchrow("SELECT id, sign_in_version FROM users WHERE username = $1", caller_username)
        caller = (row["id"], row["sign_in_version"])
    latencies: list[float] = []
    cpu_before = time.process_time()
    began = time.perf_counter()
    deadline = began + seconds
    await asyncio.gather(
        *(worker(pool, org_id, accounts, day, f"{run}-c{n}", deadline, latencies, caller) for n in range(concurrency))
    )
    elapsed = time.perf_counter() - began
    cpu_s = time.process_time() - cpu_before
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
        "client_cpu_s": cpu_s,  # the calls' own, without the interpreter's start and imports
    }


if __name__ == "__main__":
    dsn, org, accounts_text, concurrency, seconds, run, day, caller_username = sys.argv[1:9]
    result = uvloop.run(
        main(
            dsn,
            int(org),
            [int(a) for a in accounts_text.split(",")],
            int(concurrency),
            float(seconds),
            run,
            dt.date.fromisoformat(day),
            caller_username,
            bare="--bare" in sys.argv[9:],
        )
    )
    print("CEILING_JSON " + json.dumps(result))
