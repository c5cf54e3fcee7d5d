"""The database itself refuses what must never happen, whatever code talks to it.

Raw SQL here bypasses the ledger service on purpose. Every statement runs in a
transaction that is rolled back, so even a missing guard never changes the shared
database; only the tests that need a commit use a database of their own.
"""

import datetime as dt

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from tests.conftest import make_org, new_key, today
from tests.ledger.support import exchange, execute_and_roll_back, ledger_state, postings, transactions
from timebank.ledger import get_transaction, reverse_transaction
from timebank.ledger.verify import verify_ledger
from timebank.models import TransactionKind


def transaction_row(organisation_id: int, **overrides) -> dict:
    return {
        "organisation_id": organisation_id,
        "kind": TransactionKind.EXCHANGE.value,
        "occurred_on": today(),
        "recorded_at": dt.datetime.now(dt.UTC),
        "description": "Written by hand",
        "idempotency_key": new_key(),
        "request_fingerprint": "0" * 64,
    } | overrides


def posting_row(organisation_id: int, transaction_id: int, account_id: int, minutes: int, **overrides) -> dict:
    return {
        "organisation_id": organisation_id,
        "transaction_id": transaction_id,
        "account_id": account_id,
        "minutes": minutes,
        "balance_after": minutes,
        "account_version": 1,
        "occurred_on": today(),
    } | overrides


class TestTheJournalIsAppendOnly:
    @pytest.mark.parametrize(
        "statement",
        [
            "UPDATE postings SET minutes = minutes * 2 WHERE transaction_id = :id",
            "DELETE FROM postings WHERE transaction_id = :id",
            "UPDATE transactions SET description = 'Rewritten' WHERE id = :id",
            "DELETE FROM transactions WHERE id = :id",
        ],
        ids=["update-posting", "delete-posting", "update-transaction", "delete-transaction"],
    )
    async def test_refuses_to_change_or_remove_an_entry(self, org, db, statement):
        posted = await exchange(org, await org.member("Alice"), await org.member("Bob"), 30)

        with pytest.raises(IntegrityError, match="append-only"):
            await execute_and_roll_back(db, (statement, {"id": posted.id}))

        assert await get_transaction(db, org.id, posted.id) == posted

    @pytest.mark.parametrize("table", ["postings", "transactions"])
    async def test_refuses_to_empty_the_journal(self, org, db, backend, table):
        await exchange(org, await org.member("Alice"), await org.member("Bob"), 30)
        # SQLite has no TRUNCATE: an unqualified DELETE is its equivalent (and the
        # delete trigger turns off its truncate optimisation, so the guard still fires).
        statement = f"TRUNCATE {table} CASCADE" if backend == "postgresql" else f"DELETE FROM {table}"

        with pytest.raises(IntegrityError, match="append-only"):
            await execute_and_roll_back(db, (statement, {}))

        assert (await ledger_state(db, org.id)).transactions == 1


class TestDatabaseConstraints:
    async def test_refuses_a_member_balance_below_its_limit(self, org, db):
        alice = await org.member("Alice")
        with pytest.raises(IntegrityError, match="balance_not_below_limit"):
            await execute_and_roll_back(
                db, ("UPDATE accounts SET balance_minutes = -121 WHERE id = :id", {"id": alice})
            )

    async def test_refuses_a_pot_below_zero(self, org, db):
        with pytest.raises(IntegrityError, match="balance_not_below_limit"):
            await execute_and_roll_back(
                db, ("UPDATE accounts SET balance_minutes = -1 WHERE id = :id", {"id": org.pot_account_id})
            )

    async def test_refuses_a_posting_of_zero_minutes(self, org, db):
        alice = await org.member("Alice")
        transaction_id = (await exchange(org, alice, org.agency_account_id, 30)).id
        with pytest.raises(IntegrityError, match="minutes_not_zero"):
            await execute_and_roll_back(
                db, (insert(postings), posting_row(org.id, transaction_id, alice, 0, account_version=9))
            )

    async def test_refuses_two_postings_computed_from_the_same_account_version(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        posted = await exchange(org, alice, bob, 30)
        with pytest.raises(IntegrityError, match="account_version"):
            await execute_and_roll_back(
                db, (insert(postings), posting_row(org.id, posted.id, alice, 5, balance_after=35, account_version=1))
            )

    async def test_refuses_a_posting_on_another_organisations_account(self, org, db):
        other = await make_org(db)
        outsider = await other.member("Outsider")
        posted = await exchange(org, await org.member("Alice"), org.agency_account_id, 30)
        with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
            await execute_and_roll_back(db, (insert(postings), posting_row(org.id, posted.id, outsider, 5)))

    async def test_refuses_a_second_reversal_of_one_transaction(self, org, db):
        posted = await exchange(org, await org.member("Alice"), await org.member("Bob"), 30)
        await reverse_transaction(db, org.id, posted.id, reason="Mistake", recorded_by=None, idempotency_key=new_key())
        with pytest.raises(IntegrityError, match="reverses_id"):
            await execute_and_roll_back(
                db,
                (
                    insert(transactions),
                    transaction_row(org.id, kind=TransactionKind.REVERSAL.value, reverses_id=posted.id),
                ),
            )


class TestUnbalancedTransactions:
    async def test_never_go_unnoticed(self, fresh_db, backend):
        org = await make_org(fresh_db)
        alice = await org.member("Alice")

        async with fresh_db.engine.connect() as conn:
            transaction_id = await conn.scalar(
                insert(transactions).values(**transaction_row(org.id)).returning(transactions.c.id)
            )
            await conn.execute(insert(postings), posting_row(org.id, transaction_id, alice, 60))
            await conn.execute(insert(postings), posting_row(org.id, transaction_id, org.agency_account_id, -45))
            if backend == "postgresql":
                # A deferred constraint trigger checks the sum once every leg is in: at commit.
                with pytest.raises(IntegrityError, match="unbalanced"):
                    await conn.commit()
            else:
                # SQLite triggers cannot be deferred; the service writes all legs in one
                # statement, and `timebank verify` finds anything written around it.
                await conn.commit()

        problems = [str(p) for p in await verify_ledger(fresh_db)]
        if backend == "postgresql":
            assert problems == []
            assert (await ledger_state(fresh_db, org.id)).transactions == 0
        else:
            assert (
                f"postings sum to zero: transaction {transaction_id} has 2 postings summing to 15 minutes" in problems
            )
