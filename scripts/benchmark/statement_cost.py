"""PostgreSQL's CPU per ledger statement: the bare ``timebank_post``, ``timebank_post_as``, and
the service's whole statement (``POST_STATEMENT``: the caller's check and the names joined).

On a fresh bench database (``--members`` members, ``--history`` past exchanges, with
statistics), each statement is sent by ``--clients`` asyncpg connections for ``--seconds``,
in turn, ``--reps`` times; it prints the calls a second and PostgreSQL's CPU per call (every
backend on the machine, so run it on a quiet one). What the service adds to the ledger
function in the database shows here without HTTP in the way; docs/performance.md (round
eight) has what it found.

``--revision`` migrates the database only that far (it must be 0012 or later, where the
statements exist): the same statements on an earlier schema, for a migration's before and
after in one sitting.

    .venv/bin/python -m scripts.benchmark.statement_cost [--reps 2] [--revision 0012]
"""

import argparse
import asyncio
import datetime as dt
import hashlib
import os
import random
import time

import asyncpg
import uvloop

from scripts.benchmark.ceiling import BARE, exchange_arguments
from scripts.benchmark.measure import POSTGRES_SERVER, postgres_cpu_seconds
from scripts.benchmark.run import create_bench_database, drop_database, seed
from timebank.db.migrate import upgrade
from timebank.ledger.postgres_function import POST_STATEMENT

# timebank_post_as alone: the caller's check in front of the ledger function, no names
# (BARE's arguments, then the caller's id and sign-in version).
POST_AS = (
    "SELECT transaction_id FROM timebank_post_as($9, $10, $1, 'exchange', $2, $3, $4, $5, 'benchmark', NULL, NULL, "
    "$6, $7, $8)"
)


async def one_statement(dsn: str, org_id: int, accounts: list[int], caller: tuple[int, int], which: str, args) -> str:  # type: ignore[no-untyped-def]
    pool = await asyncpg.create_pool(dsn, min_size=args.clients, max_size=args.clients, ssl=False)
    day = dt.date.today()
    calls = 0
    deadline = time.perf_counter() + args.seconds

    async def client(n: int) -> None:
        nonlocal calls
        async with pool.acquire() as conn:
            statement = await conn.prepare({"bare": BARE, "post_as": POST_AS, "service": POST_STATEMENT}[which])
            while time.perf_counter() < deadline:
                giver, receiver = random.sample(accounts, 2)
                key = f"{which}-{n}-{calls}-{random.random()}"
                fingerprint = hashlib.sha256(key.encode()).hexdigest()
                if which == "service":
                    arguments = exchange_arguments(org_id, giver, receiver, day, key, fingerprint, caller)
                else:
                    arguments = exchange_arguments(org_id, giver, receiver, day, key, fingerprint, None)
                    arguments += caller if which == "post_as" else ()
                await statement.fetch(*arguments)
                calls += 1

    cpu_before, began = postgres_cpu_seconds(), time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(args.clients)))
    elapsed, cpu = time.perf_counter() - began, postgres_cpu_seconds() - cpu_before
    await pool.close()
    return f"{which:8} {calls / elapsed:7.0f} calls/s, PostgreSQL {cpu / calls * 1000:.3f} ms of CPU per call"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=POSTGRES_SERVER)
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--history", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--reps", type=int, default=2)
    parser.add_argument("--revision", default="head")
    args = parser.parse_args()
    bench = asyncio.run(create_bench_database(args.postgres))
    try:
        upgrade(bench.dsn, args.revision)
        asyncio.run(seed(bench, args.members, args.history))

        async def staff() -> tuple[int, int]:
            conn = await asyncpg.connect(bench.dsn, ssl=False)
            row = await conn.fetchrow("SELECT id, sign_in_version FROM users WHERE username = $1", bench.staff_username)
            await conn.close()
            return row["id"], row["sign_in_version"]

        caller = asyncio.run(staff())
        for _ in range(args.reps):
            for which in ("bare", "post_as", "service"):
                print(uvloop.run(one_statement(bench.dsn, bench.org_id, bench.accounts[:-1], caller, which, args)))
    finally:
        asyncio.run(drop_database(args.postgres, bench.database))
    print(f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
