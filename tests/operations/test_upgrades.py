"""Upgrades keep every hour: a database built at each earlier migration and filled with a
ledger written in that revision's own SQL comes through `alembic upgrade head` with every
transaction, posting and balance unchanged. The revisions come from the Alembic script
directory, so a new migration is tested without a change here.

The ledger is made here, not by the ledger code (which fits only the latest schema), and
inserted through the tables as that revision's database describes them (reflected). A
column that a later revision adds as NOT NULL without a default must be given a value in
``EXTRA_VALUES`` (as a function of the row); the test says so when it meets one.
"""

import asyncio
import datetime as dt
import json
import random
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, Table, select, text

from tests.conftest import make_org, new_key, today
from tests.operations.conftest import run_cli
from timebank import ledger
from timebank.db import create_database
from timebank.db.migrate import alembic_config, downgrade, upgrade
from timebank.ledger.verify import verify_ledger
from timebank.reports.closing import close_month

SEED = 1101
SCRIPTS = ScriptDirectory.from_config(alembic_config("sqlite://"))
HEAD = SCRIPTS.get_current_head()
EARLIER = [revision.revision for revision in SCRIPTS.walk_revisions() if revision.revision != HEAD]
# Values for NOT NULL columns without a default that some revision adds:
# {(table, column): a function of the row's other values}, e.g. a case-folded key from the name.
EXTRA_VALUES: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {
    # 0004: the case-folded key a category is matched by (models/category.py).
    ("categories", "name_key"): lambda row: " ".join(row["name"].split()).casefold(),
}
T0 = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)


class LedgerBuilder:
    """Rows as the ledger keeps them: balances, versions and running balances follow the postings."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.ids: dict[str, int] = defaultdict(int)
        self.balances: dict[int, int] = {}
        self.versions: dict[int, int] = {}
        self.kinds: dict[int, str] = {}

    def new(self, table: str, **values: Any) -> int:
        self.ids[table] += 1
        self.rows[table].append({"id": self.ids[table], **values})
        return self.ids[table]

    def account(self, org: int, kind: str, member_id: int | None) -> int:
        account_id = self.new(
            "accounts", organisation_id=org, kind=kind, member_id=member_id, balance_minutes=0,
            min_balance_minutes=None, version=0, is_active=True, created_at=T0,
        )  # fmt: skip
        self.balances[account_id], self.versions[account_id], self.kinds[account_id] = 0, 0, kind
        return account_id

    def post(self, org: int, kind: str, legs: list[tuple[int, int]], day: dt.date, **values: Any) -> int:
        txn = self.new(
            "transactions", organisation_id=org, kind=kind, occurred_on=day,
            recorded_at=T0 + dt.timedelta(days=(day - T0.date()).days, minutes=self.ids["transactions"]),
            description=f"{kind} on {day:%d %B}", idempotency_key=f"key-{org}-{self.ids['transactions'] + 1}",
            request_fingerprint="0" * 64, **{"reverses_id": None, "category_id": None, **values},
        )  # fmt: skip
        for account_id, minutes in legs:
            self.balances[account_id] += minutes
            self.versions[account_id] += 1
            self.new(
                "postings", organisation_id=org, transaction_id=txn, account_id=account_id, minutes=minutes,
                balance_after=self.balances[account_id], account_version=self.versions[account_id], occurred_on=day,
            )  # fmt: skip
        return txn

    def centre(self, number: int) -> None:
        """A centre with people with and without logins, categories, and a year of every kind of transaction."""
        rng = self.rng
        org = self.new(
            "organisations", slug=f"centre-{number}", name=f"Centre {number}", timezone="Europe/London",
            min_balance_minutes=-600, books_closed_through=None, settings={}, created_at=T0,
        )  # fmt: skip
        categories = [
            self.new("categories", organisation_id=org, name=name, is_active=True)
            for name in ("Gardening", "Cooking", "Lifts")
        ]
        agency, pot = self.account(org, "agency", None), self.account(org, "pot", None)
        people, recorders = [], [None]
        for person in range(12):
            user_id = None
            if person % 3 == 0:
                user_id = self.new(
                    "users", username=f"c{number}-person{person}", password_hash="$argon2id$v=19$placeholder",
                    email=f"p{person}@example.org", is_active=True, is_site_admin=False, created_at=T0,
                )  # fmt: skip
                recorders.append(user_id)
            role = "coordinator" if person == 0 else "staff" if person == 3 else "member"
            member = self.new(
                "members", organisation_id=org, user_id=user_id, role=role, display_name=f"Person {number}.{person}",
                email=None, joined_on=dt.date(2026, 1, 5), is_active=person != 11, created_at=T0,
            )  # fmt: skip
            people.append(self.account(org, "member", member))

        for account_id in people[:4]:
            opening = rng.choice((-120, 90, 300))
            self.post(org, "opening_balance", [(account_id, opening), (agency, -opening)], dt.date(2026, 1, 5))
        posted: list[tuple[int, list[tuple[int, int]], dt.date]] = []
        for step in range(120):
            day = dt.date(2026, 1, 6) + dt.timedelta(days=step * 2)
            draw = rng.random()
            if draw < 0.65:
                giver, receiver = rng.sample([*people, agency], 2)
                minutes = rng.choice((30, 60, 90))
                legs, kind = [(giver, minutes), (receiver, -minutes)], "exchange"
            elif draw < 0.8:
                leader, *attendees = rng.sample(people, 4)
                legs, kind = [(leader, 90), *((a, -30) for a in attendees)], "group"
            elif draw < 0.9:
                legs, kind = [(rng.choice(people), -30), (pot, 30)], "donation"
            elif self.balances[pot] >= 15:
                legs, kind = [(pot, -15), (rng.choice(people), 15)], "grant"
            else:
                continue
            if any(self.kinds[a] == "member" and m < 0 and self.balances[a] + m < -600 for a, m in legs):
                continue
            extra = {"category_id": rng.choice([None, *categories]), "recorded_by_user_id": rng.choice(recorders)}
            posted.append((self.post(org, kind, legs, day, **extra), legs, day))
        for txn, legs, day in rng.sample(posted, 5):
            self.post(org, "reversal", [(a, -m) for a, m in legs], day + dt.timedelta(days=1), reverses_id=txn)
        for row in self.rows["accounts"]:
            if row["organisation_id"] == org:
                row["balance_minutes"], row["version"] = self.balances[row["id"]], self.versions[row["id"]]
                row["min_balance_minutes"] = {"member": min(-600, row["balance_minutes"]), "pot": 0}.get(row["kind"])


def a_realistic_ledger(seed: int) -> dict[str, list[dict[str, Any]]]:
    """Two centres' ledgers, as rows of the tables of migration 0001."""
    builder = LedgerBuilder(seed)
    for number in range(2):
        builder.centre(number)
    return builder.rows


def insert_at_revision(sync_connection, ledger: dict[str, list[dict[str, Any]]], revision: str) -> None:
    schema = MetaData()
    schema.reflect(sync_connection)
    for name in ("organisations", "users", "categories", "members", "accounts", "transactions", "postings"):
        table: Table = schema.tables[name]
        rows = []
        for row in ledger[name]:
            values = {column: value for column, value in row.items() if column in table.c}
            for column in table.columns:
                if column.name in values or column.nullable or column.server_default is not None:
                    continue
                if (name, column.name) not in EXTRA_VALUES:
                    pytest.fail(
                        f"revision {revision}: {name}.{column.name} is NOT NULL without a default; "
                        "give it a value in EXTRA_VALUES"
                    )
                values[column.name] = EXTRA_VALUES[(name, column.name)](values)
            rows.append(values)
        sync_connection.execute(table.insert(), rows)


# Read with plain SQL, so the comparison does not depend on the models of either revision.
SNAPSHOT = {
    "transactions": "SELECT id, organisation_id, kind, occurred_on, recorded_by_user_id, description, category_id, "
    "idempotency_key, reverses_id FROM transactions ORDER BY id",
    "postings": "SELECT id, transaction_id, account_id, minutes, balance_after, account_version, occurred_on "
    "FROM postings ORDER BY id",
    "balances": "SELECT id, organisation_id, kind, member_id, balance_minutes, version FROM accounts ORDER BY id",
    "people": "SELECT m.id, m.display_name, m.role, u.username, u.password_hash FROM members m "
    "LEFT JOIN users u ON u.id = m.user_id ORDER BY m.id",
}


async def snapshot(url: str) -> dict[str, list[tuple]]:
    database = create_database(url)
    try:
        async with database.engine.connect() as conn:
            return {
                name: [tuple(str(v) for v in row) for row in await conn.execute(text(query))]
                for name, query in SNAPSHOT.items()
            }
    finally:
        await database.dispose()


@pytest.mark.parametrize("revision", EARLIER)
async def test_upgrading_from_an_earlier_migration_keeps_every_transaction_and_balance(fresh_url, revision):
    await asyncio.to_thread(upgrade, fresh_url, revision)
    ledger = a_realistic_ledger(SEED)
    database = create_database(fresh_url)
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(insert_at_revision, ledger, revision)
    finally:
        await database.dispose()
    before = await snapshot(fresh_url)
    assert len(before["transactions"]) > 150 and len(before["postings"]) > 300
    behind = await asyncio.to_thread(run_cli, fresh_url, "migrate", "--check")
    assert behind.exit_code == 1 and "behind" in behind.output

    await asyncio.to_thread(upgrade, fresh_url)

    assert await snapshot(fresh_url) == before
    current = await asyncio.to_thread(run_cli, fresh_url, "migrate", "--check")
    assert current.exit_code == 0, current.output
    database = create_database(fresh_url)
    try:
        assert await verify_ledger(database) == []
        async with database.engine.connect() as conn:
            recorded = await conn.scalar(select(text("count(*)")).select_from(text("alembic_version")))
        assert recorded == 1
    finally:
        await database.dispose()


def test_every_earlier_revision_is_tested():
    """The list comes from the script directory: at least 0001 to the one before head."""
    assert EARLIER[-1] == "0001" and HEAD not in EARLIER and len(EARLIER) == len(list(SCRIPTS.walk_revisions())) - 1


async def _stored_reports(url: str) -> list[Any]:
    database = create_database(url)
    try:
        async with database.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT report FROM period_closes ORDER BY id"))).all()
        return [json.loads(report) if isinstance(report, str) else report for (report,) in rows]
    finally:
        await database.dispose()


async def test_revision_0008_takes_names_out_of_stored_reports_and_going_back_puts_them_in(fresh_url):
    """Reports closed before 0008 kept names and descriptions; from it they keep member numbers only."""
    await asyncio.to_thread(upgrade, fresh_url)
    database = create_database(fresh_url)
    try:
        org = await make_org(database)
        giver, receiver = await org.member("Gwen Gardener"), await org.member("Ravi Receiver")
        last_month = today().replace(day=1) - dt.timedelta(days=1)
        await ledger.post_exchange(
            database, org.id, giver_account_id=giver, receiver_account_id=receiver, minutes=90,
            occurred_on=last_month, description="Pruned roses", recorded_by=None, idempotency_key=new_key(),
        )  # fmt: skip
        await close_month(database, org.id, last_month.replace(day=1), closed_by=None, idempotency_key=new_key())
    finally:
        await database.dispose()
    [as_closed] = await _stored_reports(fresh_url)
    assert "Gwen Gardener" not in json.dumps(as_closed)

    await asyncio.to_thread(downgrade, fresh_url, "0007")
    [at_0007] = await _stored_reports(fresh_url)
    assert "Gwen Gardener" in json.dumps(at_0007) and "Ravi Receiver" in json.dumps(at_0007)
    await asyncio.to_thread(upgrade, fresh_url)
    assert await _stored_reports(fresh_url) == [as_closed]
