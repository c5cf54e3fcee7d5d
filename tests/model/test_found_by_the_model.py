"""Divergences the model test found, each pinned by a focused test on both databases."""

from sqlalchemy import select

from tests.conftest import new_key, today
from timebank import ledger
from timebank.models import Account

accounts = Account.__table__


async def stored_limit(db, account_id):
    async with db.engine.connect() as conn:
        return await conn.scalar(select(accounts.c.min_balance_minutes).where(accounts.c.id == account_id))


class TestTheAgencyAccount:
    async def test_keeps_no_limit_after_it_is_debited(self, org, db):
        # timebank_post computed the stored limit with least(floor, balance), which in
        # PostgreSQL skips the NULL floor: the agency account was held to its balance.
        alice = await org.member("Alice")
        await ledger.post_opening_balance(
            db, org.id, member_account_id=alice, minutes=90, occurred_on=today(), recorded_by=None,
            idempotency_key=new_key(),
        )  # fmt: skip

        assert await ledger.current_balance(db, org.id, org.agency_account_id) == -90
        assert await stored_limit(db, org.agency_account_id) is None

    async def test_keeps_no_limit_after_it_is_credited(self, org, db):
        alice = await org.member("Alice")
        await ledger.post_exchange(
            db, org.id, giver_account_id=org.agency_account_id, receiver_account_id=alice, minutes=30,
            occurred_on=today(), description="Tea at the drop-in", recorded_by=None, idempotency_key=new_key(),
        )  # fmt: skip

        assert await stored_limit(db, org.agency_account_id) is None
