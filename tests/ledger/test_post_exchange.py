import pytest

from timebank import ledger
from timebank.ledger import errors
from timebank.ledger.verify import verify_ledger
from tests.conftest import new_key, today


class TestPostExchange:
    async def test_credits_the_giver_and_debits_the_receiver(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        posted = await ledger.post_exchange(
            db, org.id, giver_account_id=alice, receiver_account_id=bob, minutes=90,
            occurred_on=today(), description="Gardening", category="Gardening",
            recorded_by=None, idempotency_key=new_key(),
        )
        assert [(p.account_id, p.minutes, p.balance_after) for p in posted.postings] == [(alice, 90, 90), (bob, -90, -90)]
        assert posted.category == "Gardening"
        assert await ledger.current_balance(db, org.id, alice) == 90
        assert await ledger.current_balance(db, org.id, bob) == -90
        assert await verify_ledger(db) == []

    async def test_refuses_to_go_below_minimum_balance(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        with pytest.raises(errors.InsufficientBalance) as refused:
            await ledger.post_exchange(
                db, org.id, giver_account_id=alice, receiver_account_id=bob, minutes=121,
                occurred_on=today(), description="Too much", recorded_by=None, idempotency_key=new_key(),
            )
        assert "-2.00" in refused.value.message and "0.00" in refused.value.message
        assert await ledger.current_balance(db, org.id, bob) == 0

    async def test_replay_and_reverse(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        key = new_key()
        kwargs = dict(giver_account_id=alice, receiver_account_id=bob, minutes=30, occurred_on=today(),
                      description="Tea", recorded_by=None, idempotency_key=key)
        first = await ledger.post_exchange(db, org.id, **kwargs)
        again = await ledger.post_exchange(db, org.id, **kwargs)
        assert again.id == first.id and not again.created
        with pytest.raises(errors.IdempotencyConflict):
            await ledger.post_exchange(db, org.id, **{**kwargs, "minutes": 31})
        rk = new_key()
        reversal = await ledger.reverse_transaction(db, org.id, first.id, reason="mistake", recorded_by=None, idempotency_key=rk)
        replayed = await ledger.reverse_transaction(db, org.id, first.id, reason="mistake", recorded_by=None, idempotency_key=rk)
        assert replayed.id == reversal.id
        with pytest.raises(errors.AlreadyReversed):
            await ledger.reverse_transaction(db, org.id, first.id, reason="mistake", recorded_by=None, idempotency_key=new_key())
        assert await ledger.current_balance(db, org.id, alice) == 0
        assert await verify_ledger(db) == []
