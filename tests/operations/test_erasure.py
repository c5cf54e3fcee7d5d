"""Erasing a member who has left: nothing that identifies them is left in any table, the export
or a dump, while their postings, every balance and the ledger's checks stay exactly as they were.
The append-only guard lets through only a description replaced by the erasure marker."""

import asyncio
import datetime as dt
import enum
import io
import json
import uuid

import pytest
from sqlalchemy import func, inspect, select, text, update
from sqlalchemy.exc import DBAPIError

from tests.conftest import make_org, new_key, today
from tests.operations.conftest import run_cli
from timebank import ledger
from timebank.auth.rate_limit import record_failure
from timebank.auth.tokens import issue_token
from timebank.db import Database
from timebank.ledger import errors
from timebank.ledger.verify import verify_ledger
from timebank.members.service import create_member
from timebank.models import Account, Posting, Role, Transaction
from timebank.operations.transfer import dump_database
from timebank.privacy.service import ERASED_DESCRIPTION, erase_member, erased_name, export_member
from timebank.reports.closing import close_month
from timebank.reports.service import Period, monthly_report

transactions = Transaction.__table__


async def ledger_state(db: Database) -> tuple[list, list]:
    """Every posting, and every account's balance: what erasure must not change."""
    async with db.engine.connect() as conn:
        postings = (await conn.execute(select(Posting.__table__).order_by(Posting.__table__.c.id))).all()
        balances = (
            await conn.execute(
                select(Account.__table__.c.id, Account.__table__.c.balance_minutes).order_by(Account.__table__.c.id)
            )
        ).all()
    return postings, balances


async def everything_in_the_database(db: Database) -> str:
    """Every text value of every table (models and otherwise), lower-cased, in one string."""
    found = []
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
        for table in tables:
            for row in await conn.execute(text(f'SELECT * FROM "{table}"')):
                found += [str(value).lower() for value in row if value is not None]
    return "\n".join(found)


class Departing:
    """A member with a login, an email and a history, named in other people's descriptions too."""

    def __init__(self) -> None:
        tag = uuid.uuid4().hex[:6]
        self.name = f"Zebedee Quartermaine{tag}"
        self.email = f"zq{tag}@example.org"
        self.username = f"zebedee.q{tag}"
        self.identifiers = [self.name.lower(), self.email, self.username, f"quartermaine{tag}"]


@pytest.fixture
async def scene(fresh_db: Database):
    org = await make_org(fresh_db, min_balance_minutes=-600)
    person = Departing()
    new = await create_member(
        fresh_db, org.id, display_name=person.name, email=person.email, username=person.username,
        password="a long enough password 123",
        changed_by=None,
    )  # fmt: skip
    departing = new.account.id
    friend, neighbour, third = await org.member("Friend"), await org.member("Neighbour"), await org.member("Third")
    post = {"occurred_on": today(), "recorded_by": None}
    await ledger.post_exchange(
        fresh_db, org.id, giver_account_id=departing, receiver_account_id=friend, minutes=60,
        description=f"{person.name} did Friend's shopping", idempotency_key=new_key(), **post,
    )  # fmt: skip
    await ledger.post_group_activity(
        fresh_db, org.id, givers=[(friend, 60)], receivers=[(departing, 30), (neighbour, 30)],
        description="Art group", idempotency_key=new_key(), **post,
    )  # fmt: skip
    mistaken = await ledger.post_exchange(
        fresh_db, org.id, giver_account_id=friend, receiver_account_id=departing, minutes=15,
        description="Logged twice", idempotency_key=new_key(), **post,
    )  # fmt: skip
    await ledger.reverse_transaction(
        fresh_db, org.id, mistaken.id, reason="Duplicate", recorded_by=None, idempotency_key=new_key()
    )
    surname = person.name.split()[1]
    naming = await ledger.post_exchange(  # not theirs, but it names them
        fresh_db, org.id, giver_account_id=neighbour, receiver_account_id=third, minutes=30,
        description=f"Covered for {surname} at the lunch club", idempotency_key=new_key(), **post,
    )  # fmt: skip
    unrelated = await ledger.post_exchange(
        fresh_db, org.id, giver_account_id=neighbour, receiver_account_id=third, minutes=30,
        description="Fixed a bicycle", idempotency_key=new_key(), **post,
    )  # fmt: skip
    assert new.user is not None and new.user.id is not None
    await issue_token(fresh_db, new.user.id, dt.timedelta(hours=1))
    await record_failure(fresh_db, person.username, "10.9.9.9", window=dt.timedelta(minutes=15))
    return fresh_db, org, person, new, naming.id, unrelated.id


class TestErasure:
    async def test_leaves_nothing_that_identifies_them_and_changes_no_posting_or_balance(self, scene):
        db, org, person, new, naming_id, unrelated_id = scene
        before_export = await export_member(db, org.id, new.member.id)
        assert person.name in str(before_export) and person.username in str(before_export)
        everything = await everything_in_the_database(db)
        assert all(identifier in everything for identifier in person.identifiers)  # the search can find them
        before = await ledger_state(db)

        done = await erase_member(db, org.id, new.member.id, by_user_id=None)

        assert await ledger_state(db) == before
        assert await verify_ledger(db) == []
        everything = await everything_in_the_database(db)
        assert [i for i in person.identifiers if i in everything] == []
        export = str(await export_member(db, org.id, new.member.id)).lower()
        assert [i for i in person.identifiers if i in export] == []
        dump = io.StringIO()
        await dump_database(db, dump, on_total=lambda _: None, on_rows=lambda _: None)
        assert [i for i in person.identifiers if i in dump.getvalue().lower()] == []

        assert done.login == "anonymised" and done.sign_in_records_removed == 1
        assert done.descriptions_removed == 5  # their four (with the reversal) and the one naming them
        async with db.engine.connect() as conn:
            described = dict((await conn.execute(select(transactions.c.id, transactions.c.description))).all())
        assert described[naming_id] == ERASED_DESCRIPTION
        assert described[unrelated_id] == "Fixed a bicycle"

    async def test_the_erased_member_keeps_their_balance_and_cannot_sign_in_or_trade(self, scene):
        db, org, _, new, *_ = scene
        await erase_member(db, org.id, new.member.id, by_user_id=None)
        export = await export_member(db, org.id, new.member.id)
        assert export["member"]["is_active"] is False and export["login"]["can_sign_in"] is False
        assert export["account"]["balance"]["minutes"] == 60 - 30  # gave an hour (+), received half (-)
        with pytest.raises(errors.AccountInactive):
            await ledger.post_exchange(
                db, org.id, giver_account_id=new.account.id, receiver_account_id=org.agency_account_id, minutes=15,
                occurred_on=today(), description="After leaving", recorded_by=None, idempotency_key=new_key(),
            )  # fmt: skip

    async def test_refuses_a_second_erasure_the_last_coordinator_and_oneself(self, scene):
        db, org, _, new, *_ = scene
        await erase_member(db, org.id, new.member.id, by_user_id=None)
        with pytest.raises(errors.LedgerConflict, match="already been erased"):
            await erase_member(db, org.id, new.member.id, by_user_id=None)
        coordinator = await create_member(
            db, org.id, display_name="Only Coordinator", role=Role.COORDINATOR, username=f"c-{new_key()[:8]}",
            password="a long enough password 123",
            changed_by=None,
        )  # fmt: skip
        with pytest.raises(errors.LedgerConflict, match="last active coordinator"):
            await erase_member(db, org.id, coordinator.member.id, by_user_id=None)
        with pytest.raises(errors.LedgerConflict, match="cannot erase yourself"):
            await erase_member(db, org.id, coordinator.member.id, by_user_id=coordinator.user.id)

    async def test_a_login_shared_with_another_organisation_is_only_unlinked(self, fresh_db):
        org, elsewhere = await make_org(fresh_db), await make_org(fresh_db)
        new = await create_member(
            fresh_db, org.id, display_name="Shared Login", username=f"shared-{new_key()[:8]}",
            password="a long enough password 123",
            changed_by=None,
        )  # fmt: skip
        second = await create_member(fresh_db, elsewhere.id, display_name="Shared Login", changed_by=None)
        async with fresh_db.engine.begin() as conn:
            await conn.execute(
                update(second.member.__table__)
                .where(second.member.__table__.c.id == second.member.id)
                .values(user_id=new.user.id)
            )
        done = await erase_member(fresh_db, org.id, new.member.id, by_user_id=None)
        assert done.login.startswith("unlinked")
        export = await export_member(fresh_db, org.id, new.member.id)
        assert export["login"] is None and export["member"]["display_name"] == f"Erased member {new.member.id}"

    async def test_a_closed_month_keeps_their_figures_but_not_their_name(self, fresh_db):
        org = await make_org(fresh_db)
        person = Departing()
        new = await create_member(fresh_db, org.id, display_name=person.name, email=person.email, changed_by=None)
        friend = await org.member("Friend")
        last_month = today().replace(day=1) - dt.timedelta(days=1)
        await ledger.post_exchange(
            fresh_db, org.id, giver_account_id=new.account.id, receiver_account_id=friend, minutes=75,
            occurred_on=last_month, description="Dug the beds", recorded_by=None, idempotency_key=new_key(),
        )  # fmt: skip
        month = Period(last_month.replace(day=1), last_month.replace(day=1))
        await close_month(fresh_db, org.id, month.first, closed_by=None, idempotency_key=new_key())
        before = await monthly_report(fresh_db, org.id, month)
        assert person.name in before.model_dump_json()  # read with the name they have now

        await erase_member(fresh_db, org.id, new.member.id, by_user_id=None)

        after = await monthly_report(fresh_db, org.id, month)
        assert after.closed and person.name not in after.model_dump_json()
        assert after.model_dump_json() == before.model_dump_json().replace(person.name, erased_name(new.member.id))
        everything = await everything_in_the_database(fresh_db)
        assert [i for i in person.identifiers if i in everything] == []


def another_value(column):
    """A value of the column's type (every stored value differs from it in the test below)."""
    kind = column.type.python_type
    if issubclass(kind, enum.Enum):
        return list(kind)[-1]
    return {
        str: "changed",
        object: "changed",  # sqlmodel's AutoString
        int: 999_999,
        dt.datetime: dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
        dt.date: dt.date(2020, 1, 1),
    }[kind]


class TestTheAppendOnlyGuard:
    """The one change the ledger allows is a description replaced by the erasure marker."""

    async def test_every_other_change_to_a_transaction_or_posting_is_refused(self, fresh_db):
        org = await make_org(fresh_db)
        posted = await ledger.post_exchange(
            fresh_db, org.id, giver_account_id=await org.member(), receiver_account_id=await org.member(),
            minutes=30, occurred_on=today(), description="Original", recorded_by=None, idempotency_key=new_key(),
        )  # fmt: skip
        changes = {
            column.name: another_value(column) for column in transactions.columns if column.name != "description"
        }
        for column, value in changes.items():
            with pytest.raises(DBAPIError, match="append-only"):
                async with fresh_db.engine.begin() as conn:
                    await conn.execute(
                        update(transactions)
                        .where(transactions.c.id == posted.id)
                        .values({column: value, "description": ERASED_DESCRIPTION})
                    )
        with pytest.raises(DBAPIError, match="append-only"):
            async with fresh_db.engine.begin() as conn:
                await conn.execute(update(transactions).where(transactions.c.id == posted.id).values(description="x"))
        with pytest.raises(DBAPIError, match="append-only"):
            async with fresh_db.engine.begin() as conn:
                await conn.execute(
                    update(Posting.__table__).where(Posting.__table__.c.transaction_id == posted.id).values(minutes=1)
                )
        async with fresh_db.engine.begin() as conn:
            await conn.execute(
                update(transactions).where(transactions.c.id == posted.id).values(description=ERASED_DESCRIPTION)
            )
            assert await conn.scalar(select(func.count()).select_from(transactions).where(
                transactions.c.description == ERASED_DESCRIPTION)) == 1  # fmt: skip


class TestCommands:
    async def test_export_writes_the_file_and_erase_asks_for_the_name(self, scene, fresh_url, tmp_path):
        db, org, person, new, *_ = scene
        output = tmp_path / "sar.json"
        exported = await asyncio.to_thread(
            run_cli, fresh_url, "member", "export", str(new.member.id), "--org", org.slug, "--output", str(output)
        )
        assert exported.exit_code == 0, exported.output
        assert json.loads(output.read_text())["member"]["display_name"] == person.name

        wrong = await asyncio.to_thread(
            run_cli, fresh_url, "member", "erase", str(new.member.id), "--org", org.slug, input="Someone Else\n"
        )
        assert wrong.exit_code == 1 and "nothing was erased" in wrong.output
        erased = await asyncio.to_thread(
            run_cli, fresh_url, "member", "erase", str(new.member.id), "--org", org.slug, input=f"{person.name}\n"
        )
        assert erased.exit_code == 0, erased.output
        assert f"now 'Erased member {new.member.id}'" in erased.output
        assert person.name.lower() not in await everything_in_the_database(db)
