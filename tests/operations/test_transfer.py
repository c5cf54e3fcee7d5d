"""`timebank dump` and `timebank load` move everything that matters from SQLite to PostgreSQL
and back: every row of every carried table comes out the same, and the ledger verifies on
each side. The load only inserts: the append-only triggers stay on."""

import asyncio
import datetime as dt
import io
import json
import uuid

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from tests.conftest import EmptyDatabase, make_org, new_key, require_postgres, today
from tests.operations.conftest import run_cli
from tests.operations.generated_ledger import generate_ledger
from timebank import ledger
from timebank.auth.tokens import issue_token
from timebank.db import Database, create_database
from timebank.db.migrate import upgrade
from timebank.demo import load_demo
from timebank.ledger.verify import verify_ledger
from timebank.models import User
from timebank.operations.transfer import NOT_CARRIED, TransferError, carried_tables, dump_database, load_database

SEED = 4242
GENERATED_TRANSACTIONS = 3000


def quiet(_: int) -> None:
    pass


async def dumped(db: Database) -> tuple[dict, list[str]]:
    out = io.StringIO()
    await dump_database(db, out, on_total=quiet, on_rows=quiet)
    header, *rows = out.getvalue().splitlines()
    return json.loads(header), rows


async def loaded(db: Database, dump: tuple[dict, list[str]]) -> None:
    header, rows = dump
    await load_database(db, io.StringIO("\n".join([json.dumps(header), *rows]) + "\n"), on_rows=quiet)


@pytest.fixture
async def databases(tmp_path):
    """Makes migrated databases of either backend, and disposes of them all afterwards."""
    require_postgres()
    factories = {backend: EmptyDatabase(backend, tmp_path) for backend in ("sqlite", "postgresql")}
    opened: list[Database] = []

    async def new(backend: str) -> Database:
        url = await asyncio.to_thread(factories[backend].create)
        await asyncio.to_thread(upgrade, url)
        opened.append(create_database(url))
        return opened[-1]

    yield new
    for database in opened:
        await database.dispose()
    for factory in factories.values():
        await asyncio.to_thread(factory.drop_all)


async def fill_with_the_demo(db: Database) -> None:
    await load_demo(db)


async def fill_with_a_generated_ledger(db: Database) -> None:
    generated = await generate_ledger(db, seed=SEED, transactions=GENERATED_TRANSACTIONS)
    assert generated.transactions > GENERATED_TRANSACTIONS * 0.8


class TestRoundTrip:
    @pytest.mark.parametrize("fill", [fill_with_the_demo, fill_with_a_generated_ledger], ids=["demo", "generated"])
    async def test_sqlite_to_postgresql_and_back_keeps_every_row(self, databases, fill):
        source = await databases("sqlite")
        await fill(source)
        async with source.engine.connect() as conn:  # what the source holds, counted independently
            counts = {t.name: await conn.scalar(select(func.count()).select_from(t)) for t in carried_tables()}
        first = await dumped(source)

        postgres = await databases("postgresql")
        await loaded(postgres, first)
        assert await verify_ledger(postgres) == []
        second = await dumped(postgres)

        back = await databases("sqlite")
        await loaded(back, second)
        assert await verify_ledger(back) == []
        third = await dumped(back)

        assert first[0]["tables"] == counts
        assert {t.name for t in carried_tables()} == set(counts)
        assert not NOT_CARRIED & set(counts)
        assert counts["transactions"] > 100 and counts["postings"] > 2 * counts["transactions"] - 1
        assert first[1] == second[1] == third[1]  # every row of every table, field for field
        assert first[0] == second[0] == third[0]


class TestLoadIntoPostgreSQL:
    async def test_sequences_move_past_the_loaded_ids_and_the_ledger_guards_stay_on(self, databases):
        source = await databases("sqlite")
        await load_demo(source)
        postgres = await databases("postgresql")
        await loaded(postgres, await dumped(source))

        async with postgres.engine.connect() as conn:
            highest = {
                name: await conn.scalar(text(f"SELECT max(id) FROM {name}"))
                for name in ("organisations", "users", "members", "accounts", "transactions", "postings", "categories")
            }
            enabled = dict(
                (
                    await conn.execute(text("SELECT tgname, tgenabled::text FROM pg_trigger WHERE NOT tgisinternal"))
                ).all()
            )
        assert enabled["transactions_append_only"] == enabled["postings_append_only"] == "O"

        org = await make_org(postgres)  # new organisation, accounts and categories
        alice, bob = await org.member("Alice"), await org.member("Bob")
        posted = await ledger.post_exchange(
            postgres, org.id, giver_account_id=alice, receiver_account_id=bob, minutes=30, occurred_on=today(),
            description="After the move", recorded_by=None, idempotency_key=new_key(),
        )  # fmt: skip
        assert org.id > highest["organisations"] and alice > highest["accounts"]
        assert posted.id > highest["transactions"]
        async with postgres.engine.connect() as conn:
            assert (
                await conn.scalar(text("SELECT min(id) FROM postings WHERE transaction_id = :t"), {"t": posted.id})
                > highest["postings"]
            )

        with pytest.raises(DBAPIError, match="append-only"):
            async with postgres.engine.begin() as conn:
                await conn.execute(text("UPDATE transactions SET description = 'changed' WHERE id = 1"))


class TestLoadRefuses:
    async def test_a_database_that_is_not_empty_and_leaves_it_unchanged(self, databases):
        source = await databases("sqlite")
        await load_demo(source)
        dump = await dumped(source)
        target = await databases("postgresql")
        await make_org(target)
        before = await dumped(target)
        with pytest.raises(TransferError, match="not empty"):
            await loaded(target, dump)
        assert await dumped(target) == before

    async def test_a_dump_at_another_schema_revision(self, databases):
        source = await databases("sqlite")
        header, rows = await dumped(source)
        header["schema_revision"] = "0001"
        with pytest.raises(TransferError, match="run `timebank migrate` on both"):
            await loaded(await databases("sqlite"), (header, rows))

    async def test_tokens_are_not_carried(self, databases):
        source = await databases("sqlite")
        org = await make_org(source)
        await org.member("Alice")
        async with source.session() as session:
            user = User(username=f"u-{uuid.uuid4().hex[:8]}", password_hash="x")
            session.add(user)
            await session.commit()
            assert user.id is not None
        await issue_token(source, user.id, dt.timedelta(hours=1))
        header, _ = await dumped(source)
        assert "api_tokens" not in header["tables"] and header["tables"]["users"] == 1


class TestCommands:
    async def test_dump_and_load_print_what_they_did(self, databases, tmp_path):
        source = await databases("sqlite")
        await load_demo(source)
        source_url = source.engine.url.render_as_string(hide_password=False)
        target = await databases("postgresql")
        target_url = target.engine.url.render_as_string(hide_password=False)
        path = tmp_path / "riverside.jsonl"

        dumped_out = await asyncio.to_thread(run_cli, source_url, "dump", str(path))
        assert dumped_out.exit_code == 0, dumped_out.output
        assert "Dumped" in dumped_out.output and "transactions" in dumped_out.output
        load_out = await asyncio.to_thread(run_cli, target_url, "load", str(path))
        assert load_out.exit_code == 0, load_out.output
        assert "Loaded" in load_out.output
        again = await asyncio.to_thread(run_cli, target_url, "load", str(path))
        assert again.exit_code == 1 and "not empty" in again.output
        verified = await asyncio.to_thread(run_cli, target_url, "verify")
        assert verified.exit_code == 0, verified.output
