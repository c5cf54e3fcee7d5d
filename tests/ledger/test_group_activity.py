"""post_group_activity: one activity, many legs, posted whole or not at all."""

import pytest

from tests.conftest import new_key, today
from tests.ledger.support import exchange, refused
from timebank import ledger
from timebank.ledger import PostingLine, errors
from timebank.models import TransactionKind


async def group_activity(org, givers, receivers, **overrides):
    request = {
        "givers": givers,
        "receivers": receivers,
        "occurred_on": today(),
        "description": "Tuesday cooking class",
        "category": "Cooking",
        "recorded_by": None,
        "idempotency_key": new_key(),
    }
    return await ledger.post_group_activity(org.db, org.id, **(request | overrides))


class TestPostGroupActivity:
    async def test_credits_every_giver_and_debits_every_receiver_in_one_transaction(self, org, db):
        volunteer = await org.member("Volunteer")
        attendees = [await org.member(f"Attendee {i}") for i in range(3)]

        posted = await group_activity(org, [(volunteer, 180)], [(a, 60) for a in attendees])

        assert posted.kind is TransactionKind.GROUP
        assert posted.postings == (
            PostingLine(volunteer, 180, 180, 1),
            *(PostingLine(a, -60, -60, 1) for a in attendees),
        )
        for account, balance in [(volunteer, 180), *((a, -60) for a in attendees)]:
            assert await ledger.current_balance(db, org.id, account) == balance

    async def test_may_have_several_givers_and_the_agency_on_either_side(self, org, db):
        tutor, helper, learner = await org.member("Tutor"), await org.member("Helper"), await org.member("Learner")

        await group_activity(org, [(tutor, 60), (org.agency_account_id, 60)], [(learner, 40), (helper, 80)])
        await group_activity(org, [(helper, 30)], [(org.agency_account_id, 20), (learner, 10)])

        balances = [
            await ledger.current_balance(db, org.id, a) for a in (tutor, helper, learner, org.agency_account_id)
        ]
        assert balances == [60, -50, -50, 40]

    async def test_refuses_sides_that_do_not_total_the_same(self, org):
        volunteer, a, b = await org.member("Volunteer"), await org.member("A"), await org.member("B")

        async with refused(errors.InvalidEntry, org) as refusal:
            await group_activity(org, [(volunteer, 180)], [(a, 60), (b, 60)])

        assert "3.00" in refusal.value.message and "2.00" in refusal.value.message
        assert refusal.value.extra == {"givers_minutes": 180, "receivers_minutes": 120}

    @pytest.mark.parametrize("where", ["twice among receivers", "giver and receiver", "twice among givers"])
    async def test_refuses_an_account_that_appears_twice(self, org, where):
        a, b, c = await org.member("A"), await org.member("B"), await org.member("C")
        givers, receivers = {
            "twice among receivers": ([(a, 60)], [(b, 30), (b, 30)]),
            "giver and receiver": ([(a, 60)], [(b, 30), (a, 30)]),
            "twice among givers": ([(a, 30), (a, 30)], [(b, 30), (c, 30)]),
        }[where]
        async with refused(errors.InvalidEntry, org):
            await group_activity(org, givers, receivers)

    @pytest.mark.parametrize("empty_side", ["givers", "receivers"])
    async def test_refuses_an_activity_with_nobody_on_one_side(self, org, empty_side):
        a = await org.member("A")
        givers, receivers = ([], [(a, 30)]) if empty_side == "givers" else ([(a, 30)], [])
        async with refused(errors.InvalidEntry, org):
            await group_activity(org, givers, receivers)

    @pytest.mark.parametrize("bad", [0, -30, 1.5, True])
    async def test_refuses_a_bad_amount_in_any_leg(self, org, bad):
        a, b, c = await org.member("A"), await org.member("B"), await org.member("C")
        async with refused(errors.InvalidEntry, org):
            await group_activity(org, [(a, 60)], [(b, 60), (c, bad)])

    async def test_one_receiver_over_the_limit_refuses_the_whole_activity(self, org, db):
        volunteer = await org.member("Volunteer")
        attendees = [await org.member(f"Attendee {i}") for i in range(4)]
        await exchange(org, volunteer, attendees[2], 100)

        async with refused(errors.InsufficientBalance, org) as refusal:
            await group_activity(org, [(volunteer, 120)], [(a, 30) for a in attendees])

        assert refusal.value.extra["account_id"] == attendees[2]
        assert await ledger.current_balance(db, org.id, attendees[0]) == 0

    async def test_refuses_the_community_pot_as_a_leg(self, org):
        a, b = await org.member("A"), await org.member("B")
        async with refused(errors.InvalidEntry, org):
            await group_activity(org, [(a, 60)], [(b, 30), (org.pot_account_id, 30)])

    async def test_refuses_an_unknown_account_in_any_leg(self, org):
        a, b = await org.member("A"), await org.member("B")
        async with refused(errors.UnknownAccount, org):
            await group_activity(org, [(a, 60)], [(b, 30), (2_000_000_000, 30)])

    async def test_refuses_more_than_200_legs(self, org):
        a = await org.member("A")
        receivers = [(2_000_000_000 + i, 1) for i in range(200)]
        async with refused(errors.InvalidEntry, org) as refusal:
            await group_activity(org, [(a, 200)], receivers)
        assert "200 legs" in refusal.value.message
