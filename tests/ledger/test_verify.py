"""verify_ledger: an independent check of every invariant, recomputed from the postings.

Each test damages a database of its own on purpose (the shared one must stay clean).
"""

import datetime as dt

from sqlalchemy import text

from tests.conftest import make_org, new_key, today
from tests.ledger.support import exchange
from timebank import ledger
from timebank.ledger.verify import verify_ledger
from timebank.reports.closing import close_month
from timebank.reports.service import add_months


async def busy_ledger(db):
    """An organisation with one of every kind of transaction."""
    org = await make_org(db)
    alice, bob, carol = await org.member("Alice"), await org.member("Bob"), await org.member("Carol")
    common = {"occurred_on": today(), "recorded_by": None}
    await ledger.post_opening_balance(
        db, org.id, member_account_id=carol, minutes=90, idempotency_key=new_key(), **common
    )
    first = await exchange(org, alice, bob, 60)
    await ledger.post_group_activity(
        db,
        org.id,
        givers=[(alice, 40)],
        receivers=[(bob, 20), (carol, 20)],
        description="Walk",
        idempotency_key=new_key(),
        **common,
    )
    await ledger.donate_to_pot(
        db, org.id, member_account_id=carol, minutes=30, description="Gift", idempotency_key=new_key(), **common
    )
    await ledger.grant_from_pot(
        db, org.id, member_account_id=bob, minutes=15, description="Grant", idempotency_key=new_key(), **common
    )
    await ledger.reverse_transaction(
        db, org.id, first.id, reason="Mistake", recorded_by=None, idempotency_key=new_key()
    )
    return org, alice


async def run_sql(db, *statements):
    async with db.transaction() as conn:
        for statement, params in statements:
            await conn.execute(text(statement), params)


class TestVerifyLedger:
    async def test_finds_nothing_wrong_with_a_ledger_written_by_the_service(self, fresh_db):
        await busy_ledger(fresh_db)
        assert await verify_ledger(fresh_db) == []

    async def test_reports_a_stored_balance_that_is_not_the_sum_of_its_postings(self, fresh_db):
        org, alice = await busy_ledger(fresh_db)
        await run_sql(
            fresh_db, ("UPDATE accounts SET balance_minutes = balance_minutes + 7 WHERE id = :id", {"id": alice})
        )

        problems = {p.invariant: str(p) for p in await verify_ledger(fresh_db)}

        assert set(problems) == {"stored balance equals the sum of postings", "organisations sum to zero"}
        assert (
            f"account {alice} stores a balance of 47 minutes but its postings sum to 40"
            in problems["stored balance equals the sum of postings"]
        )
        assert f"the accounts of organisation {org.id} sum to 7 minutes" in problems["organisations sum to zero"]

    async def test_reports_an_account_version_that_does_not_count_its_postings(self, fresh_db):
        _, alice = await busy_ledger(fresh_db)
        await run_sql(fresh_db, ("UPDATE accounts SET version = version + 1 WHERE id = :id", {"id": alice}))

        problems = [str(p) for p in await verify_ledger(fresh_db)]

        assert problems == [
            "account version counts its postings: "
            f"account {alice} is at version 4 but has 3 postings (highest version 3)"
        ]

    async def test_reports_a_posting_whose_balance_after_does_not_follow(self, fresh_db, backend):
        _, alice = await busy_ledger(fresh_db)
        # Postings are append-only: lift the guard in this throwaway database only.
        lift_guard = (
            "ALTER TABLE postings DISABLE TRIGGER USER"
            if backend == "postgresql"
            else "DROP TRIGGER postings_append_only_update"
        )
        async with fresh_db.engine.connect() as conn:
            posting_id = await conn.scalar(
                text("SELECT id FROM postings WHERE account_id = :id AND account_version = 2"), {"id": alice}
            )
        await run_sql(
            fresh_db,
            (lift_guard, {}),
            ("UPDATE postings SET balance_after = balance_after + 5 WHERE id = :id", {"id": posting_id}),
        )

        problems = [str(p) for p in await verify_ledger(fresh_db)]

        assert problems == [
            "each posting's balance_after follows from the ones before it: "
            f"posting {posting_id} on account {alice} records a balance of 105 minutes, "
            "but the postings up to it sum to 100"
        ]

    async def test_reports_an_entry_dated_in_a_closed_month_after_its_close(self, fresh_db):
        org = await make_org(fresh_db)
        alice, bob = await org.member("Alice"), await org.member("Bob")
        last_month = add_months(today().replace(day=1), -1)
        await exchange(org, alice, bob, 30, occurred_on=last_month)
        await close_month(fresh_db, org.id, last_month, closed_by=None, idempotency_key=new_key())
        assert await verify_ledger(fresh_db) == []
        # As if a writer had ignored books_closed_through: the writers refuse it, so move it back.
        await run_sql(fresh_db, ("UPDATE organisations SET books_closed_through = NULL WHERE id = :id", {"id": org.id}))
        await exchange(org, alice, bob, 15, occurred_on=last_month)

        problems = [str(p) for p in await verify_ledger(fresh_db)]

        closed_through = (today().replace(day=1) - dt.timedelta(days=1)).isoformat()
        assert sorted(problems) == sorted(
            "the balances stored at the last close still hold: "
            f"account {account} was closed on {closed_through} with {kept} minutes, "
            f"but its postings up to that day now sum to {now}"
            for account, kept, now in ((alice, 30, 45), (bob, -30, -45))
        )
