"""Drill: stop and start PostgreSQL again and again during a load of exchanges; never restart the service.

While the database is down the service must answer 503 on /ready and on writes:
never a 500, never slower than the request timeout. Within ``--recovery-limit``
seconds of the database's return a write must succeed again, served by the same
server process. And nothing acknowledged may be lost: the same audit as the
server-kill drill, and ``timebank verify``. Exit status 0 when all holds.

    scripts/drill-database-restart                        # 2,000 exchanges, 16 clients, 3 restarts
    scripts/drill-database-restart --exchanges 50000 --clients 64 --restarts 10 --down-seconds 5

PostgreSQL runs in a private throwaway cluster (``initdb`` in a scratch
directory, on a free loopback port), so the drill never stops a server anyone
else uses. Stops alternate between ``fast`` (open transactions rolled back) and
``immediate`` (as in a crash; the database recovers from its log on start).
"""

import argparse
import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from scripts.drills import postgres
from scripts.drills.audit import LedgerAudit, audit_ledger
from scripts.drills.live_server import SeededOrg, ServerProcess, seed_organisation
from scripts.drills.load import ExchangeLoad, HttpTally, RetryPolicy, Write, add_load_options, exchange, send
from scripts.drills.report import DrillReport

PROBE_INTERVAL_SECONDS = 0.2
ONE_ATTEMPT = RetryPolicy(max_attempts=1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="scripts/drill-database-restart",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_load_options(parser, exchanges=2000, clients=16)
    faults = parser.add_argument_group("faults")
    faults.add_argument("--restarts", type=int, default=3, help="times to stop and start PostgreSQL (default 3)")
    faults.add_argument("--down-seconds", type=float, default=3.0, help="how long it stays down (default 3)")
    faults.add_argument("--stop-mode", choices=["fast", "immediate", "both"], default="both")
    faults.add_argument(
        "--recovery-limit", type=float, default=5.0, help="seconds from its return to a successful write (default 5)"
    )
    faults.add_argument("--pg-bin", type=Path, default=None, help="directory of initdb and pg_ctl")
    args = parser.parse_args(argv)
    if args.seed is None:
        args.seed = random.randrange(1_000_000)
    return args


@dataclass
class Outages:
    """What the service answered while the database was down, and how soon it worked again."""

    ready: Counter[int] = field(default_factory=Counter)
    ready_unanswered: int = 0
    slowest_ready: float = 0.0
    writes: HttpTally = field(default_factory=HttpTally)
    # Sent and answered while the database was down: none of them may be in the ledger.
    probe_writes: list[Write] = field(default_factory=list)
    recovery_probes: list[Write] = field(default_factory=list)
    recovery_seconds: list[float | None] = field(default_factory=list)
    stop_modes: Counter[str] = field(default_factory=Counter)


async def probe_while_down(
    http: httpx.AsyncClient, org: SeededOrg, giver: int, receiver: int, seconds: float, outages: Outages
) -> None:
    """For ``seconds``, ask /ready and post a write, over and over; record every answer."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        asked = time.monotonic()
        try:
            ready = await http.get("/ready")
        except httpx.TransportError:
            outages.ready_unanswered += 1
        else:
            outages.ready[ready.status_code] += 1
            outages.slowest_ready = max(outages.slowest_ready, time.monotonic() - asked)
        write = await send(http, exchange(org, giver, receiver, 1), org.headers, ONE_ATTEMPT, outages.writes)
        outages.probe_writes.append(write)
        await asyncio.sleep(PROBE_INTERVAL_SECONDS)


async def time_to_recover(
    http: httpx.AsyncClient, org: SeededOrg, giver: int, receiver: int, give_up_after: float, outages: Outages
) -> float | None:
    """Seconds until one write (retried with its key) is acknowledged; None if it never is."""
    write = exchange(org, giver, receiver, 1)
    outages.recovery_probes.append(write)
    began = time.monotonic()
    while time.monotonic() - began < give_up_after:
        await send(http, write, org.headers, ONE_ATTEMPT, HttpTally())
        if write.acknowledged:
            return time.monotonic() - began
        await asyncio.sleep(0.05)
    return None


async def run_drill(
    args: argparse.Namespace, cluster: postgres.PrivateCluster, database_url: str, workdir: Path
) -> tuple[list[str], list[tuple[str, object]], list[str]]:
    rng = random.Random(args.seed)
    outages = Outages()
    with ServerProcess(database_url, workdir, workers=args.workers) as server:
        server.migrate()
        server.start()
        org = seed_organisation(server, members=args.accounts + 2, min_balance_hours=args.min_balance_hours)
        *load_accounts, probe_a, probe_b = org.account_ids
        load = ExchangeLoad(
            server.base_url,
            org,
            exchanges=args.exchanges,
            clients=args.clients,
            rng=rng,
            account_ids=load_accounts,
            policy=RetryPolicy(request_timeout=args.request_timeout),
            time_limit=args.time_limit,
        )
        pid = server.pid
        began = time.monotonic()
        running = asyncio.create_task(load.run())
        try:
            async with httpx.AsyncClient(base_url=server.base_url, timeout=args.request_timeout) as http:
                points = sorted(rng.randint(1, max(args.exchanges - args.clients, 1)) for _ in range(args.restarts))
                for cycle, point in enumerate(points):
                    if not await load.wait_for_progress(point):
                        break
                    mode = args.stop_mode if args.stop_mode != "both" else ("fast", "immediate")[cycle % 2]
                    await asyncio.to_thread(cluster.stop, mode)
                    outages.stop_modes[mode] += 1
                    giver, receiver = (probe_a, probe_b) if cycle % 2 else (probe_b, probe_a)
                    await probe_while_down(http, org, giver, receiver, args.down_seconds, outages)
                    await asyncio.to_thread(cluster.start)
                    outages.recovery_seconds.append(
                        await time_to_recover(http, org, giver, receiver, max(30.0, args.recovery_limit), outages)
                    )
            await running
        finally:
            running.cancel()
        elapsed = time.monotonic() - began
        same_process = server.pid == pid and server.starts == 1
        verified = server.verify()
    # The probes answered while the database was down are left out: were one in the
    # ledger, the audit would name it unexpected, as well as the check in ``judge``.
    audit = await audit_ledger(database_url, org.slug, [*load.writes, *outages.recovery_probes], verified)
    return judge(args, load, outages, audit, restarts_needed=0 if same_process else server.starts - 1, elapsed=elapsed)


def judge(
    args: argparse.Namespace,
    load: ExchangeLoad,
    outages: Outages,
    audit: LedgerAudit,
    *,
    restarts_needed: int,
    elapsed: float,
) -> tuple[list[str], list[tuple[str, object]], list[str]]:
    """The drill's problems, figures and notes."""
    problems = list(audit.problems)
    recorded_while_down = [w.key for w in outages.probe_writes if w.key in audit.keys_in_ledger]
    recovered = [s for s in outages.recovery_seconds if s is not None]
    answered_while_down = {
        **{f"/ready {status}": n for status, n in outages.ready.items()},
        **{f"write {status}": n for status, n in outages.writes.by_status.items()},
    }
    not_503 = sum(n for answer, n in answered_while_down.items() if not answer.endswith(" 503"))
    unanswered_while_down = outages.ready_unanswered + outages.writes.timeouts + outages.writes.connection_errors
    tally = load.tally
    figures: list[tuple[str, object]] = [
        ("operations (exchanges)", len(load.writes)),
        ("HTTP requests sent by the load", tally.requests),
        ("faults injected (database stops)", sum(outages.stop_modes.values())),
        ("stop modes", dict(outages.stop_modes)),
        ("answers while the database was down", answered_while_down),
        ("  not 503 (must be 0)", not_503),
        ("  unanswered (must be 0)", unanswered_while_down),
        ("  slowest answer (s)", max(outages.slowest_ready, outages.writes.slowest_answer)),
        ("load answers by status", dict(sorted(tally.by_status.items()))),
        ("server errors (5xx other than 503)", tally.server_errors + outages.writes.server_errors),
        ("slowest answer under load (s)", tally.slowest_answer),
        ("answers slower than the timeout", tally.timeouts),
        ("connections refused or reset", tally.connection_errors),
        ("seconds from return to a successful write", [_rounded(s) for s in outages.recovery_seconds]),
        ("service restarts needed", restarts_needed),
        ("probe writes answered while down", len(outages.probe_writes)),
        ("  recorded in the ledger (must be 0)", len(recorded_while_down)),
        *audit.figures(),
        ("seconds under load", elapsed),
    ]
    if len(outages.recovery_seconds) < args.restarts:
        problems.append(f"only {len(outages.recovery_seconds)} of {args.restarts} restarts happened during the load")
    if not_503:
        problems.append(f"answers while the database was down were not all 503: {answered_while_down}")
    if unanswered_while_down:
        problems.append(f"{unanswered_while_down} requests got no answer while the database was down")
    if tally.server_errors or outages.writes.server_errors:
        problems.append(f"5xx other than 503 under load: {dict(tally.by_status)}")
    if tally.timeouts:
        problems.append(f"{tally.timeouts} requests got no answer within {args.request_timeout} s")
    if tally.connection_errors:
        problems.append(f"{tally.connection_errors} connections were refused or reset: the service went down")
    if len(recovered) < len(outages.recovery_seconds) or any(s > args.recovery_limit for s in recovered):
        problems.append(f"recovery took longer than {args.recovery_limit} s: {outages.recovery_seconds}")
    if restarts_needed:
        problems.append("the service had to be restarted")
    if recorded_while_down:
        problems.append(f"writes answered 503 while the database was down are in the ledger: {recorded_while_down}")
    if audit.unanswered:
        problems.append(f"{audit.unanswered} writes got no definite answer despite retries")
    for write in load.writes:
        if write.refused and not write.is_insufficient_balance:
            problems.append(f"{write.key} refused with {write.status}: {write.refusal}")
    notes = [f"landed without an answer, then replayed: {line}" for line in audit.landed_unanswered]
    return problems, figures, notes


def _rounded(seconds: float | None) -> float | None:
    return round(seconds, 2) if seconds is not None else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="timebank-drill-db-"))
    workdir.chmod(0o755)  # the cluster inside runs as postgres
    cluster = postgres.PrivateCluster(workdir / "postgres", bindir=args.pg_bin)
    report = DrillReport(
        f"Database-restart drill: {args.exchanges} exchanges from {args.clients} clients, "
        f"{args.restarts} restarts of {args.down_seconds} s, seed {args.seed}"
    )
    try:
        cluster.init()
        cluster.start()
        database_url = postgres.create_database(cluster.server_url)
        report.problems, report.figures, report.notes = asyncio.run(run_drill(args, cluster, database_url, workdir))
    finally:
        cluster.stop_if_running()
    return report.finish(workdir, report_json=args.report_json, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
