"""How long an ORM read waits on SQLite while writers post flat out, in one process.

On a fresh SQLite file with the service's settings, ``--writers`` tasks post exchanges
through the ledger one after another, flat out, while one reader asks for the
organisation's details (``orgs.service.get_organisation_details``: what every entry
form's page reads) every 5 ms, ``--reads`` times. Prints the reads' p50, p99 and slowest,
and the writes per second meanwhile. Round nine of docs/performance.md ran it on the
trees before and after read sessions (``Database.read_session``), alternated, with
``PYTHONPATH`` pointing at each:

    .venv/bin/python -m scripts.benchmark.sqlite_reads_under_writes [--writers 4] [--reads 300]
"""

import argparse
import asyncio
import datetime as dt
import tempfile
import time
import uuid
from pathlib import Path

import uvloop

from timebank import ledger
from timebank.db import create_database
from timebank.db.migrate import upgrade
from timebank.members.service import create_member
from timebank.orgs.service import create_organisation, get_organisation_details


async def measure(url: str, writers: int, reads: int) -> None:
    db = create_database(url)
    org = await create_organisation(db, slug="reads-under-writes", name="Reads under writes", changed_by=None)
    accounts = [
        (await create_member(db, org.id, display_name=f"Member {n}", changed_by=None)).account.id
        for n in range(2 * writers)
    ]
    yesterday = dt.date.today() - dt.timedelta(days=1)
    stop = asyncio.Event()

    async def write_flat_out(n: int) -> int:
        written = 0
        while not stop.is_set():
            giver, receiver = accounts[2 * n], accounts[2 * n + 1]
            if written % 2:  # back and forth, so no balance reaches its floor
                giver, receiver = receiver, giver
            await ledger.post_exchange(
                db,
                org.id,
                giver_account_id=giver,
                receiver_account_id=receiver,
                minutes=30,
                occurred_on=yesterday,
                description="benchmark",
                recorded_by=None,
                idempotency_key=uuid.uuid4().hex,
            )
            written += 1
        return written

    tasks = [asyncio.create_task(write_flat_out(n)) for n in range(writers)]
    began = time.perf_counter()
    await asyncio.sleep(0.5)  # the writers under way
    waits = []
    for _ in range(reads):
        start = time.perf_counter()
        await get_organisation_details(db, org.id)
        waits.append((time.perf_counter() - start) * 1000)
        await asyncio.sleep(0.005)
    stop.set()
    written = sum(await asyncio.gather(*tasks))
    seconds = time.perf_counter() - began
    await db.dispose()
    waits.sort()
    print(
        f"reads p50 {waits[len(waits) // 2]:.2f} ms, p99 {waits[int(len(waits) * 0.99) - 1]:.2f} ms, "
        f"slowest {waits[-1]:.2f} ms; {written / seconds:.0f} writes/s meanwhile ({writers} writers)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--reads", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'reads-under-writes.sqlite3'}"
        upgrade(url)
        uvloop.run(measure(url, args.writers, args.reads))


if __name__ == "__main__":
    main()
