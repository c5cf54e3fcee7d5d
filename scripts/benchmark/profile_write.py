"""Profile a running server: CPU per request, and where it goes (py-spy).

One ``timebank serve`` worker (as shipped: every middleware on) on a fresh bench database
(PostgreSQL, or with ``--sqlite`` a fresh SQLite file as the bench's SQLite phase makes);
wrk sends ``POST .../exchanges`` (``exchanges.lua``), or with ``--member-home`` asks for a
member's home page as a browser does (``pages.lua``), or with ``--balance-reads`` reads
balances as the bench's read phases do (``balances.lua``, paced by ``--pause-ms``), for
``--seconds`` at ``--connections`` (``--workers`` for more than one worker).
The worker's CPU seconds per request are printed; with ``--py-spy FILE`` py-spy samples the
worker meanwhile and writes its collapsed stacks to FILE, and ``--top FILE`` prints the own
and inclusive shares by function and by package. ``--server granian`` runs the same app
under granian instead of uvicorn (docs/performance.md has the comparison).

    .venv/bin/python -m scripts.benchmark.profile_write --seconds 10 [--py-spy /tmp/write.txt]
    .venv/bin/python -m scripts.benchmark.profile_write --top /tmp/write.txt

CPU per request is what the bench's goal is stated in; the profile says where it goes.
"""

import argparse
import asyncio
import collections
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from zoneinfo import ZoneInfo

from scripts.benchmark.measure import POSTGRES_SERVER, ProcessSampler, wrk
from scripts.benchmark.run import PLAIN_HTTP_COOKIES, TIMEZONE, create_bench_database, drop_database, seed
from scripts.benchmark.sqlite_and_pages import (
    Seeded,
    browser_sign_in,
    cookie_header,
    seed_organisation,
    seed_sqlite_history,
    sign_in,
)
from scripts.drills.live_server import ServerProcess


class GranianProcess(ServerProcess):
    """The same app under granian (its CLI), for comparing ASGI servers in one sitting."""

    def command(self) -> list[str]:
        return [
            str(Path(sys.executable).with_name("granian")),
            *(
                "--interface",
                "asgi",
                "--factory",
                "--loop",
                "uvloop",
                "--no-ws",
                "--log-level",
                "warning",
                "--runtime-mode",
                "st",
            ),
            *("--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)),
            "timebank.serving:create_served_app",
        ]


def worker_pid(server_pid: int) -> int:
    """uvicorn runs the app in the server process itself when there is one worker."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    return int(children[0]) if children else server_pid


@contextmanager
def served(args: argparse.Namespace) -> Iterator[tuple[ServerProcess, Seeded, list[int]]]:
    """A started server on a seeded database, its organisation, and the accounts to write between."""
    workdir = Path(tempfile.mkdtemp(prefix="timebank-profile-"))
    if args.sqlite:  # as the bench's SQLite phase (run.py, sqlite_run) sets it up
        path = workdir / "timebank.sqlite3"
        server = ServerProcess(f"sqlite+aiosqlite:///{path}", workdir, workers=1, cookie_secure=PLAIN_HTTP_COOKIES)
        server.migrate()
        seeded = asyncio.run(seed_organisation(server.database_url, args.members))
        asyncio.run(seed_sqlite_history(path, seeded, args.history))
        server.start()
        try:
            yield server, seeded, seeded.accounts[:50]
        finally:
            server.stop()
        return
    bench = asyncio.run(create_bench_database(args.postgres))
    try:
        server = ServerProcess(bench.dsn, workdir, workers=args.workers, cookie_secure=PLAIN_HTTP_COOKIES)
        server.migrate()
        asyncio.run(seed(bench, args.members, args.history))
        if args.server == "granian":
            server = GranianProcess(bench.dsn, server.workdir, workers=1)
        server.start()
        try:
            yield server, bench.seeded, bench.accounts
        finally:
            server.stop()
    finally:
        asyncio.run(drop_database(args.postgres, bench.database))


def measure(args: argparse.Namespace) -> None:
    with served(args) as (server, seeded, accounts):
        token = sign_in(server.base_url, seeded.staff_username)
        day = dt.datetime.now(ZoneInfo(TIMEZONE)).date().isoformat()
        env = {
            "TB_TOKEN": token,
            "TB_ORG": seeded.slug,
            "TB_DATE": day,
            "TB_ACCOUNTS": ",".join(map(str, accounts)),
        }
        script = "exchanges.lua"
        if args.member_home:  # the member home page instead, as the bench's pages phase asks for it
            member = browser_sign_in(server.base_url, seeded.member_username)
            script = "pages.lua"
            env = {"TB_PATH": f"/orgs/{seeded.slug}/", "TB_COOKIE": cookie_header(member), "TB_EXPECT": "200"}
        elif args.balance_reads:  # the bench's balance reads, paced with --pause-ms as its read phases are
            script = "balances.lua"
            env = {**env, "TB_PAUSE_MS": str(args.pause_ms)}
        wrk(script, server.base_url, args.connections, 2, {**env, "TB_RUN": f"warm-{time.time()}"})
        spy = None
        if args.py_spy:
            pid = worker_pid(server.pid or 0)
            spy = subprocess.Popen(
                [
                    str(Path(sys.executable).with_name("py-spy")),
                    "record",
                    "--pid",
                    str(pid),
                    "--format",
                    "raw",
                    "--rate",
                    "250",
                    "--nonblocking",
                    *(["--gil"] if args.gil else []),
                    "--duration",
                    str(int(args.seconds)),
                    "--output",
                    args.py_spy,
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        with ProcessSampler(server.pid or 0) as sampler:
            cpu_before = sampler.cpu_seconds()
            result, _ = wrk(
                script,
                server.base_url,
                args.connections,
                args.seconds,
                {**env, "TB_RUN": f"run-{time.time()}"},
            )
            cpu = sampler.cpu_seconds() - cpu_before
        if spy:
            spy.wait()
        per_second = result["requests"] / (result["duration_us"] / 1e6)
        outcome = (
            f"created {result['created']}, other {result['other_4xx']}, 5xx {result['server_errors']}"
            if "created" in result
            else f"as expected {result['ok']}, not {result['failed']}"
        )
        print(
            f"{result['requests']} requests, {per_second:.0f}/s, p50 {result['p50_us'] / 1000:.1f} ms, "
            f"p99 {result['p99_us'] / 1000:.1f} ms, {outcome}; server CPU {cpu:.2f} s = "
            f"{cpu / max(1, result['requests']) * 1000:.2f} ms per request; load {os.getloadavg()[0]:.1f}"
        )


def top(path: str, limit: int) -> None:
    """Own and inclusive shares of py-spy's collapsed stacks, by function and by package."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    package_own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")[1:]  # the first is the thread
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        package_own[package_of(frames[-1])] += count
        for frame in set(frames):
            inclusive[frame] += count
    print(f"{total} samples\n\nown, by package:")
    for name, count in package_own.most_common(limit):
        print(f"  {count / total:6.1%}  {name}")
    print("\nown, by function:")
    for name, count in own.most_common(limit):
        print(f"  {count / total:6.1%}  {name}")
    print("\ninclusive, by function:")
    for name, count in inclusive.most_common(limit * 2):
        print(f"  {count / total:6.1%}  {name}")


def package_of(frame: str) -> str:
    """'fn (path/site-packages/litestar/x.py:12)' -> 'litestar'; our own code -> 'timebank'."""
    where = frame[frame.rfind("(") + 1 :]
    if "site-packages/" in where:
        return where.split("site-packages/")[1].split("/")[0].split(".")[0]
    if "/timebank/" in where:
        return "timebank"
    if "/lib/python" in where:
        return "stdlib " + where.split("/lib/python")[1].split("/")[1].split(".")[0]
    return where.split(":")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=POSTGRES_SERVER)
    parser.add_argument("--sqlite", action="store_true", help="on a fresh SQLite file instead of PostgreSQL")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--history", type=int, default=2000)
    parser.add_argument("--server", choices=("uvicorn", "granian"), default="uvicorn")
    parser.add_argument("--member-home", action="store_true", help="GET the member home instead of writing")
    parser.add_argument("--balance-reads", action="store_true", help="GET account balances instead of writing")
    parser.add_argument("--pause-ms", type=int, default=0, help="with --balance-reads: mean pause per connection")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--py-spy", help="write py-spy's collapsed stacks of the worker here")
    parser.add_argument(
        "--gil", action="store_true", help="with --py-spy: only samples of the thread that holds the GIL (Python's CPU)"
    )
    parser.add_argument("--top", help="print the shares in a collapsed-stacks file and stop")
    parser.add_argument("--limit", type=int, default=25)
    args = parser.parse_args()
    if args.top:
        top(args.top, args.limit)
    else:
        measure(args)


if __name__ == "__main__":
    main()
