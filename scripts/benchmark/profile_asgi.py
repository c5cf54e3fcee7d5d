"""CPU per API write on PostgreSQL, in-process: the app called as ASGI, with no HTTP server.

Builds the app as ``timebank serve`` does (production settings, every middleware) on a
fresh bench database, signs in as staff, then sends ``--writes`` ``POST .../exchanges`` from
``--concurrency`` tasks straight into the ASGI callable (no sockets, no uvicorn, no client
library), ``--reps`` times, and prints the process CPU per write of each rep and the median, and PostgreSQL's (every
backend on the machine, so run it on a quiet one).
Without the HTTP server and the load generator on the same two cores, the figure moves much
less from run to run than a live server's, so a change can be compared in one sitting.

``--without`` takes parts out, to see what each costs (measurement only; the app as shipped
has all of them): ``sign-in-cache`` (each worker's memory of token checks: without it every
request checks its token in the database, as before round six), ``control-characters``,
``access-log``, ``pool-metrics``. ``--profile FILE`` runs the last rep under yappi (CPU
clock) and writes its functions by own and by inclusive time.

    .venv/bin/python -m scripts.benchmark.profile_asgi --writes 2000 [--without sign-in-cache]
"""

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import uvloop

from scripts.benchmark.measure import POSTGRES_SERVER, postgres_cpu_seconds
from scripts.benchmark.run import TIMEZONE, Bench, create_bench_database, drop_database, seed
from scripts.benchmark.sqlite_and_pages import PASSWORD
from scripts.drills.live_server import SECRET_KEY, ServerProcess

ASGIApp = Callable[..., Any]


async def call(app: ASGIApp, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
    """One request into the ASGI callable; its status and body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(name.encode(), value.encode()) for name, value in headers.items()]
        + [(b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    delivered = False
    status, answer = 0, b""

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            await asyncio.Event().wait()  # the client never disconnects
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, answer
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            answer += message.get("body", b"")

    await app(scope, receive, send)
    return status, answer


def take_out(parts: set[str]) -> None:
    """Replace parts of the app before it is built (measurement only)."""
    import timebank.app
    from timebank.monitoring import metrics

    if "sign-in-cache" in parts:
        os.environ["TIMEBANK_SIGN_IN_CACHE_ENTRIES"] = "0"
    if "control-characters" in parts:
        timebank.app.control_character_middleware = lambda app: app  # type: ignore[assignment]
    if "access-log" in parts:
        timebank.app.access_log_middleware = lambda app: app  # type: ignore[assignment]
    if "pool-metrics" in parts:
        metrics.instrument_pool = lambda *_: None  # type: ignore[assignment]
        metrics.forget_pool = lambda *_: None  # type: ignore[assignment]


async def drive(bench: Bench, args: argparse.Namespace) -> list[float]:
    os.environ.update(
        {
            "TIMEBANK_DATABASE_URL": bench.dsn,
            "TIMEBANK_ENVIRONMENT": "production",
            "TIMEBANK_SECRET_KEY": SECRET_KEY,
            "TIMEBANK_LOG_LEVEL": "WARNING",
            "TIMEBANK_DB_POOL_SIZE": "16",
            "TIMEBANK_DB_MAX_OVERFLOW": "0",
        }
    )
    take_out(set(args.without))
    from timebank.app import create_app
    from timebank.config import get_settings

    get_settings.cache_clear()
    app = create_app()
    per_write: list[float] = []
    async with app.lifespan():
        credentials = json.dumps({"username": bench.staff_username, "password": PASSWORD}).encode()
        status, answer = await call(
            app, "POST", "/api/v1/auth/token", {"content-type": "application/json"}, credentials
        )
        assert status == 200, answer
        headers = {"content-type": "application/json", "authorization": f"Bearer {json.loads(answer)['access_token']}"}
        day = dt.datetime.now(ZoneInfo(TIMEZONE)).date().isoformat()
        path = f"/api/v1/orgs/{bench.slug}/exchanges"
        accounts = bench.accounts
        sent = 0

        async def writer(count: int, run: str) -> None:
            nonlocal sent
            for _ in range(count):
                sent += 1
                giver, receiver = accounts[sent % len(accounts)], accounts[(sent * 7 + 1) % len(accounts)]
                if giver == receiver:
                    receiver = accounts[(sent + 1) % len(accounts)]
                body = {"giver_account_id": giver, "receiver_account_id": receiver, "minutes": 30}
                body |= {"occurred_on": day, "description": "benchmark"}
                status, answer = await call(
                    app, "POST", path, {**headers, "idempotency-key": f"{run}-{sent}"}, json.dumps(body).encode()
                )
                assert status == 201, answer

        await writer(200, f"warm-{time.time()}")
        for rep in range(args.reps):
            profiling = args.profile and rep == args.reps - 1
            if profiling:
                import yappi

                yappi.set_clock_type("cpu")
                yappi.start()
            began, database_began = time.process_time(), postgres_cpu_seconds()
            each = args.writes // args.concurrency
            await asyncio.gather(*(writer(each, f"r{rep}-{n}-{time.time()}") for n in range(args.concurrency)))
            per_write.append((time.process_time() - began) / (each * args.concurrency) * 1000)
            database = (postgres_cpu_seconds() - database_began) / (each * args.concurrency) * 1000
            print(
                f"rep {rep + 1}: {per_write[-1]:.3f} ms of CPU per write{' (under yappi)' if profiling else ''}, "
                f"PostgreSQL {database:.3f} ms"
            )
            if profiling:
                yappi.stop()
                write_profile(args.profile)
    return per_write[:-1] if args.profile else per_write


def write_profile(path: str) -> None:
    import yappi

    stats = yappi.get_func_stats()
    columns = {0: ("name", 100), 1: ("ncall", 8), 2: ("tsub", 8), 3: ("ttot", 8)}
    with open(path, "w") as out:
        for order in ("tsub", "ttot"):
            out.write(f"\n# by {order}\n")
            stats.sort(order).print_all(out=out, columns=columns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres", default=POSTGRES_SERVER)
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--members", type=int, default=200)
    parser.add_argument("--history", type=int, default=2000)
    parser.add_argument(
        "--without",
        nargs="*",
        default=[],
        choices=("sign-in-cache", "control-characters", "access-log", "pool-metrics"),
    )
    parser.add_argument("--profile", help="write a yappi profile of the last rep here")
    args = parser.parse_args()
    bench = asyncio.run(create_bench_database(args.postgres))
    try:
        ServerProcess(bench.dsn, Path(tempfile.mkdtemp(prefix="timebank-profile-"))).migrate()
        asyncio.run(seed(bench, args.members, args.history))
        per_write = uvloop.run(drive(bench, args))
    finally:
        asyncio.run(drop_database(args.postgres, bench.database))
    print(f"median {statistics.median(per_write):.3f} ms of CPU per write; load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
