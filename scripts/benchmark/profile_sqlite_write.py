"""CPU per exchange written through HTTP on SQLite, in one process, with an optional profile.

Builds the app (``timebank.app.create_app``) on a fresh SQLite file with the
service's settings, seeds one organisation, signs in, then sends ``--writes``
``POST /api/v1/orgs/{org}/exchanges`` one after another through
``httpx.ASGITransport`` (no sockets, no server process). It prints the process
CPU time per write (``time.process_time``: every thread, so aiosqlite's included)
and the wall time, and the load average, so a change can be measured before and
after on the same machine in the same minute.

``--direct`` calls ``ledger.post_exchange`` instead (the ledger's share of the cost).
``--profile`` runs the writes under yappi (every thread, CPU clock) and prints the
functions with the most own time and the most time including callees; ``--sql``
counts the calls handed to aiosqlite's thread per write, by kind and statement
(each call is a wait for the event loop to come back to this request: SQLAlchemy's
adapter makes four per statement, the hot path's statements one).

    .venv/bin/python -m scripts.benchmark.profile_sqlite_write --writes 400
    .venv/bin/python -m scripts.benchmark.profile_sqlite_write --writes 200 --profile  # needs yappi
"""

import argparse
import datetime as dt
import logging
import os
import tempfile
import time
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import aiosqlite
import httpx
import uvloop

from scripts.benchmark.sqlite_and_pages import PASSWORD, TIMEZONE, seed_organisation
from timebank import ledger
from timebank.app import create_app
from timebank.config import Settings
from timebank.db import create_database
from timebank.db.migrate import upgrade


async def drive(url: str, args: argparse.Namespace) -> None:
    seeded = await seed_organisation(url, members=50)
    db = create_database(url)
    calls: Counter[str] = Counter()
    if args.sql:
        _count_thread_calls(calls)

    # The client's own log line per request is not the service's cost.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app = create_app(Settings(database_url=url, environment="development"), database=db)
    day = dt.datetime.now(ZoneInfo(TIMEZONE)).date().isoformat()
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            signed_in = await client.post(
                "/api/v1/auth/token", json={"username": seeded.staff_username, "password": PASSWORD}
            )
            signed_in.raise_for_status()
            headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
            path = f"/api/v1/orgs/{seeded.slug}/exchanges"
            accounts = seeded.accounts

            async def write(n: int) -> None:
                giver, receiver = accounts[n % len(accounts)], accounts[(n * 7 + 1) % len(accounts)]
                if giver == receiver:
                    receiver = accounts[(n + 1) % len(accounts)]
                body = {
                    "giver_account_id": giver,
                    "receiver_account_id": receiver,
                    "minutes": 30,
                    "occurred_on": day,
                    "description": "benchmark",
                }
                if args.direct:
                    await ledger.post_exchange(
                        db,
                        seeded.org_id,
                        giver_account_id=giver,
                        receiver_account_id=receiver,
                        minutes=30,
                        occurred_on=dt.date.fromisoformat(day),
                        description="benchmark",
                        recorded_by=None,
                        idempotency_key=f"k-{n}",
                    )
                    return
                response = await client.post(path, json=body, headers={**headers, "Idempotency-Key": f"k-{n}"})
                assert response.status_code == 201, response.text

            for n in range(args.warmup):
                await write(-1 - n)
            calls.clear()
            profiler = _start_profile() if args.profile else None
            cpu, wall = time.process_time(), time.perf_counter()
            for n in range(args.writes):
                await write(n)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if profiler is not None:
                _print_profile(profiler, args.top)
    await db.dispose()
    print(
        f"{args.writes} writes: {cpu / args.writes * 1000:.2f} ms CPU/write, "
        f"{wall / args.writes * 1000:.2f} ms wall/write, load average {os.getloadavg()[0]:.2f}"
    )
    if args.sql:
        per_write = {kind: round(count / args.writes, 2) for kind, count in calls.most_common()}
        print(f"calls to aiosqlite's thread per write: {sum(calls.values()) / args.writes:.1f} {per_write}")


def _count_thread_calls(calls: Counter[str]) -> None:
    """Count every call aiosqlite hands to its connection's thread (``Connection._execute``),
    by the function called and the statement's first word."""
    original = aiosqlite.Connection._execute

    async def counted(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        kind = getattr(fn, "__name__", "call").lstrip("_")
        if args and isinstance(args[0], str):
            kind += " " + args[0].split(None, 1)[0].upper()
        calls[kind] += 1
        return await original(self, fn, *args, **kwargs)

    aiosqlite.Connection._execute = counted  # type: ignore[method-assign]


def _start_profile():  # type: ignore[no-untyped-def]
    import yappi

    yappi.set_clock_type("cpu")
    yappi.start(builtins=False)
    return yappi


def _print_profile(yappi, top: int) -> None:  # type: ignore[no-untyped-def]
    yappi.stop()
    stats = yappi.get_func_stats()
    by_package: Counter[str] = Counter()
    for item in stats:
        if "site-packages/" in item.module:
            by_package[item.module.split("site-packages/")[-1].split("/")[0]] += item.tsub
        else:
            by_package["timebank" if "/timebank/" in item.module else "standard library"] += item.tsub
    print("\n-- own time by package (seconds over all writes)")
    for package, seconds in by_package.most_common(12):
        print(f"{seconds:8.3f}  {package}")
    for sort, label in (("tsub", "own time"), ("ttot", "time including callees")):
        print(f"\n-- top {top} by {label} (seconds over all writes)")
        for item in stats.sort(sort)[:top]:
            where = f"{item.module.split('site-packages/')[-1]}:{item.lineno}"
            print(f"{item.tsub:8.3f} {item.ttot:8.3f} {item.ncall:8d}  {where} {item.name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writes", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--profile", action="store_true", help="profile with yappi (pip install yappi)")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--direct", action="store_true", help="call ledger.post_exchange, not the HTTP API")
    parser.add_argument("--sql", action="store_true", help="count the calls to aiosqlite's thread per write")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="timebank-profile-sqlite-"))
    url = f"sqlite+aiosqlite:///{workdir / 'timebank.sqlite3'}"
    upgrade(url)
    # uvloop, as uvicorn picks when it is installed (it is a dependency of the service).
    uvloop.run(drive(url, args))


if __name__ == "__main__":
    main()
