"""How reports scale with history: a benchmark, not a timed test. See docs/performance.md.

For each database (PostgreSQL and SQLite) it builds one organisation of ``--members``
members with ``--postings`` postings over ``--years`` years up to today, bulk-inserted
(COPY on PostgreSQL, one executemany on SQLite) with every balance, version and
running balance as the ledger would have written them; runs ``timebank verify`` on
it; then times, median of ``--repeat`` runs:

- the monthly report of the current month (computed) and of last month;
- the report of the last twelve months (a range);
- the export of the whole history as CSV, streamed and read to the end;

first with no month closed, then after closing every ended month in order (also timed),
when last month's report is the stored one and every other report starts from the
balances stored at the last close. Times are of the service functions the API handlers
call, with the report's JSON encoding included.
"""

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import asyncpg

from scripts.benchmark.measure import POSTGRES_SERVER
from timebank.db import Database, create_database
from timebank.db.migrate import upgrade
from timebank.models import AccountKind
from timebank.orgs.service import create_organisation
from timebank.reports import csv
from timebank.reports.closing import close_month
from timebank.reports.exports import ledger_export_rows
from timebank.reports.service import Period, add_months, monthly_report

TIMEZONE = "Europe/London"
AMOUNTS = [15, 30, 45, 60, 90, 120, 180, 240]


@dataclass
class Generated:
    """The organisation's history, rows ready to insert, in recording (id) order."""

    members: list[tuple] = field(default_factory=list)
    accounts: list[tuple] = field(default_factory=list)
    transactions: list[tuple] = field(default_factory=list)
    postings: list[tuple] = field(default_factory=list)
    balances: dict[int, tuple[int, int]] = field(default_factory=dict)  # account id -> (balance, version)


def generate(
    *, seed: int, members: int, postings: int, years: int, org_id: int, ids: dict[str, int], categories: list[int]
) -> Generated:
    """A plausible history: opening balances, exchanges, service hours, group sessions, the pot, corrections."""
    rng = random.Random(seed)
    today = dt.datetime.now(ZoneInfo(TIMEZONE)).date()
    start = add_months(today.replace(day=1), -12 * years)
    days = (today - start).days
    out = Generated()
    agency, pot = ids["agency"], ids["pot"]
    next_member, next_account = ids["member"], ids["account"]
    joined: list[tuple[dt.date, int]] = []
    left: dict[int, dt.date] = {}
    for n in range(members):
        joined_on = start if n < members * 0.6 else start + dt.timedelta(days=rng.randrange(days))
        member_id, account_id = next_member + n, next_account + n
        out.members.append(
            (member_id, org_id, f"Member {n:04d} {rng.choice(['Ash', 'Birch', 'Oak', 'Elm'])}", joined_on)
        )
        out.accounts.append((account_id, org_id, member_id))
        joined.append((joined_on, account_id))
        if rng.random() < 0.1:  # some stop coming: dormant members in later reports
            left[account_id] = joined_on + dt.timedelta(days=rng.randrange(60, 2 * 365))
    balance = {agency: 0, pot: 0, **{a: 0 for _, a in joined}}
    version = dict.fromkeys(balance, 0)
    txn_id, posting_id = ids["transaction"], ids["posting"]
    reversible: list[tuple[int, list[tuple[int, int]], int | None]] = []
    reversed_ids: set[int] = set()

    def post(kind: str, on: dt.date, legs: list[tuple[int, int]], category: int | None, reverses: int | None) -> None:
        nonlocal txn_id, posting_id
        recorded = dt.datetime.combine(on, dt.time(9), dt.UTC) + dt.timedelta(minutes=rng.randrange(600))
        out.transactions.append(
            (txn_id, org_id, kind, on, recorded, f"{kind} {txn_id}", category, f"bench-{txn_id}", "0" * 64, reverses)
        )
        for account_id, minutes in legs:
            balance[account_id] += minutes
            version[account_id] += 1
            out.postings.append(
                (posting_id, org_id, txn_id, account_id, minutes, balance[account_id], version[account_id], on)
            )
            posting_id += 1
        if kind in ("exchange", "group") and rng.random() < 0.3:
            reversible.append((txn_id, legs, category))
            del reversible[:-50]
        txn_id += 1

    for on, account_id in sorted(joined):
        post("opening_balance", on, [(account_id, 600), (agency, -600)], None, None)
    # The rest spread evenly over the days up to today, a few recorded up to a week late.
    first_posting = len(out.postings)
    present: list[int] = []
    present_on = None
    while len(out.postings) < postings:
        progress = (len(out.postings) - first_posting) / (postings - first_posting)
        day = start + dt.timedelta(days=round(progress * days))
        on = max(start, day - dt.timedelta(days=rng.choice([0, 0, 0, 1, 7])))
        if day != present_on:  # who is around that week
            settled = max(start, day - dt.timedelta(days=7))
            present = [a for j, a in joined if j <= settled and left.get(a, dt.date.max) > day]
            present_on = day
        if len(present) < 4:
            continue
        minutes = rng.choice(AMOUNTS)
        roll = rng.random()
        near_end = postings - len(out.postings) < 4
        if roll < 0.80 or near_end:
            giver, receiver = rng.sample(present, 2)
            post("exchange", on, [(giver, minutes), (receiver, -minutes)], rng.choice([*categories, None]), None)
        elif roll < 0.88:
            member = rng.choice(present)
            legs = (
                [(agency, minutes), (member, -minutes)]
                if rng.random() < 0.5
                else [(member, minutes), (agency, -minutes)]
            )
            post("exchange", on, legs, rng.choice(categories), None)
        elif roll < 0.93:
            attendees = rng.sample(present, 3)
            giver = agency if rng.random() < 0.5 else rng.choice([a for a in present if a not in attendees])
            post("group", on, [(giver, 3 * minutes)] + [(a, -minutes) for a in attendees], rng.choice(categories), None)
        elif roll < 0.97 or balance[pot] < minutes:
            member = rng.choice(present)
            post("donation", on, [(member, -minutes), (pot, minutes)], None, None)
        elif roll < 0.995:
            post("grant", on, [(pot, -minutes), (rng.choice(present), minutes)], None, None)
        elif reversible:
            original, legs, category = reversible.pop(rng.randrange(len(reversible)))
            if original not in reversed_ids:
                reversed_ids.add(original)
                post("reversal", on, [(a, -m) for a, m in legs], category, original)
    out.balances = {a: (balance[a], version[a]) for a in balance}
    return out


# --------------------------------------------------------------------------- loading


async def _next_ids(db: Database) -> dict[str, int]:
    async with db.autocommit() as conn:
        found = {}
        for name, table in (
            ("member", "members"),
            ("account", "accounts"),
            ("transaction", "transactions"),
            ("posting", "postings"),
        ):
            found[name] = int((await conn.exec_driver_sql(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")).scalar())
    return found


async def build(db: Database, url: str, args: argparse.Namespace) -> tuple[int, Generated]:
    slug = f"bench-{uuid.uuid4().hex[:8]}"
    organisation = await create_organisation(
        db, slug=slug, name="Bench centre", timezone=TIMEZONE, min_balance_minutes=-10_000 * 60, changed_by=None
    )
    assert organisation.id is not None
    async with db.autocommit() as conn:
        shared = dict(
            (
                await conn.exec_driver_sql(
                    f"SELECT kind, id FROM accounts WHERE organisation_id = {organisation.id} AND kind != 'member'"
                )
            ).all()
        )
        categories = [
            row[0]
            for row in await conn.exec_driver_sql(
                f"SELECT id FROM categories WHERE organisation_id = {organisation.id}"
            )
        ]
    ids = await _next_ids(db) | {"agency": shared[AccountKind.AGENCY.value], "pot": shared[AccountKind.POT.value]}
    started = time.perf_counter()
    history = generate(
        seed=args.seed, members=args.members, postings=args.postings, years=args.years, org_id=organisation.id,
        ids=ids, categories=categories,
    )  # fmt: skip
    print(f"  generated {len(history.postings):,} postings in {len(history.transactions):,} transactions "
          f"({time.perf_counter() - started:.1f} s)")  # fmt: skip
    started = time.perf_counter()
    if db.is_postgres:
        await _load_postgres(url, history)
    else:
        _load_sqlite(url, history)
    print(f"  bulk-inserted in {time.perf_counter() - started:.1f} s")
    return organisation.id, history


def _account_rows(history: Generated) -> tuple[list[tuple], list[tuple]]:
    accounts = [
        (account_id, org_id, "member", member_id, *history.balances[account_id], -10_000 * 60)
        for account_id, org_id, member_id in history.accounts
    ]
    shared = [(b, v, a) for a, (b, v) in history.balances.items() if a not in {row[0] for row in history.accounts}]
    return accounts, shared


async def _load_postgres(url: str, history: Generated) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        async with conn.transaction():
            # Bulk load: no per-row triggers or foreign-key checks; `timebank verify` checks everything after.
            await conn.execute("SET LOCAL session_replication_role = replica")
            now = dt.datetime.now(dt.UTC)
            await conn.copy_records_to_table(
                "members",
                records=[(m, o, "member", n, j, True, now) for m, o, n, j in history.members],
                columns=["id", "organisation_id", "role", "display_name", "joined_on", "is_active", "created_at"],
            )
            accounts, shared = _account_rows(history)
            await conn.copy_records_to_table(
                "accounts",
                records=[(*row, True, now) for row in accounts],
                columns=["id", "organisation_id", "kind", "member_id", "balance_minutes", "version",
                         "min_balance_minutes", "is_active", "created_at"],
            )  # fmt: skip
            await conn.executemany("UPDATE accounts SET balance_minutes = $1, version = $2 WHERE id = $3", shared)
            await conn.copy_records_to_table(
                "transactions",
                records=history.transactions,
                columns=["id", "organisation_id", "kind", "occurred_on", "recorded_at", "description", "category_id",
                         "idempotency_key", "request_fingerprint", "reverses_id"],
            )  # fmt: skip
            await conn.copy_records_to_table(
                "postings",
                records=history.postings,
                columns=["id", "organisation_id", "transaction_id", "account_id", "minutes", "balance_after",
                         "account_version", "occurred_on"],
            )  # fmt: skip
            for table in ("members", "accounts", "transactions", "postings"):
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
                )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


def _load_sqlite(url: str, history: Generated) -> None:
    conn = sqlite3.connect(url.split("///", 1)[1], isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("BEGIN")
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")
        conn.executemany(
            "INSERT INTO members (id, organisation_id, role, display_name, joined_on, is_active, created_at) "
            "VALUES (?, ?, 'member', ?, ?, 1, ?)",
            [(m, o, n, j.isoformat(), now) for m, o, n, j in history.members],
        )
        accounts, shared = _account_rows(history)
        conn.executemany(
            "INSERT INTO accounts (id, organisation_id, kind, member_id, balance_minutes, version, "
            "min_balance_minutes, is_active, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)",
            [(*row, now) for row in accounts],
        )
        conn.executemany("UPDATE accounts SET balance_minutes = ?, version = ? WHERE id = ?", shared)
        conn.executemany(
            "INSERT INTO transactions (id, organisation_id, kind, occurred_on, recorded_at, description, category_id, "
            "idempotency_key, request_fingerprint, reverses_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (t[0], t[1], t[2], t[3].isoformat(), t[4].replace(tzinfo=None).isoformat(sep=" "), *t[5:])
                for t in history.transactions
            ],
        )
        conn.executemany(
            "INSERT INTO postings (id, organisation_id, transaction_id, account_id, minutes, balance_after, "
            "account_version, occurred_on) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(*p[:7], p[7].isoformat()) for p in history.postings],
        )
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
    finally:
        conn.close()


# --------------------------------------------------------------------------- measuring


async def timed(work: Callable[[], Awaitable[object]], repeat: int) -> tuple[float, float]:
    """Median and fastest wall time of ``work`` in milliseconds (the machine may be shared)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        await work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), min(times)


async def measure(db: Database, organisation_id: int, repeat: int, export: bool) -> dict[str, tuple[float, float]]:
    today = dt.datetime.now(ZoneInfo(TIMEZONE)).date()
    this_month = today.replace(day=1)
    last_month = add_months(this_month, -1)

    async def report(period: Period) -> None:
        (await monthly_report(db, organisation_id, period)).model_dump_json(by_alias=True)

    async def export_all() -> None:
        size = 0
        async for chunk in csv.stream(ledger_export_rows(db, organisation_id, dt.date(1970, 1, 1), today)):
            size += len(chunk)
        assert size > 0

    results = {
        "monthly report, this month (open)": await timed(lambda: report(Period(this_month, this_month)), repeat),
        "monthly report, last month": await timed(lambda: report(Period(last_month, last_month)), repeat),
        "range report, last 12 months": await timed(
            lambda: report(Period(add_months(this_month, -11), this_month)), repeat
        ),
    }
    if export:
        results["ledger export, whole history, CSV"] = await timed(export_all, 1)
    return results


async def close_months(db: Database, organisation_id: int, first: dt.date, before: dt.date) -> tuple[int, float]:
    """Close every month from ``first`` up to (not including) ``before``, in order."""
    month = first
    started = time.perf_counter()
    closed = 0
    while month < before:
        await close_month(db, organisation_id, month, closed_by=None, idempotency_key=f"bench-close-{month}")
        closed += 1
        month = add_months(month, 1)
    return closed, time.perf_counter() - started


def verify(url: str) -> float:
    started = time.perf_counter()
    env = {**os.environ, "TIMEBANK_DATABASE_URL": url}
    done = subprocess.run([sys.executable, "-m", "timebank", "verify"], env=env, capture_output=True, text=True)
    print("  timebank verify:", (done.stdout or done.stderr).strip().splitlines()[-1])
    if done.returncode != 0:
        print(done.stdout, done.stderr)
        raise SystemExit("timebank verify failed on the generated ledger")
    return time.perf_counter() - started


async def run_one(backend: str, args: argparse.Namespace) -> dict:
    if backend == "postgresql":
        name = f"timebank_bench_reports_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(f"{POSTGRES_SERVER}/postgres")
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        url = f"{POSTGRES_SERVER}/{name}"
    else:
        directory = tempfile.mkdtemp(prefix="timebank-bench-reports-")
        url = f"sqlite+aiosqlite:///{directory}/bench.sqlite3"
    print(f"{backend}: {url}")
    await asyncio.to_thread(upgrade, url)
    db = create_database(url)
    try:
        organisation_id, history = await build(db, url, args)
        verify_seconds = await asyncio.to_thread(verify, url)
        before = await measure(db, organisation_id, args.repeat, export=True)
        this_month = dt.datetime.now(ZoneInfo(TIMEZONE)).date().replace(day=1)
        last_month = add_months(this_month, -1)
        closed, close_seconds = await close_months(
            db, organisation_id, add_months(this_month, -12 * args.years), last_month
        )
        print(f"  closed {closed} months, all but last month, in {close_seconds:.1f} s")
        all_but_last = await measure(db, organisation_id, args.repeat, export=False)
        last_close = await timed(lambda: close_months(db, organisation_id, last_month, this_month), 1)
        closed += 1
        close_seconds += last_close[0] / 1000
        after = await measure(db, organisation_id, args.repeat, export=args.export_after_close)
    finally:
        await db.dispose()
        if backend == "postgresql" and not args.keep:
            admin = await asyncpg.connect(f"{POSTGRES_SERVER}/postgres")
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()
        elif backend == "sqlite" and not args.keep:
            shutil.rmtree(directory, ignore_errors=True)
    return {
        "backend": backend,
        "postings": len(history.postings),
        "transactions": len(history.transactions),
        "members": args.members,
        "verify_seconds": round(verify_seconds, 1),
        "months_closed": closed,
        "close_all_seconds": round(close_seconds, 1),
        "load_average": os.getloadavg(),
        "ms_no_month_closed": _rounded(before),
        "ms_all_but_last_month_closed": _rounded(all_but_last),
        "ms_every_ended_month_closed": _rounded(after),
        "ms_closing_last_month": round(last_close[0], 1),
    }


def _rounded(times: dict[str, tuple[float, float]]) -> dict[str, dict[str, float]]:
    return {label: {"median": round(median, 1), "min": round(fastest, 1)} for label, (median, fastest) in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", choices=["postgresql", "sqlite", "both"], default="both")
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--postings", type=int, default=1_000_000)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=7, help="runs per report timing (median and fastest)")
    parser.add_argument("--seed", type=int, default=20261201)
    parser.add_argument("--export-after-close", action="store_true", help="time the export again after closing")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    args = parser.parse_args()
    print(f"seed {args.seed}; {args.members:,} members, {args.postings:,} postings over {args.years} years")
    backends = ["postgresql", "sqlite"] if args.database == "both" else [args.database]
    results = [asyncio.run(run_one(backend, args)) for backend in backends]
    for result in results:
        print(f"\n{result['backend']}: {result['postings']:,} postings, verify {result['verify_seconds']} s, "
              f"{result['months_closed']} months closed in {result['close_all_seconds']} s")  # fmt: skip
        print(f"  load average at the end: {', '.join(f'{x:.1f}' for x in result['load_average'])}")
        print(f"  closing last month took {result['ms_closing_last_month']:,.1f} ms")
        columns = ("ms_no_month_closed", "ms_all_but_last_month_closed", "ms_every_ended_month_closed")
        print(f"  {'ms, median (fastest) of ' + str(args.repeat):<36}" + "".join(
            f"{title:>24}" for title in ("no month closed", "all but last closed", "all ended closed")
        ))  # fmt: skip
        for label in result["ms_no_month_closed"]:
            cells = []
            for column in columns:
                value = result[column].get(label)
                cells.append("-" if value is None else f"{value['median']:,.1f} ({value['min']:,.1f})")
            print(f"  {label:<36}" + "".join(f"{cell:>24}" for cell in cells))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
