"""reverse_transaction: the only correction. Mirrors every leg, at most once."""

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tests.conftest import make_org, new_key, today
from tests.ledger.support import change_organisation, days_ago, exchange, org_total, refused, set_active, unchanged
from timebank import ledger
from timebank.ledger import errors
from timebank.models import TransactionKind


async def reverse(org, transaction_id, **overrides):
    request = {"reason": "Entered twice by mistake", "recorded_by": None, "idempotency_key": new_key()}
    return await ledger.reverse_transaction(org.db, org.id, transaction_id, **(request | overrides))


def legs(transaction):
    return sorted((p.account_id, p.minutes) for p in transaction.postings)


class TestReverseTransaction:
    async def test_posts_every_leg_back_keeping_the_category(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        original = await exchange(org, alice, bob, 90, category="Gardening", occurred_on=days_ago(5))

        reversal = await reverse(org, original.id, reason="Wrong member")

        assert reversal.kind is TransactionKind.REVERSAL
        assert reversal.reverses_id == original.id
        assert reversal.category == "Gardening"
        assert reversal.description == "Wrong member"
        assert legs(reversal) == sorted((a, -m) for a, m in legs(original))
        assert {(p.account_id, p.balance_after, p.account_version) for p in reversal.postings} == {
            (alice, 0, 2),
            (bob, 0, 2),
        }
        assert await ledger.get_transaction(db, org.id, reversal.id) == reversal

    async def test_mirrors_every_leg_of_a_group_activity(self, org, db):
        volunteer = await org.member("Volunteer")
        attendees = [await org.member(f"Attendee {i}") for i in range(3)]
        original = await ledger.post_group_activity(
            db,
            org.id,
            givers=[(volunteer, 90), (org.agency_account_id, 30)],
            receivers=[(a, 40) for a in attendees],
            occurred_on=today(),
            description="Art class",
            recorded_by=None,
            idempotency_key=new_key(),
        )

        reversal = await reverse(org, original.id)

        assert legs(reversal) == sorted((a, -m) for a, m in legs(original))
        for account in (volunteer, org.agency_account_id, *attendees):
            assert await ledger.current_balance(db, org.id, account) == 0

    async def test_is_dated_today_in_the_organisations_time_zone(self, db):
        distant = await make_org(db, timezone="Pacific/Kiritimati")
        alice, bob = await distant.member("Alice"), await distant.member("Bob")
        original = await exchange(distant, alice, bob, 30, occurred_on=days_ago(20))

        reversal = await reverse(distant, original.id)

        assert reversal.occurred_on == dt.datetime.now(ZoneInfo("Pacific/Kiritimati")).date()

    async def test_corrects_an_entry_in_a_closed_period_with_a_reversal_dated_today(self, org):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        original = await exchange(org, alice, bob, 30, occurred_on=days_ago(20))
        await change_organisation(org, books_closed_through=days_ago(10))

        reversal = await reverse(org, original.id)

        assert reversal.occurred_on == today()

    async def test_reverses_a_transaction_at_most_once(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        original = await exchange(org, alice, bob, 30)
        reversal = await reverse(org, original.id)

        async with refused(errors.AlreadyReversed, org) as refusal:
            await reverse(org, original.id)

        assert refusal.value.extra == {"reversal_id": reversal.id}
        assert await ledger.current_balance(db, org.id, alice) == 0

    async def test_repeating_the_reversal_with_its_key_returns_it(self, org):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        original = await exchange(org, alice, bob, 30)
        key = new_key()
        reversal = await reverse(org, original.id, idempotency_key=key)

        async with unchanged(org):
            again = await reverse(org, original.id, idempotency_key=key)

        assert (again.id, again.created, reversal.created) == (reversal.id, False, True)
        assert legs(again) == legs(reversal)

    async def test_the_reversal_key_with_a_different_reason_is_a_conflict(self, org):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        original = await exchange(org, alice, bob, 30)
        key = new_key()
        await reverse(org, original.id, idempotency_key=key, reason="Typo")

        async with refused(errors.IdempotencyConflict, org):
            await reverse(org, original.id, idempotency_key=key, reason="Another reason")

    async def test_refuses_to_reverse_a_reversal(self, org):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        reversal = await reverse(org, (await exchange(org, alice, bob, 30)).id)

        async with refused(errors.CannotReverse, org):
            await reverse(org, reversal.id)

    async def test_refuses_an_unknown_transaction(self, org):
        async with refused(errors.TransactionNotFound, org):
            await reverse(org, 2_000_000_000)

    async def test_refuses_another_organisations_transaction(self, org, db):
        other = await make_org(db)
        theirs = await exchange(other, await other.member("Ann"), await other.member("Ben"), 30)

        async with refused(errors.TransactionNotFound, org, other) as refusal:
            await reverse(org, theirs.id)
        assert refusal.value.message == f"no transaction {theirs.id} in this organisation"

    async def test_corrects_a_deactivated_members_account(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        original = await exchange(org, alice, bob, 30)
        await set_active(org, bob, False)

        await reverse(org, original.id)

        assert await ledger.current_balance(db, org.id, bob) == 0

    async def test_refuses_a_reversal_that_would_take_someone_below_the_minimum(self, org):
        alice, bob, carol = await org.member("Alice"), await org.member("Bob"), await org.member("Carol")
        original = await exchange(org, alice, bob, 60)  # Alice +60
        await exchange(org, carol, alice, 150)  # Alice -90

        async with refused(errors.InsufficientBalance, org) as refusal:
            await reverse(org, original.id)  # would leave Alice at -150
        assert refusal.value.extra["account_id"] == alice

    @pytest.mark.parametrize("reason", ["", "   ", "x" * 501])
    async def test_needs_a_reason(self, org, reason):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        original = await exchange(org, alice, bob, 30)
        async with refused(errors.InvalidEntry, org):
            await reverse(org, original.id, reason=reason)

    async def test_leaves_the_organisation_summing_to_zero(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        donation = await ledger.donate_to_pot(
            db,
            org.id,
            member_account_id=alice,
            minutes=45,
            occurred_on=today(),
            description="Gift",
            recorded_by=None,
            idempotency_key=new_key(),
        )
        await reverse(org, donation.id)
        await reverse(org, (await exchange(org, org.agency_account_id, bob, 30)).id)

        assert await org_total(db, org.id) == 0
        assert await ledger.current_balance(db, org.id, org.pot_account_id) == 0
