"""Measure the service against PostgreSQL's own limits, in one run. See docs/performance.md.

What runs, each phase for ``--seconds``, the whole set ``--runs`` times (medians reported):

- ceiling: the same ledger write from a minimal asyncpg client (``ceiling.py``);
- service writes: ``POST /exchanges`` through HTTP (wrk), over many accounts and over
  four hot ones, at each concurrency of ``--scan`` and at ``--concurrency``;
- service reads: balance reads by 64 paced connections alone, then while writes run, flat out
  and paced;
- pgbench -N (PostgreSQL's simple-update benchmark) at ``--concurrency``;
- the server's memory (RSS per process) throughout, and its time from start to /ready;
- SQLite, the embedded default (``sqlite_run``): one worker on a fresh file, exchange writes
  through HTTP at each of ``--sqlite-scan`` against the SQLite ceiling (``ceiling_sqlite.py``:
  a call to aiosqlite's thread for each statement, and again with each transaction in one call),
  balance reads with writes alongside, then ``timebank verify``;
- pages, on both databases, one worker: the member home GET and the staff "Log an exchange"
  POST, as a browser sends them (``sqlite_and_pages.py``).

``--phases`` picks among postgres, sqlite and pages (all three by default). Every phase's
figures are printed, with the load average, and the JSON summary is written to
``bench-results/``.

Everything runs on this machine: database, server, load generator. The load
generator is wrk (C, event-driven); its CPU use is reported so it can be seen not
to be the bottleneck.
"""

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg

from scripts.benchmark.measure import HERE, POSTGRES_SERVER, ProcessSampler, postgres_cpu_seconds, run_measured, wrk
from scripts.benchmark.sqlite_and_pages import (
    TIMEZONE,
    Seeded,
    pages,
    seed_organisation,
    seed_sqlite_history,
    sign_in,
    sign_in_burst,
)
from scripts.drills.live_server import ServerProcess

ROOT = HERE.parents[1]
PHASES = ("postgres", "sqlite", "pages")
# The bench speaks plain HTTP on loopback, where a client keeps no Secure cookie; behind
# TLS the flag changes nothing the server does.
PLAIN_HTTP_COOKIES = "false"


@dataclass
class Bench:
    server_url: str  # PostgreSQL server, without a database name
    database: str
    seeded: Seeded = field(default_factory=Seeded)

    @property
    def org_id(self) -> int:
        return self.seeded.org_id

    @property
    def slug(self) -> str:
        return self.seeded.slug

    @property
    def accounts(self) -> list[int]:
        return self.seeded.accounts

    @property
    def staff_username(self) -> str:
        return self.seeded.staff_username

    @property
    def dsn(self) -> str:
        return f"{self.server_url}/{self.database}"


# --------------------------------------------------------------------------- set-up


async def create_bench_database(server_url: str) -> Bench:
    bench = Bench(server_url, f"timebank_bench_{uuid.uuid4().hex[:8]}")
    conn = await asyncpg.connect(f"{server_url}/postgres")
    await conn.execute(f'CREATE DATABASE "{bench.database}"')
    await conn.close()
    return bench


async def drop_database(server_url: str, name: str) -> None:
    conn = await asyncpg.connect(f"{server_url}/postgres")
    await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await conn.close()


async def seed(bench: Bench, members: int, history: int) -> None:
    """One organisation, a staff login, ``members`` accounts with room to spend, and history."""
    bench.seeded = await seed_organisation(bench.dsn, members)
    await seed_history(bench, history)
    # Planner statistics, as any live database has. Without history and statistics,
    # connections cache plans made for near-empty tables (sequential scans) and keep
    # them while the tables grow during the run, which measures nothing real.
    conn = await asyncpg.connect(bench.dsn, ssl=False)
    await conn.execute("VACUUM ANALYZE")
    await conn.close()


async def seed_history(bench: Bench, exchanges: int) -> None:
    """Past exchanges, so the ledger tables look like a service that has been running."""
    conn = await asyncpg.connect(bench.dsn, ssl=False)
    statement = await conn.prepare(
        "SELECT transaction_id FROM timebank_post($1, 'exchange', $2, $3, $4, $5, 'history', NULL, NULL, $6, $7, $8)"
    )
    rng = random.Random(1)
    day = dt.datetime.now(ZoneInfo(TIMEZONE)).date()
    for n in range(exchanges):
        giver, receiver = rng.sample(bench.accounts, 2)
        await statement.fetch(
            bench.org_id,
            [giver, receiver],
            [30, -30],
            ["agency,member"] * 2,
            day - dt.timedelta(days=rng.randrange(365)),
            f"history-{n}",
            "0" * 64,
            dt.datetime.now(dt.UTC),
        )
    await conn.close()


def ceiling(
    bench: Bench, accounts: list[int], connections: int, seconds: float, run: str, day: str, *, bare: bool = False
) -> tuple[dict, float]:
    """The ceiling client's figures and its CPU seconds (``ceiling.py``; ``bare``: the ledger
    function alone, as the ceiling was before the service's statement grew)."""
    result, _ = run_measured(
        [
            sys.executable,
            "-m",
            "scripts.benchmark.ceiling",
            bench.dsn,
            str(bench.org_id),
            ",".join(map(str, accounts)),
            str(connections),
            str(seconds),
            run,
            day,
            bench.staff_username,
            *(["--bare"] if bare else []),
        ],
        {"PYTHONPATH": str(ROOT)},
        "CEILING_JSON ",
    )
    return result, result["client_cpu_s"]


def pgbench(server_url: str, connections: int, seconds: float) -> float:
    database = f"timebank_pgbench_{uuid.uuid4().hex[:8]}"
    url = f"{server_url}/{database}"
    subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", database], check=True)
    try:
        subprocess.run(["pgbench", "-i", "-q", "-s", "10", url], check=True, capture_output=True)
        done = subprocess.run(
            ["pgbench", "-N", "-M", "prepared", "-c", str(connections), "-j", "2", "-T", str(int(seconds)), url],
            check=True,
            capture_output=True,
            text=True,
        )
        match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout)
        assert match, done.stdout
        return float(match.group(1))
    finally:
        asyncio.run(drop_database(server_url, database))


# --------------------------------------------------------------------------- one run


def one_run(args: argparse.Namespace, bench: Bench, run_number: int) -> dict:
    """Start the server, measure every phase once, stop it."""
    workdir = Path(tempfile.mkdtemp(prefix="timebank-bench-"))
    server = ServerProcess(
        f"{bench.dsn}",
        workdir,
        workers=args.workers,
        db_pool_size=str(args.pool_size),
        db_max_overflow="0",
    )
    started_in = server.start()
    results: dict = {"start_to_ready_s": started_in}
    token = sign_in(server.base_url, bench.staff_username)
    day = dt.datetime.now(ZoneInfo(TIMEZONE)).date().isoformat()
    nonce = f"r{run_number}-{uuid.uuid4().hex[:6]}"
    many = bench.accounts
    hot = bench.accounts[:4]
    write_env = {"TB_TOKEN": token, "TB_ORG": bench.slug, "TB_DATE": day}
    try:
        with ProcessSampler(server.pid or 0) as sampler:
            wrk(
                "exchanges.lua",
                server.base_url,
                args.concurrency,
                2,
                {**write_env, "TB_ACCOUNTS": ",".join(map(str, many)), "TB_RUN": nonce + "-warm"},
            )
            for connections in sorted({*args.scan, args.concurrency}):
                label = f"c{connections}"
                results[f"ceiling_{label}"], results[f"ceiling_{label}_cpu_s"] = ceiling(
                    bench, many, connections, args.seconds, f"{nonce}-ceiling-{label}", day
                )
                server_cpu = sampler.cpu_seconds()
                pg_cpu = postgres_cpu_seconds()
                results[f"writes_{label}"], results[f"writes_{label}_wrk_cpu_s"] = wrk(
                    "exchanges.lua",
                    server.base_url,
                    connections,
                    args.seconds,
                    {**write_env, "TB_ACCOUNTS": ",".join(map(str, many)), "TB_RUN": f"{nonce}-{label}"},
                )
                results[f"writes_{label}_server_cpu_s"] = sampler.cpu_seconds() - server_cpu
                results[f"writes_{label}_postgres_cpu_s"] = postgres_cpu_seconds() - pg_cpu
            results["ceiling_bare"], _ = ceiling(
                bench, many, args.concurrency, args.seconds, f"{nonce}-ceiling-bare", day, bare=True
            )
            results["ceiling_hot"], _ = ceiling(bench, hot, args.concurrency, args.seconds, f"{nonce}-ceiling-hot", day)
            results["writes_hot"], _ = wrk(
                "exchanges.lua",
                server.base_url,
                args.concurrency,
                args.seconds,
                {**write_env, "TB_ACCOUNTS": ",".join(map(str, hot)), "TB_RUN": f"{nonce}-hot"},
            )
            # The goal's "reads alone": the same 64 paced readers, nothing writing.
            results["reads_alone_paced"], _ = wrk(
                "balances.lua",
                server.base_url,
                args.readers,
                args.seconds,
                {
                    "TB_TOKEN": token,
                    "TB_ORG": bench.slug,
                    "TB_ACCOUNTS": ",".join(map(str, bench.accounts)),
                    "TB_PAUSE_MS": str(args.read_pause_ms),
                },
            )
            results["reads_flat_out"], results["writes_during_reads_flat_out"] = reads_during_writes(
                server.base_url, bench, token, args, write_env, f"{nonce}-rw", pause_ms=0
            )
            results["reads_paced"], results["writes_during_reads_paced"] = reads_during_writes(
                server.base_url,
                bench,
                token,
                args,
                write_env,
                f"{nonce}-rwp",
                pause_ms=args.read_pause_ms,
                write_pause_ms=args.write_pause_ms,
            )
        results["max_rss_mb_per_process"] = sorted(sampler.max_rss_mb.values())
    finally:
        server.stop()
    results["pgbench_tps"] = pgbench(bench.server_url, args.concurrency, args.seconds)
    return results


def postgres_pages_run(args: argparse.Namespace, bench: Bench, run_number: int) -> dict:
    """The pages phase on PostgreSQL: one worker of its own."""
    server = ServerProcess(
        bench.dsn, Path(tempfile.mkdtemp(prefix="timebank-bench-pages-")), workers=1, cookie_secure=PLAIN_HTTP_COOKIES
    )
    server.start()
    try:
        return pages(
            server.base_url, bench.seeded, args.page_connections, args.seconds, f"p{run_number}-{uuid.uuid4().hex[:6]}"
        )
    finally:
        server.stop()


def ceiling_sqlite(
    path: Path,
    org_id: int,
    accounts: list[int],
    connections: int,
    seconds: float,
    run: str,
    day: str,
    *,
    one_call: bool = False,
) -> dict:
    result, _ = run_measured(
        [
            sys.executable,
            "-m",
            "scripts.benchmark.ceiling_sqlite",
            str(path),
            str(org_id),
            ",".join(map(str, accounts)),
            str(connections),
            str(seconds),
            run,
            day,
            *(["--one-call"] if one_call else []),
        ],
        {"PYTHONPATH": str(ROOT)},
        "CEILING_JSON ",
    )
    return result


def sqlite_run(args: argparse.Namespace, run_number: int) -> dict:
    """The embedded default: one worker on a fresh SQLite file (WAL, synchronous=FULL).

    Exchange writes through HTTP at each concurrency of ``--sqlite-scan`` against the
    SQLite ceiling at the same concurrency; balance reads with writes alongside; the
    pages phase if asked for; then ``timebank verify`` on everything written.
    """
    workdir = Path(tempfile.mkdtemp(prefix="timebank-bench-sqlite-"))
    path = workdir / "timebank.sqlite3"
    server = ServerProcess(f"sqlite+aiosqlite:///{path}", workdir, workers=1, cookie_secure=PLAIN_HTTP_COOKIES)
    server.migrate()
    seeded = asyncio.run(seed_organisation(server.database_url, args.members))
    asyncio.run(seed_sqlite_history(path, seeded, args.sqlite_history))
    results: dict = {"start_to_ready_s": server.start(), "load_before": os.getloadavg()}
    day = dt.datetime.now(ZoneInfo(TIMEZONE)).date().isoformat()
    nonce = f"s{run_number}-{uuid.uuid4().hex[:6]}"
    writing = seeded.accounts[: args.sqlite_accounts]
    try:
        token = sign_in(server.base_url, seeded.staff_username)
        write_env = {"TB_TOKEN": token, "TB_ORG": seeded.slug, "TB_DATE": day}

        def writes(connections: int, run: str) -> dict:
            result, _ = wrk(
                "exchanges.lua",
                server.base_url,
                connections,
                args.seconds,
                {**write_env, "TB_ACCOUNTS": ",".join(map(str, writing)), "TB_RUN": run},
            )
            return result

        with ProcessSampler(server.pid or 0) as sampler:
            if "sqlite" in args.phases:
                writes(4, f"{nonce}-warm")
                for connections in args.sqlite_scan:
                    label = f"c{connections}"
                    results[f"ceiling_{label}"] = ceiling_sqlite(
                        path, seeded.org_id, writing, connections, args.seconds, f"{nonce}-ceiling-{label}", day
                    )
                    results[f"ceiling_one_call_{label}"] = ceiling_sqlite(
                        path,
                        seeded.org_id,
                        writing,
                        connections,
                        args.seconds,
                        f"{nonce}-ceiling-1-{label}",
                        day,
                        one_call=True,
                    )
                    cpu = sampler.cpu_seconds()
                    results[f"writes_{label}"] = writes(connections, f"{nonce}-{label}")
                    results[f"writes_{label}_server_cpu_s"] = sampler.cpu_seconds() - cpu
                    results[f"load_after_{label}"] = os.getloadavg()
                results["reads"], results["writes_during_reads"] = reads_during_writes(
                    server.base_url,
                    seeded,
                    token,
                    args,
                    write_env,
                    f"{nonce}-rw",
                    pause_ms=args.read_pause_ms,
                    writers=args.sqlite_read_writers,
                )
        # The worker's memory under the writes and reads: the pages phase signs in twice, and
        # each sign-in holds an argon2 hash's 19 MiB for a moment, so it is measured apart.
        results["max_rss_mb"] = sampler.peak_rss_mb()
        if "pages" in args.phases:
            with ProcessSampler(server.pid or 0) as paging:
                results["pages"] = pages(server.base_url, seeded, args.page_connections, args.seconds, f"{nonce}-p")
            results["pages_max_rss_mb"] = paging.peak_rss_mb()
        if "sqlite" in args.phases:
            with ProcessSampler(server.pid or 0) as burst:
                results["sign_in_burst"] = sign_in_burst(server.base_url, seeded.staff_username, args.sign_ins)
            results["sign_in_burst"]["max_rss_mb"] = burst.peak_rss_mb()
        results["load_after"] = os.getloadavg()
    finally:
        server.stop()
    verified = server.verify()
    results["verify_passed"] = verified.passed
    if not verified.passed:
        raise RuntimeError(f"timebank verify failed after the SQLite phase: {verified.problems}")
    return results


def reads_during_writes(
    base_url: str,
    bench: Bench | Seeded,
    token: str,
    args: argparse.Namespace,
    write_env: dict[str, str],
    nonce: str,
    pause_ms: int,
    write_pause_ms: int = 0,
    writers: int | None = None,
) -> tuple[dict, dict]:
    """64 balance readers while writers post exchanges, both for the same time.

    With no pauses both sides go flat out and saturate the machine. With pauses each
    reader checks a balance every ``pause_ms`` and each writer posts every
    ``write_pause_ms``: a steady load with headroom, as a service normally runs.
    """
    outcome: dict[str, dict] = {}

    def writes() -> None:
        outcome["writes"], _ = wrk(
            "exchanges.lua",
            base_url,
            writers or args.read_writers,
            args.seconds,
            {
                **write_env,
                "TB_ACCOUNTS": ",".join(map(str, bench.accounts)),
                "TB_RUN": nonce,
                "TB_PAUSE_MS": str(write_pause_ms),
            },
        )

    writer = threading.Thread(target=writes)
    writer.start()
    outcome["reads"], _ = wrk(
        "balances.lua",
        base_url,
        args.readers,
        args.seconds,
        {
            "TB_TOKEN": token,
            "TB_ORG": bench.slug,
            "TB_ACCOUNTS": ",".join(map(str, bench.accounts)),
            "TB_PAUSE_MS": str(pause_ms),
        },
    )
    writer.join()
    return outcome["reads"], outcome["writes"]


# --------------------------------------------------------------------------- report


def per_second(result: dict) -> float:
    if "per_second" in result:
        return float(result["per_second"])
    return result["requests"] / (result["duration_us"] / 1e6)


def ms(result: dict, p: int) -> float:
    return float(result[f"p{p}_ms"]) if f"p{p}_ms" in result else result[f"p{p}_us"] / 1000


def max_ms(result: dict) -> float:
    return float(result["max_ms"]) if "max_ms" in result else result["max_us"] / 1000


def median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def figures(results: list[dict]) -> dict:
    """Medians over the runs of one phase: rate, percentiles, the slowest request, errors."""
    summary = {
        "per_second": median([per_second(r) for r in results]),
        "p50_ms": median([ms(r, 50) for r in results]),
        "p99_ms": median([ms(r, 99) for r in results]),
        "max_ms": median([max_ms(r) for r in results]),
        "worst_max_ms": round(max(max_ms(r) for r in results), 2),
    }
    for count in ("server_errors", "other_4xx", "failed", "socket_errors", "timeouts"):
        if any(count in r for r in results):
            summary[count] = sum(r.get(count, 0) for r in results)
    return summary


def summarise_sqlite(runs: list[dict], args: argparse.Namespace) -> dict:
    summary: dict = {
        "config": {
            "database": "a fresh SQLite file: WAL, synchronous=FULL",
            "workers": 1,
            "accounts_written": args.sqlite_accounts,
            "history_exchanges": args.sqlite_history,
        },
        "scan": {},
    }
    for n in args.sqlite_scan:
        ceiling_, service = figures([r[f"ceiling_c{n}"] for r in runs]), figures([r[f"writes_c{n}"] for r in runs])
        one_call = figures([r[f"ceiling_one_call_c{n}"] for r in runs])
        requests = [r[f"writes_c{n}"]["requests"] for r in runs]
        cpu = [r[f"writes_c{n}_server_cpu_s"] for r in runs]
        summary["scan"][str(n)] = {
            "ceiling": ceiling_,
            "service": service,
            "ratio": round(service["per_second"] / ceiling_["per_second"], 3),
            # The same statements in one call to aiosqlite's thread, as the service sends them.
            "ceiling_one_call": one_call,
            "ratio_to_one_call_ceiling": round(service["per_second"] / one_call["per_second"], 3),
            "server_cpu_ms_per_request": median([1000 * c / q for c, q in zip(cpu, requests, strict=True) if q]),
            "load_average_after": [r[f"load_after_c{n}"] for r in runs],
        }
    summary["reads_with_writes"] = {
        "readers": args.readers,
        "reader_pause_ms": args.read_pause_ms,
        "writers_flat_out": args.sqlite_read_writers,
        "reads": figures([r["reads"] for r in runs]),
        "writes": figures([r["writes_during_reads"] for r in runs]),
    }
    summary["max_rss_mb"] = max(r["max_rss_mb"] for r in runs)
    if all("pages_max_rss_mb" in r for r in runs):
        summary["pages_max_rss_mb"] = max(r["pages_max_rss_mb"] for r in runs)
    summary["sign_in_burst"] = {
        "sign_ins": args.sign_ins,
        "median_ms": median([r["sign_in_burst"]["median_ms"] for r in runs]),
        "slowest_ms": max(r["sign_in_burst"]["slowest_ms"] for r in runs),
        "max_rss_mb": max(r["sign_in_burst"]["max_rss_mb"] for r in runs),
    }
    summary["verify_passed"] = all(r["verify_passed"] for r in runs)
    return summary


def summarise_pages(results: list[dict], connections: int) -> dict:
    return {
        "connections": connections,
        "member_home_get": figures([r["member_home"] for r in results]),
        "log_exchange_post": figures([r["log_exchange_post"] for r in results]),
    }


def print_sqlite(summary: dict) -> None:
    print("\nSQLite (one worker, synchronous=FULL): exchange writes through HTTP against the SQLite ceiling")
    print(
        f"{'clients':>8} {'ceiling/s':>10} {'p99 ms':>8} {'1 call/s':>9} {'service/s':>10} {'ratio':>6} {'vs 1':>5} "
        f"{'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'5xx':>4} {'CPU ms/req':>10}"
    )
    for n, row in summary["scan"].items():
        c, s = row["ceiling"], row["service"]
        print(
            f"{n:>8} {c['per_second']:10.0f} {c['p99_ms']:8.1f} {row['ceiling_one_call']['per_second']:9.0f} "
            f"{s['per_second']:10.0f} {row['ratio']:6.2f} {row['ratio_to_one_call_ceiling']:5.2f} "
            f"{s['p50_ms']:8.1f} {s['p99_ms']:8.1f} {s['worst_max_ms']:8.1f} {s.get('server_errors', 0):>4} "
            f"{row['server_cpu_ms_per_request']:10.2f}"
        )
    rw = summary["reads_with_writes"]
    for name in ("reads", "writes"):
        r = rw[name]
        print(
            f"{name} ({rw['readers']} paced readers + {rw['writers_flat_out']} writers): {r['per_second']:.0f}/s, "
            f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, max {r['worst_max_ms']:.1f} ms"
        )
    burst = summary["sign_in_burst"]
    print(
        f"max RSS of the worker: {summary['max_rss_mb']:.0f} MB under the writes and reads"
        + (f", {summary['pages_max_rss_mb']:.0f} MB in the pages phase" if "pages_max_rss_mb" in summary else "")
        + f"; {burst['sign_ins']} sign-ins at once: "
        f"median {burst['median_ms']:.0f} ms, slowest {burst['slowest_ms']:.0f} ms, "
        f"worker's max RSS meanwhile {burst['max_rss_mb']:.0f} MB"
    )
    print(f"timebank verify afterwards: {'passed' if summary['verify_passed'] else 'FAILED'}")


def print_pages(summary: dict) -> None:
    for database, pages_ in summary.items():
        print(f"\nPages on {database} (one worker, {pages_['connections']} connections):")
        for name in ("member_home_get", "log_exchange_post"):
            r = pages_[name]
            print(
                f"  {name:20} {r['per_second']:7.0f}/s  p50 {r['p50_ms']:7.1f} ms  p99 {r['p99_ms']:7.1f} ms  "
                f"max {r['worst_max_ms']:7.1f} ms  not as expected: {r.get('failed', 0)}"
            )


def summarise(runs: list[dict], args: argparse.Namespace) -> dict:
    """The PostgreSQL phases' medians over the runs."""

    def median(values: list[float]) -> float:
        return round(statistics.median(values), 2)

    def phase(name: str) -> dict:
        return {
            "per_second": median([per_second(r[name]) for r in runs]),
            "p50_ms": median([ms(r[name], 50) for r in runs]),
            "p95_ms": median([ms(r[name], 95) for r in runs]),
            "p99_ms": median([ms(r[name], 99) for r in runs]),
        }

    c = args.concurrency
    summary: dict = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "config": {
            "server": "uvicorn (uvloop, httptools) via `timebank serve`",
            "workers": args.workers,
            "pool_size_per_worker": args.pool_size,
            "concurrency": c,
            "seconds_per_phase": args.seconds,
            "runs": len(runs),
            "accounts": len((runs and args.members) or 0) if False else args.members + 1,
            "load_generator": "wrk 4.x (Lua scripts in scripts/benchmark/)",
        },
        "start_to_ready_s": median([r["start_to_ready_s"] for r in runs]),
        "ceiling": phase(f"ceiling_c{c}"),
        "ceiling_bare_ledger_function": phase("ceiling_bare"),
        "service_writes": phase(f"writes_c{c}"),
        "ceiling_hot_accounts": phase("ceiling_hot"),
        "service_writes_hot_accounts": phase("writes_hot"),
        "reads_alone_paced": phase("reads_alone_paced"),
        "reads_while_writing_flat_out": phase("reads_flat_out"),
        "writes_during_flat_out_reads": phase("writes_during_reads_flat_out"),
        "reads_while_writing_paced": phase("reads_paced"),
        "writes_during_paced_reads": phase("writes_during_reads_paced"),
        "pgbench_simple_update_tps": median([r["pgbench_tps"] for r in runs]),
        "max_rss_mb_per_process": max(max(r["max_rss_mb_per_process"]) for r in runs),
        "scan": {
            str(n): {"ceiling": phase(f"ceiling_c{n}"), "service": phase(f"writes_c{n}")}
            for n in sorted({*args.scan, c})
        },
        "cpu_seconds_during_service_writes": {
            "server": median([r[f"writes_c{c}_server_cpu_s"] for r in runs]),
            "postgres": median([r[f"writes_c{c}_postgres_cpu_s"] for r in runs]),
            "wrk": median([r[f"writes_c{c}_wrk_cpu_s"] for r in runs]),
            "ceiling_client": median([r[f"ceiling_c{c}_cpu_s"] for r in runs]),
        },
        "errors": {
            "server_errors": sum(
                r[k]["server_errors"]
                for r in runs
                for k in r
                if k.startswith("writes_") and isinstance(r[k], dict) and "server_errors" in r[k]
            ),
            "socket_errors": sum(
                r[k]["socket_errors"] for r in runs for k in r if isinstance(r[k], dict) and "socket_errors" in r[k]
            ),
        },
    }
    summary["ratio_service_to_ceiling"] = round(
        summary["service_writes"]["per_second"] / summary["ceiling"]["per_second"], 3
    )
    summary["ratio_service_to_bare_ceiling"] = round(
        summary["service_writes"]["per_second"] / summary["ceiling_bare_ledger_function"]["per_second"], 3
    )
    summary["ratio_ceiling_to_pgbench"] = round(
        summary["ceiling"]["per_second"] / summary["pgbench_simple_update_tps"], 3
    )
    return summary


def print_table(summary: dict) -> None:
    """The PostgreSQL phases."""
    rows = [
        ("ceiling (asyncpg, same SQL)", summary["ceiling"]),
        ("  bare timebank_post (rounds 1 to 7)", summary["ceiling_bare_ledger_function"]),
        ("service writes, many accounts", summary["service_writes"]),
        ("ceiling, 4 hot accounts", summary["ceiling_hot_accounts"]),
        ("service writes, 4 hot accounts", summary["service_writes_hot_accounts"]),
        ("balance reads, 64 paced, nothing else", summary["reads_alone_paced"]),
        ("balance reads, 64 flat out (+writes)", summary["reads_while_writing_flat_out"]),
        ("  writes meanwhile", summary["writes_during_flat_out_reads"]),
        ("balance reads, 64 paced (+paced writes)", summary["reads_while_writing_paced"]),
        ("  writes meanwhile", summary["writes_during_paced_reads"]),
    ]
    print(f"\n{'phase':40} {'per s':>9} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for name, r in rows:
        print(f"{name:40} {r['per_second']:9.0f} {r['p50_ms']:8.2f} {r['p95_ms']:8.2f} {r['p99_ms']:8.2f}")
    print(f"\n{'clients':>8} {'ceiling/s':>10} {'service/s':>10} {'ratio':>6} {'service p99 ms':>15}")
    for n, scan in summary["scan"].items():
        ratio = scan["service"]["per_second"] / scan["ceiling"]["per_second"]
        print(
            f"{n:>8} {scan['ceiling']['per_second']:10.0f} {scan['service']['per_second']:10.0f} "
            f"{ratio:6.2f} {scan['service']['p99_ms']:15.2f}"
        )
    print(f"\npgbench -N (simple update), same clients: {summary['pgbench_simple_update_tps']:.0f} tps")
    print(f"ceiling / pgbench -N: {summary['ratio_ceiling_to_pgbench']:.2f}")
    print(
        f"start to /ready: {summary['start_to_ready_s']:.2f} s; "
        f"max RSS of a server process: {summary['max_rss_mb_per_process']:.0f} MB"
    )
    cpu = summary["cpu_seconds_during_service_writes"]
    print(
        f"CPU seconds during one service-writes phase: server {cpu['server']:.1f}, PostgreSQL {cpu['postgres']:.1f}, "
        f"wrk {cpu['wrk']:.1f} (ceiling client in its phase: {cpu['ceiling_client']:.1f})"
    )
    print(f"errors: {summary['errors']}")
    print(
        f"\nRATIO service writes / ceiling: {summary['ratio_service_to_ceiling']:.2f} "
        f"(against the bare timebank_post: {summary['ratio_service_to_bare_ceiling']:.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=POSTGRES_SERVER)
    parser.add_argument("--runs", type=int, default=3, help="repeat everything; medians are reported")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each phase")
    parser.add_argument("--concurrency", type=int, default=16, help="clients for the headline comparison")
    parser.add_argument("--scan", type=int, nargs="*", default=[1, 4, 16, 64], help="client counts to scan")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--pool-size", type=int, default=16, help="database connections per worker")
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--history", type=int, default=20000, help="past exchanges written before measuring")
    parser.add_argument("--readers", type=int, default=64)
    parser.add_argument("--read-writers", type=int, default=8, help="writers running during the read phases")
    parser.add_argument("--read-pause-ms", type=int, default=100, help="pause per reader in the paced read phase")
    parser.add_argument("--write-pause-ms", type=int, default=20, help="pause per writer in the paced read phase")
    parser.add_argument("--keep-database", action="store_true")
    parser.add_argument(
        "--phases",
        nargs="+",
        choices=PHASES,
        default=list(PHASES),
        help="postgres: the PostgreSQL phases above; sqlite: the SQLite default; pages: the two pages on both",
    )
    parser.add_argument("--sqlite-scan", type=int, nargs="*", default=[1, 4, 16], help="SQLite client counts")
    parser.add_argument("--sqlite-accounts", type=int, default=50, help="accounts the SQLite writers use")
    parser.add_argument("--sqlite-history", type=int, default=5000, help="past exchanges in the SQLite file")
    parser.add_argument("--sqlite-read-writers", type=int, default=4, help="writers during the SQLite read phase")
    parser.add_argument("--sign-ins", type=int, default=8, help="sign-ins at once in the SQLite run's burst")
    parser.add_argument("--page-connections", type=int, default=4, help="connections in the pages phase")
    args = parser.parse_args()

    load_at_start = os.getloadavg()
    with_postgres = "postgres" in args.phases or "pages" in args.phases
    bench = asyncio.run(create_bench_database(args.postgres)) if with_postgres else None
    runs: list[dict] = []
    summary: dict = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "load_average_at_start": load_at_start,
    }
    try:
        if bench is not None:
            print(
                f"Benchmark database {bench.database}; seeding {args.members} members and {args.history} exchanges ...",
                flush=True,
            )
            ServerProcess(bench.dsn, Path(tempfile.mkdtemp(prefix="timebank-bench-"))).migrate()
            asyncio.run(seed(bench, args.members, args.history))
        for number in range(1, args.runs + 1):
            print(f"run {number} of {args.runs} (load average {os.getloadavg()[0]:.2f}) ...", flush=True)
            run: dict = {}
            if bench is not None and "postgres" in args.phases:
                run["postgres"] = one_run(args, bench, number)
            if bench is not None and "pages" in args.phases:
                run["pages_postgresql"] = postgres_pages_run(args, bench, number)
            if {"sqlite", "pages"} & set(args.phases):
                run["sqlite"] = sqlite_run(args, number)
            runs.append(run)
        if "postgres" in args.phases:
            summary.update(summarise([r["postgres"] for r in runs], args))
        if "sqlite" in args.phases:
            summary["sqlite"] = summarise_sqlite([r["sqlite"] for r in runs], args)
        if "pages" in args.phases:
            summary["pages"] = {
                "postgresql": summarise_pages([r["pages_postgresql"] for r in runs], args.page_connections),
                "sqlite": summarise_pages([r["sqlite"]["pages"] for r in runs], args.page_connections),
            }
        summary["load_average_at_end"] = os.getloadavg()
    finally:
        if bench is not None and not args.keep_database:
            asyncio.run(drop_database(args.postgres, bench.database))
    if "postgres" in args.phases:
        print_table(summary)
    if "sqlite" in args.phases:
        print_sqlite(summary["sqlite"])
    if "pages" in args.phases:
        print_pages(summary["pages"])
    print(f"\nload average at start {summary['load_average_at_start']}, at end {summary['load_average_at_end']}")
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    path = out / f"bench-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps({"summary": summary, "runs": runs}, indent=2))
    print(f"\nJSON summary ({path.relative_to(ROOT)}):")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
