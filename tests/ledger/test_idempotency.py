"""Idempotent writes: a repeated request returns the first result and posts nothing."""

import dataclasses
import datetime as dt

import pytest

from tests.conftest import make_org, new_key, today
from tests.ledger.support import (
    change_organisation,
    days_ago,
    exchange,
    ledger_state,
    new_user,
    refused,
    set_active,
    unchanged,
)
from timebank import ledger
from timebank.ledger import errors


class TestIdempotency:
    async def test_repeating_a_request_returns_the_original_and_posts_nothing(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        key = new_key()
        first = await exchange(org, alice, bob, 30, idempotency_key=key, category="Cooking")

        async with unchanged(org):
            again = await exchange(org, alice, bob, 30, idempotency_key=key, category="Cooking")

        assert first.created and not again.created
        assert dataclasses.replace(again, created=True) == first

    async def test_a_repeat_is_answered_even_when_the_request_would_now_be_refused(self, org):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        key = new_key()
        first = await exchange(org, alice, bob, 30, idempotency_key=key, occurred_on=days_ago(3))
        await set_active(org, bob, False)
        await change_organisation(org, books_closed_through=today())

        again = await exchange(org, alice, bob, 30, idempotency_key=key, occurred_on=days_ago(3))

        assert (again.id, again.created) == (first.id, False)

    @pytest.mark.parametrize(
        "change",
        [
            lambda p: {"minutes": 31},
            lambda p: {"description": "Something else"},
            lambda p: {"occurred_on": days_ago(1)},
            lambda p: {"giver_account_id": p["carol"]},
            lambda p: {"receiver_account_id": p["carol"]},
            lambda p: {"giver_account_id": p["bob"], "receiver_account_id": p["alice"]},
            lambda p: {"category": "Gardening"},
            lambda p: {"recorded_by": p["other_staff"]},
        ],
        ids=["minutes", "description", "date", "giver", "receiver", "swapped", "category", "recorded_by"],
    )
    async def test_the_same_key_with_a_different_request_is_a_conflict(self, org, change):
        people = {name: await org.member(name.title()) for name in ("alice", "bob", "carol")}
        people |= {"staff": await new_user(org, "Staff"), "other_staff": await new_user(org, "Other")}
        original = {
            "giver_account_id": people["alice"],
            "receiver_account_id": people["bob"],
            "minutes": 30,
            "description": "Help with the shopping",
            "occurred_on": today(),
            "recorded_by": people["staff"],
            "category": "Cooking",
            "idempotency_key": new_key(),
        }
        first = await ledger.post_exchange(org.db, org.id, **original)

        async with refused(errors.IdempotencyConflict, org) as refusal:
            await ledger.post_exchange(org.db, org.id, **(original | change(people)))

        assert refusal.value.extra == {"transaction_id": first.id}
        assert original["idempotency_key"] in refusal.value.message

    async def test_a_key_used_for_another_kind_of_entry_is_a_conflict(self, org):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        key = new_key()
        await exchange(org, alice, bob, 30, idempotency_key=key)

        async with refused(errors.IdempotencyConflict, org):
            await ledger.donate_to_pot(
                org.db,
                org.id,
                member_account_id=alice,
                minutes=30,
                occurred_on=today(),
                description="Help with the shopping",
                recorded_by=None,
                idempotency_key=key,
            )

    async def test_keys_belong_to_one_organisation(self, org, db):
        other = await make_org(db)
        key = new_key()
        here = await exchange(org, await org.member("Alice"), await org.member("Bob"), 30, idempotency_key=key)
        there = await exchange(other, await other.member("Ann"), await other.member("Ben"), 30, idempotency_key=key)

        assert here.created and there.created
        assert here.id != there.id
        assert (await ledger_state(db, org.id)).transactions == 1
        assert (await ledger_state(db, other.id)).transactions == 1

    async def test_a_refused_request_does_not_use_up_its_key(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        key = new_key()
        async with refused(errors.InsufficientBalance, org):
            await exchange(org, alice, bob, 150, idempotency_key=key)

        # Once the receiver has hours, the very same request (same key) goes through.
        await exchange(org, bob, alice, 30)
        posted = await exchange(org, alice, bob, 150, idempotency_key=key)

        assert posted.created
        assert await ledger.current_balance(db, org.id, bob) == -120

    async def test_a_key_refused_for_a_bad_date_can_be_used_for_the_corrected_request(self, org):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        key = new_key()
        async with refused(errors.FutureDate, org):
            await exchange(org, alice, bob, 30, idempotency_key=key, occurred_on=today() + dt.timedelta(days=2))

        posted = await exchange(org, alice, bob, 30, idempotency_key=key)
        assert posted.created and posted.occurred_on == today()
