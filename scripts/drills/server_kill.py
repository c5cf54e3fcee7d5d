"""Drill: SIGKILL the server again and again during a load of exchanges, restarting it each time.

Afterwards every acknowledged exchange is in the ledger exactly once, under the id
it was acknowledged with; nothing else is (every transaction carries the key of
an exchange that was sent and not refused); every balance is what those
exchanges make; and ``timebank verify`` passes. Exit status 0 when all holds.

    scripts/drill-server-kill                                   # 2,000 exchanges, 16 clients, 5 kills
    scripts/drill-server-kill --exchanges 100000 --clients 64 --kills 20
    scripts/drill-server-kill --database sqlite                 # the embedded database

By default the ledger is a scratch database on the PostgreSQL server at
$TIMEBANK_TEST_POSTGRES_URL (postgresql://postgres@127.0.0.1:5432), dropped
afterwards; ``--database-url`` uses a database of your own instead.
"""

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scripts.drills import postgres
from scripts.drills.audit import audit_ledger
from scripts.drills.live_server import ServerProcess, seed_organisation
from scripts.drills.load import ExchangeLoad, RetryPolicy, add_load_options
from scripts.drills.report import DrillReport


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/drill-server-kill", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_load_options(parser, exchanges=2000, clients=16)
    faults = parser.add_argument_group("faults")
    faults.add_argument("--kills", type=int, default=5, help="times to SIGKILL the server (default 5)")
    where = parser.add_argument_group("database")
    where.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    where.add_argument("--postgres-server", default=postgres.DEFAULT_SERVER_URL, help="server for the scratch database")
    where.add_argument("--database-url", default=None, help="use this database (migrated first), not a scratch one")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.randrange(1_000_000)
    return args


async def run_drill(args: argparse.Namespace, database_url: str, workdir: Path) -> DrillReport:
    rng = random.Random(args.seed)
    with ServerProcess(database_url, workdir, workers=args.workers) as server:
        server.migrate()
        restarts = [server.start()]
        org = seed_organisation(server, members=args.accounts, min_balance_hours=args.min_balance_hours)
        load = ExchangeLoad(
            server.base_url,
            org,
            exchanges=args.exchanges,
            clients=args.clients,
            rng=rng,
            policy=RetryPolicy(request_timeout=args.request_timeout),
            time_limit=args.time_limit,
        )
        began = time.monotonic()
        running = asyncio.create_task(load.run())
        try:
            # Kill at random points spread over the load, each a random moment into a request.
            for point in sorted(rng.randint(1, max(args.exchanges - args.clients, 1)) for _ in range(args.kills)):
                if not await load.wait_for_progress(point):
                    break
                await asyncio.sleep(rng.uniform(0, 0.05))
                server.kill()
                await asyncio.sleep(rng.uniform(0, 0.5))
                restarts.append(await asyncio.to_thread(server.start))
            await running
        finally:
            running.cancel()
        elapsed = time.monotonic() - began
        verified = server.verify()
    audit = await audit_ledger(database_url, org.slug, load.writes, verified)

    tally = load.tally
    report = DrillReport(
        f"Server-kill drill: {args.database}, {args.exchanges} exchanges from {args.clients} clients, "
        f"{args.kills} kills, seed {args.seed}"
    )
    report.figures = [
        ("operations (exchanges)", len(load.writes)),
        ("HTTP requests sent", tally.requests),
        ("faults injected (SIGKILLs)", server.kills),
        ("restarts", server.starts - 1),
        ("slowest start to ready (s)", max(restarts)),
        ("connections refused or reset", tally.connection_errors),
        ("slowest answer (s)", tally.slowest_answer),
        ("answers slower than the timeout", tally.timeouts),
        ("server errors (5xx other than 503)", tally.server_errors),
        *audit.figures(),
        ("refusals other than below-minimum", sum(w.refused and not w.is_insufficient_balance for w in load.writes)),
        ("seconds under load", elapsed),
        ("acknowledged writes per second", audit.acknowledged / elapsed if elapsed else 0.0),
    ]
    report.problems = audit.problems
    report.notes = [f"landed without an answer, then replayed: {line}" for line in audit.landed_unanswered]
    if server.kills < args.kills:
        report.problems.append(f"only {server.kills} of {args.kills} kills happened before the load ended")
    if tally.server_errors:
        report.problems.append(f"{tally.server_errors} answers were 5xx other than 503: {dict(tally.by_status)}")
    if audit.unanswered:
        report.problems.append(f"{audit.unanswered} exchanges got no definite answer despite retries")
    for write in load.writes:
        if write.refused and not write.is_insufficient_balance:
            report.problems.append(f"{write.key} refused with {write.status}: {write.refusal}")
    return report


@contextmanager
def ledger_database(args: argparse.Namespace, workdir: Path) -> Iterator[str]:
    if args.database_url:
        yield args.database_url
    elif args.database == "sqlite":
        yield f"sqlite+aiosqlite:///{workdir / 'drill.sqlite3'}"
    else:
        with postgres.scratch_database(args.postgres_server, keep=args.keep) as url:
            yield url


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="timebank-drill-kill-"))
    with ledger_database(args, workdir) as database_url:
        report = asyncio.run(run_drill(args, database_url, workdir))
    exit_code = report.finish(workdir, report_json=args.report_json, keep=args.keep)
    if args.keep:
        print(f"Database kept: {database_url}")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
