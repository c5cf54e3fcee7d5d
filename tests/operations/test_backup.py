"""Backups are consistent while exchanges are being posted, restore only into an empty
database, and what a restore gives back verifies; retention keeps 14 days and 8 weeks."""

import asyncio
import json
import random

from sqlalchemy import text

from tests.conftest import make_org, new_key, today
from tests.operations.conftest import run_cli
from timebank import ledger
from timebank.db import create_database
from timebank.db.migrate import upgrade
from timebank.ledger.verify import verify_ledger
from timebank.operations.backup import backups_to_prune, create_backup, restore_backup

SEED = 20261201
WRITERS = 4


async def transaction_ids(url: str) -> set[int]:
    database = create_database(url)
    try:
        async with database.engine.connect() as conn:
            return set((await conn.execute(text("SELECT id FROM transactions"))).scalars())
    finally:
        await database.dispose()


class TestBackupUnderLoad:
    async def test_every_transaction_acknowledged_before_the_backup_is_in_the_restored_copy(
        self, empty_databases, tmp_path
    ):
        source_url = await asyncio.to_thread(empty_databases.create)
        await asyncio.to_thread(upgrade, source_url)
        source = create_database(source_url)
        org = await make_org(source, min_balance_minutes=-1_000_000)
        accounts = [await org.member(f"Member {n}") for n in range(8)]
        rng = random.Random(SEED)
        acknowledged: list[int] = []
        stop = asyncio.Event()
        progress = asyncio.Condition()

        async def acknowledged_reach(count: int) -> None:
            async with progress:
                await progress.wait_for(lambda: len(acknowledged) >= count)

        async def writer() -> None:
            while not stop.is_set():
                giver, receiver = rng.sample(accounts, 2)
                posted = await ledger.post_exchange(
                    source,
                    org.id,
                    giver_account_id=giver,
                    receiver_account_id=receiver,
                    minutes=rng.randint(1, 240),
                    occurred_on=today(),
                    description="Load during a backup",
                    recorded_by=None,
                    idempotency_key=new_key(),
                )
                acknowledged.append(posted.id)  # the write has committed: it is acknowledged
                async with progress:
                    progress.notify_all()

        writers = [asyncio.create_task(writer()) for _ in range(WRITERS)]
        try:
            await acknowledged_reach(200)
            before_backup = set(acknowledged)
            result = await asyncio.to_thread(create_backup, source_url, tmp_path / "backup")
            after_backup = len(acknowledged)
            await acknowledged_reach(after_backup + 20)  # the load goes on after it too
        finally:
            stop.set()
            await asyncio.gather(*writers)
            await source.dispose()

        restored_url = await asyncio.to_thread(empty_databases.create)
        restored = await asyncio.to_thread(restore_backup, restored_url, tmp_path / "backup")
        in_copy = await transaction_ids(restored_url)

        assert before_backup <= in_copy, f"missing after restore: {sorted(before_backup - in_copy)[:10]}"
        assert in_copy <= set(acknowledged)  # and nothing that was never acknowledged
        assert len(in_copy) < len(acknowledged)  # a moment in time, not whatever came later
        assert result.transactions == restored.transactions == len(in_copy)
        database = create_database(restored_url)
        try:
            assert await verify_ledger(database) == []
        finally:
            await database.dispose()


class TestBackupAndRestoreCommands:
    async def test_backup_records_its_status_and_restore_refuses_a_database_that_is_not_empty(
        self, fresh_url, fresh_db, empty_databases, tmp_path
    ):
        org = await make_org(fresh_db)
        alice, bob = await org.member("Alice"), await org.member("Bob")
        await ledger.post_exchange(
            fresh_db, org.id, giver_account_id=alice, receiver_account_id=bob, minutes=30, occurred_on=today(),
            description="Shopping", recorded_by=None, idempotency_key=new_key(),
        )  # fmt: skip
        status_file = tmp_path / "status.json"
        backups = tmp_path / "backups"
        backups.mkdir()

        made = await asyncio.to_thread(
            run_cli, fresh_url, "backup", str(backups), TIMEBANK_BACKUP_STATUS_FILE=str(status_file)
        )
        assert made.exit_code == 0, made.output
        assert "Backed up 1 transactions" in made.output
        status = json.loads(status_file.read_text())
        assert set(status) == {"finished_at", "path", "bytes", "transactions"}
        assert status["transactions"] == 1 and status["bytes"] > 0 and status["finished_at"].endswith("+00:00")
        backup_file = status["path"]

        refused = await asyncio.to_thread(run_cli, fresh_url, "restore", backup_file)
        assert refused.exit_code == 1
        assert "not empty" in refused.output

        target = await asyncio.to_thread(empty_databases.create)
        restored = await asyncio.to_thread(run_cli, target, "restore", backup_file)
        assert restored.exit_code == 0, restored.output
        assert "Restored 1 transactions" in restored.output
        verified = await asyncio.to_thread(run_cli, target, "verify")
        assert verified.exit_code == 0, verified.output


class TestRetention:
    def test_keeps_the_newest_of_each_of_14_days_and_8_weeks(self):
        # Two backups a day for 120 days, from 2026-01-01 (a Thursday).
        names = [f"timebank-202601{day:02d}T{hour:02d}0000Z.pgdump" for day in range(1, 32) for hour in (2, 14)]
        names += [
            f"timebank-2026{month:02d}{day:02d}T{hour:02d}0000Z.pgdump"
            for month, days in ((2, 28), (3, 31), (4, 30))
            for day in range(1, days + 1)
            for hour in (2, 14)
        ]
        names.append("notes.txt")
        pruned = set(backups_to_prune(names, daily=14, weekly=8))
        kept = sorted(set(names) - pruned - {"notes.txt"})

        assert "notes.txt" not in pruned
        daily = [n for n in kept if n >= "timebank-20260417"]
        assert daily == [f"timebank-202604{day:02d}T140000Z.pgdump" for day in range(17, 31)]
        older = [n for n in kept if n < "timebank-20260417"]
        # The newest (Sunday's) of each ISO week until 8 weeks are covered: the weeks ending
        # 3 May, 26 April and 19 April already keep a daily backup, so five more.
        assert older == [
            "timebank-20260315T140000Z.pgdump",
            "timebank-20260322T140000Z.pgdump",
            "timebank-20260329T140000Z.pgdump",
            "timebank-20260405T140000Z.pgdump",
            "timebank-20260412T140000Z.pgdump",
        ]

    async def test_prune_deletes_what_retention_drops_and_nothing_else(self, fresh_url, fresh_db, tmp_path):
        backups = tmp_path / "kept"
        backups.mkdir()
        old = [f"timebank-202601{day:02d}T020000Z.sqlite3" for day in range(1, 31)]  # January, daily
        for name in [*old, "README.txt"]:
            (backups / name).write_text("x")
        result = await asyncio.to_thread(
            run_cli, fresh_url, "backup", str(backups), "--prune", "--keep-daily", "3", "--keep-weekly", "2",
            TIMEBANK_BACKUP_STATUS_FILE=str(tmp_path / "status.json"),
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        left = sorted(p.name for p in backups.iterdir())
        new = json.loads((tmp_path / "status.json").read_text())["path"].rsplit("/", 1)[1]
        # Three days: today's new backup, 30 and 29 January; two weeks: today's and 30 January's.
        assert left == ["README.txt", "timebank-20260129T020000Z.sqlite3", "timebank-20260130T020000Z.sqlite3", new]
        assert f"Pruned {len(old) - 2} old backup(s)" in result.output
