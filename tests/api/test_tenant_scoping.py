"""Beyond one machine: the schema can be distributed by organisation (Citus) without a redesign.

What can be checked here, without Citus:

- every tenant table carries ``organisation_id``;
- every foreign key between tenant tables includes it (composite), so it can hold within one node;
- every statement the app sends that touches a tenant table filters on it: the SQL of a
  representative run of the API is captured (SQLAlchemy's ``before_cursor_execute``), and the
  statements the hot path sends by the driver itself (the ``HotStatement`` objects, in their
  PostgreSQL and SQLite forms, and the ``timebank_post`` function) are read from their source.
"""

import asyncio
import re
import sys
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import event, text
from sqlmodel import SQLModel

import timebank.app  # noqa: F401  (imports every module: every table on the metadata, every hot statement)
from tests.api.conftest import ApiOrg, make_api_org
from tests.api.support import posted
from tests.conftest import EmptyDatabase, today
from timebank.db import Database, create_database
from timebank.db.hot_path import HotStatement
from timebank.db.migrate import upgrade
from timebank.db.tenancy import CROSS_ORGANISATION_FILTER, GLOBAL_TABLES, TENANT_KEY

TENANT_TABLES = {name for name in SQLModel.metadata.tables if name not in GLOBAL_TABLES}
SQL_WORDS = {
    "where", "join", "inner", "left", "right", "outer", "cross", "on", "set", "values", "order", "group",
    "limit", "offset", "returning", "for", "union", "except", "having", "using", "select", "default", "as",
}  # fmt: skip
TABLE_REFERENCE = re.compile(r"\b(?:FROM|JOIN|UPDATE|INTO)\s+(\w+)(?:\s+(?:AS\s+)?(\w+))?", re.IGNORECASE)


def tenant_references(sql: str) -> Iterator[tuple[str, str]]:
    """(table, the name it goes by) for every tenant table a statement names."""
    for match in TABLE_REFERENCE.finditer(sql):
        table, alias = match.group(1).lower(), match.group(2)
        if table in TENANT_TABLES:
            yield table, alias if alias and alias.lower() not in SQL_WORDS else table


def unscoped(sql: str) -> list[str]:
    """The tenant tables a statement touches without naming their organisation."""
    flat = " ".join(sql.split())
    missing = []
    for table, name in tenant_references(flat):
        key = TENANT_KEY
        if table == "members" and CROSS_ORGANISATION_FILTER in flat:
            continue  # a login's memberships, in every organisation (see timebank/db/tenancy.py)
        qualified = re.search(rf"\b{re.escape(name)}\.{key}\s*(=|IN\b)", flat, re.IGNORECASE)
        plain = re.search(rf"(?<![\w.]){key}\s*(=|IN\b)", flat, re.IGNORECASE)
        inserted = re.search(rf"\bINTO\s+{table}\b[^(]*\([^)]*\b{key}\b", flat, re.IGNORECASE)
        if not (qualified or inserted or (plain and len(set(tenant_references(flat))) == 1)):
            missing.append(table)
    return missing


class TestTheSchema:
    def test_every_tenant_table_carries_the_organisation(self):
        assert {"members", "accounts", "transactions", "postings", "categories"} <= TENANT_TABLES
        for name in TENANT_TABLES:
            column = SQLModel.metadata.tables[name].c.get(TENANT_KEY)
            assert column is not None and not column.nullable, f"{name} has no NOT NULL {TENANT_KEY}"

    def test_every_foreign_key_between_tenant_tables_includes_the_organisation(self):
        single = []
        for name in TENANT_TABLES:
            for constraint in SQLModel.metadata.tables[name].foreign_key_constraints:
                referred = constraint.referred_table.name
                if referred in GLOBAL_TABLES:
                    continue
                pairs = {(e.parent.name, e.column.name) for e in constraint.elements}
                if (TENANT_KEY, TENANT_KEY) not in pairs:
                    single.append(f"{name}({', '.join(p for p, _ in sorted(pairs))}) -> {referred}")
        assert single == []

    def test_the_checker_is_not_fooled(self):
        assert unscoped("SELECT a.id FROM accounts AS a WHERE a.id = $1") == ["accounts"]
        assert unscoped("UPDATE accounts SET version=? WHERE accounts.id = ?") == ["accounts"]
        assert unscoped("SELECT m.id FROM members m JOIN accounts ON accounts.member_id = m.id "
                        "WHERE m.organisation_id = ?") == ["accounts"]  # fmt: skip
        assert unscoped("SELECT id FROM users WHERE username = ?") == []
        # timebank_post's balance update as migration 0003 wrote it:
        assert unscoped("UPDATE accounts a SET balance_minutes = leg.balance FROM unnest(p_account_ids, balances) "
                        "AS leg(id, balance) WHERE a.id = leg.id") == ["accounts"]  # fmt: skip
        assert unscoped("INSERT INTO postings (organisation_id, account_id) VALUES (?, ?)") == []


@pytest.fixture
def statements(db: Database) -> Iterator[list[str]]:
    """Every statement the app sends through SQLAlchemy while the test runs."""
    captured: list[str] = []

    def capture(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        captured.append(statement)

    engines = [db.engine.sync_engine, db.autocommit_engine.sync_engine]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", capture)
    yield captured
    for engine in engines:
        event.remove(engine, "before_cursor_execute", capture)


async def a_representative_run(client, api_org: ApiOrg) -> None:
    """Every kind of API call a day centre makes, each answered successfully."""
    coordinator, staff, member = api_org.coordinator, api_org.staff, api_org.member
    url = api_org.url

    async def ok(response, status: int = 200) -> dict:
        assert response.status_code == status, response.text
        return response.json()

    await ok(await client.get("/api/v1/me", headers=member.headers))
    await ok(await client.get(url(), headers=member.headers))
    settings = {
        "name": f"Centre {uuid.uuid4().hex[:4]}",
        "min_balance_hours": "-99",
        "categories": ["Gardening", "Cooking", "Lifts"],
    }
    await ok(await client.patch(url(), json=settings, headers=coordinator.headers))
    new = await ok(await client.post(url("/members"), json={"display_name": "Newcomer"}, headers=staff.headers), 201)
    await ok(await client.get(url("/members?q=new"), headers=staff.headers))
    await ok(await client.get(url(f"/members/{member.member_id}"), headers=member.headers))
    await ok(await client.patch(url(f"/members/{new['id']}"), json={"email": "n@example.org"}, headers=staff.headers))
    await ok(await client.get(url("/accounts"), headers=staff.headers))
    await ok(await client.get(url(f"/accounts/{member.account_id}"), headers=member.headers))
    exchange = await posted(client, api_org, api_org.other_member.account_id, member.account_id, category="Gardening")
    await posted(client, api_org, staff.account_id, member.account_id, by=member)  # help received
    group = {
        "givers": [{"account_id": staff.account_id, "minutes": 60}],
        "receivers": [
            {"account_id": member.account_id, "minutes": 30},
            {"account_id": new["account_id"], "minutes": 30},
        ],
        "occurred_on": today().isoformat(),
        "description": "Group session",
    }
    await ok(await client.post(url("/exchanges"), json=group, headers=staff.posting()), 201)
    await ok(await client.get(url(f"/accounts/{member.account_id}/statement"), headers=member.headers))
    await ok(await client.get(url("/exchanges"), headers=staff.headers))
    await ok(await client.get(url(f"/exchanges/{exchange['id']}"), headers=member.headers))
    corrections = url(f"/exchanges/{exchange['id']}/corrections")
    wrong = {"what_is_wrong": "It was 30 minutes"}
    correction = await ok(await client.post(corrections, json=wrong, headers=member.posting()), 201)
    await ok(await client.get(corrections, headers=member.headers))
    await ok(await client.get(url("/corrections?status=open"), headers=staff.headers))
    await ok(
        await client.post(
            url(f"/exchanges/{exchange['id']}/reversal"), json={"reason": "Mistake"}, headers=coordinator.posting()
        ),
        201,
    )
    answer = {"answer": "Reversed"}
    await ok(
        await client.post(url(f"/corrections/{correction['id']}/answer"), json=answer, headers=staff.posting()), 201
    )
    await ok(await client.get(url(f"/members/{member.member_id}/export"), headers=coordinator.headers))
    await ok(
        await client.post(
            url(f"/members/{new['id']}/erasure"), json={"confirm_display_name": "Newcomer"}, headers=coordinator.headers
        )
    )
    await ok(await client.post("/api/v1/auth/token", json={"username": member.username, "password": "wrong"}), 401)


async def rows_of_a_migrated_database(backend: str, directory, query: str) -> list:
    """``query``'s rows on a new database of ``backend`` that the migrations alone made."""
    factory = EmptyDatabase(backend, directory)
    url = await asyncio.to_thread(factory.create)
    try:
        await asyncio.to_thread(upgrade, url)
        database = create_database(url)
        try:
            async with database.engine.connect() as conn:
                return list((await conn.execute(text(query))).all())
        finally:
            await database.dispose()
    finally:
        await asyncio.to_thread(factory.drop_all)


class TestEveryStatementNamesItsOrganisation:
    async def test_in_the_sql_the_api_sends(self, client, db: Database, statements: list[str]):
        api_org = await make_api_org(db, min_balance_minutes=-6000)
        statements.clear()  # only what the API itself sends
        await a_representative_run(client, api_org)
        touching = [s for s in statements if any(True for _ in tenant_references(" ".join(s.split())))]
        assert len(touching) > 20  # the run really went through the database
        offenders = {" ".join(s.split()): unscoped(s) for s in touching if unscoped(s)}
        assert offenders == {}, "\n".join(f"{tables}: {sql}" for sql, tables in offenders.items())

    def test_in_the_hot_path_statements_sent_by_the_drivers_themselves(self):
        """Sent by asyncpg or aiosqlite without SQLAlchemy, so the capture above never sees them."""
        hot = [
            value
            for name, module in list(sys.modules.items())
            if name.startswith("timebank.")
            for value in vars(module).values()
            if isinstance(value, HotStatement)
        ]
        assert len(hot) >= 12  # the token and session checks, the account reads, the SQLite writer's steps
        sent = [q.sql for q in hot] + [q.sqlite.sql for q in hot]
        assert sum(1 for sql in sent if any(True for _ in tenant_references(" ".join(sql.split())))) >= 20
        assert {sql: unscoped(sql) for sql in sent if unscoped(sql)} == {}

    async def test_in_timebank_post_and_the_ledger_triggers(self, tmp_path):
        """PostgreSQL only has these functions (SQLite's writer is captured above), so on a database of its own."""
        bodies = await rows_of_a_migrated_database(
            "postgresql",
            tmp_path,
            "SELECT proname, prosrc FROM pg_proc WHERE proname IN ('timebank_post', 'timebank_check_balanced', "
            "'timebank_post_as', 'timebank_users_of', 'timebank_sign_in_changed')",
        )
        assert len(bodies) == 5
        # Each part of a UNION on its own: one part naming its organisation must not vouch for another.
        parts = [part for _, body in bodies for s in body.split(";") for part in re.split(r"\bUNION(?: ALL)?\b", s)]
        statements = [s for s in parts if any(True for _ in tenant_references(s))]
        assert len(statements) >= 7
        assert {s.strip()[:120]: unscoped(s) for s in statements if unscoped(s)} == {}

    async def test_in_the_sqlite_triggers_that_keep_sign_in_versions(self, tmp_path):
        """SQLite runs migration 0012's triggers inside the database, where no capture sees them."""
        rows = await rows_of_a_migrated_database(
            "sqlite", tmp_path, "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%sign_in_changed%'"
        )
        triggers = [sql for (sql,) in rows]
        assert len(triggers) == 9
        touching = [sql for sql in triggers if any(True for _ in tenant_references(" ".join(sql.split())))]
        assert len(touching) >= 4  # the accounts' and the organisations' triggers read members
        assert {sql: unscoped(sql) for sql in touching if unscoped(sql)} == {}
