"""Measure the service against PostgreSQL's own limits, in one run. See docs/performance.md.

What runs, each phase for ``--seconds``, the whole set ``--runs`` times (medians reported):

- ceiling: the same ledger write from a minimal asyncpg client (``ceiling.py``);
- service writes: ``POST /exchanges`` through HTTP (wrk), over many accounts and over
  four hot ones, at each concurrency of ``--scan`` and at ``--concurrency``;
- service reads: balance reads by 64 connections while writes run, flat out and paced;
- pgbench -N (PostgreSQL's simple-update benchmark) at ``--concurrency``;
- the server's memory (RSS per process) throughout, and its time from start to /ready.

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
import httpx

from scripts.drills.live_server import ServerProcess
from timebank.db import create_database
from timebank.ledger import shared_account_id
from timebank.members.service import create_member
from timebank.models import AccountKind, Role
from timebank.orgs.service import create_organisation

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
PASSWORD = "benchmark staff password"
TIMEZONE = "Europe/London"


@dataclass
class Bench:
    server_url: str  # PostgreSQL server, without a database name
    database: str
    org_id: int = 0
    slug: str = ""
    accounts: list[int] = field(default_factory=list)
    staff_username: str = ""

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
    db = create_database(bench.dsn)
    try:
        slug = f"bench-{uuid.uuid4().hex[:6]}"
        # The lowest minimum allowed, so random exchanges are never refused for balance.
        organisation = await create_organisation(
            db, slug=slug, name="Benchmark centre", timezone=TIMEZONE, min_balance_minutes=-10_000 * 60, changed_by=None
        )
        assert organisation.id is not None
        bench.org_id, bench.slug = organisation.id, slug
        bench.staff_username = f"staff-{slug}"
        await create_member(
            db,
            organisation.id,
            display_name="Bench staff",
            role=Role.STAFF,
            username=bench.staff_username,
            password=PASSWORD,
            changed_by=None,
        )
        for n in range(members):
            new = await create_member(db, organisation.id, display_name=f"Member {n:05d}", changed_by=None)
            bench.accounts.append(new.account.id)  # type: ignore[arg-type]
        bench.accounts.append(await shared_account_id(db, organisation.id, AccountKind.AGENCY))
    finally:
        await db.dispose()
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


def sign_in(base_url: str, bench: Bench) -> str:
    response = httpx.post(
        f"{base_url}/api/v1/auth/token", json={"username": bench.staff_username, "password": PASSWORD}, timeout=10
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


# --------------------------------------------------------------------------- measuring


class ProcessSampler:
    """Samples the RSS of a process tree, and its CPU time, while a benchmark runs."""

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid
        self.max_rss_mb: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def pids(self) -> list[int]:
        found = [self.root_pid]
        for pid in found:
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            found.extend(int(child) for child in children)
        return found

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            for pid in self.pids():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                match = re.search(r"VmRSS:\s+(\d+) kB", status)
                if match:
                    self.max_rss_mb[pid] = max(self.max_rss_mb.get(pid, 0.0), int(match.group(1)) / 1024)

    def __enter__(self) -> "ProcessSampler":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def postgres_cpu_seconds() -> float:
    """CPU time of every PostgreSQL backend process on this machine."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if "(postgres)" in text:
            fields = text.rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def run_measured(command: list[str], env: dict[str, str], marker: str) -> tuple[dict, float]:
    """Run a load generator; return its JSON summary and the CPU seconds it used."""
    process = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output, _ = process.communicate()
    _, _, usage = os.wait4(process.pid, 0) if process.returncode is None else (0, 0, None)
    text = output.decode(errors="replace")
    line = next((line for line in text.splitlines() if line.startswith(marker)), None)
    if line is None:
        raise RuntimeError(f"{command[0]} printed no {marker} line:\n{text[-3000:]}")
    cpu = (usage.ru_utime + usage.ru_stime) if usage else 0.0
    return json.loads(line[len(marker) :]), cpu


def children_cpu() -> float:
    usage = os.times()
    return usage.children_user + usage.children_system


def wrk(script: str, url: str, connections: int, seconds: float, env: dict[str, str]) -> tuple[dict, float]:
    before = children_cpu()
    result, _ = run_measured(
        [
            "wrk",
            "-t",
            str(min(2, connections)),
            "-c",
            str(connections),
            "-d",
            f"{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(HERE / script),
            url,
        ],
        env,
        "WRK_JSON ",
    )
    return result, children_cpu() - before


def ceiling(
    bench: Bench, accounts: list[int], connections: int, seconds: float, run: str, day: str
) -> tuple[dict, float]:
    before = children_cpu()
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
        ],
        {"PYTHONPATH": str(ROOT)},
        "CEILING_JSON ",
    )
    return result, children_cpu() - before


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
    token = sign_in(server.base_url, bench)
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
            results["ceiling_hot"], _ = ceiling(bench, hot, args.concurrency, args.seconds, f"{nonce}-ceiling-hot", day)
            results["writes_hot"], _ = wrk(
                "exchanges.lua",
                server.base_url,
                args.concurrency,
                args.seconds,
                {**write_env, "TB_ACCOUNTS": ",".join(map(str, hot)), "TB_RUN": f"{nonce}-hot"},
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


def reads_during_writes(
    base_url: str,
    bench: Bench,
    token: str,
    args: argparse.Namespace,
    write_env: dict[str, str],
    nonce: str,
    pause_ms: int,
    write_pause_ms: int = 0,
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
            args.read_writers,
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


def summarise(runs: list[dict], args: argparse.Namespace) -> dict:
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
        "service_writes": phase(f"writes_c{c}"),
        "ceiling_hot_accounts": phase("ceiling_hot"),
        "service_writes_hot_accounts": phase("writes_hot"),
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
    summary["ratio_ceiling_to_pgbench"] = round(
        summary["ceiling"]["per_second"] / summary["pgbench_simple_update_tps"], 3
    )
    return summary


def print_table(summary: dict) -> None:
    rows = [
        ("ceiling (asyncpg, same SQL)", summary["ceiling"]),
        ("service writes, many accounts", summary["service_writes"]),
        ("ceiling, 4 hot accounts", summary["ceiling_hot_accounts"]),
        ("service writes, 4 hot accounts", summary["service_writes_hot_accounts"]),
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
    print(f"\nRATIO service writes / ceiling: {summary['ratio_service_to_ceiling']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--postgres", default=os.environ.get("TIMEBANK_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
    )
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
    args = parser.parse_args()

    bench = asyncio.run(create_bench_database(args.postgres))
    print(
        f"Benchmark database {bench.database}; seeding {args.members} members and {args.history} exchanges ...",
        flush=True,
    )
    try:
        ServerProcess(bench.dsn, Path(tempfile.mkdtemp(prefix="timebank-bench-"))).migrate()
        asyncio.run(seed(bench, args.members, args.history))
        runs = []
        for number in range(1, args.runs + 1):
            print(f"run {number} of {args.runs} ...", flush=True)
            runs.append(one_run(args, bench, number))
        summary = summarise(runs, args)
    finally:
        if not args.keep_database:
            asyncio.run(drop_database(args.postgres, bench.database))
    print_table(summary)
    out = ROOT / "bench-results"
    out.mkdir(exist_ok=True)
    path = out / f"bench-{dt.datetime.now():%Y%m%d-%H%M%S}.json"
    path.write_text(json.dumps({"summary": summary, "runs": runs}, indent=2))
    print(f"\nJSON summary ({path.relative_to(ROOT)}):")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
