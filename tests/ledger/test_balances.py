"""Reading balances: now, as of a date (by when the help was given), and statements."""

import pytest

from tests.conftest import make_org, new_key, today
from tests.ledger.support import change_organisation, days_ago, exchange, opening_balance, refused
from timebank import ledger
from timebank.ledger import errors
from timebank.models import TransactionKind


class TestCurrentBalance:
    async def test_a_new_account_starts_at_zero(self, org, db):
        assert await ledger.current_balance(db, org.id, await org.member("Alice")) == 0

    async def test_refuses_another_organisations_account(self, org, db):
        other = await make_org(db)
        outsider = await other.member("Outsider")
        await exchange(other, outsider, other.agency_account_id, 30)
        with pytest.raises(errors.AccountNotFound):
            await ledger.current_balance(db, org.id, outsider)


class TestBalanceAsOf:
    async def test_counts_help_by_the_date_it_was_given_including_entries_recorded_later(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        await exchange(org, alice, bob, 60, occurred_on=days_ago(10))
        await exchange(org, alice, bob, 30, occurred_on=days_ago(5))
        await exchange(org, alice, bob, 15, occurred_on=days_ago(20))  # backdated, recorded last

        expected = {21: 0, 20: 15, 11: 15, 10: 75, 6: 75, 5: 105, 0: 105}
        assert {days: await ledger.balance_as_of(db, org.id, alice, days_ago(days)) for days in expected} == expected
        assert await ledger.balance_as_of(db, org.id, bob, days_ago(10)) == -75

    async def test_a_reversal_counts_from_the_day_it_was_posted(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        original = await exchange(org, alice, bob, 60, occurred_on=days_ago(10))
        await ledger.reverse_transaction(
            db, org.id, original.id, reason="Mistake", recorded_by=None, idempotency_key=new_key()
        )

        assert await ledger.balance_as_of(db, org.id, alice, days_ago(1)) == 60
        assert await ledger.balance_as_of(db, org.id, alice, today()) == 0

    async def test_refuses_another_organisations_account(self, org, db):
        other = await make_org(db)
        with pytest.raises(errors.AccountNotFound):
            await ledger.balance_as_of(db, org.id, await other.member("Outsider"), today())


class TestStatement:
    async def test_lists_the_period_in_date_order_with_a_running_balance(self, org, db):
        alice, bob, carol = await org.member("Alice"), await org.member("Bob"), await org.member("Carol")
        await exchange(org, alice, bob, 15, occurred_on=days_ago(20), description="Before the period")
        late = await exchange(org, carol, alice, 20, occurred_on=days_ago(5), description="Ironing", category="Other")
        early = await exchange(org, alice, bob, 60, occurred_on=days_ago(10), description="Gardening together")
        service = await exchange(org, alice, org.agency_account_id, 30, occurred_on=days_ago(7), description="Open day")
        await exchange(org, alice, carol, 45, occurred_on=days_ago(2), description="After the period")

        result = await ledger.statement(db, org.id, alice, days_ago(12), days_ago(3))

        assert (result.account_id, result.start, result.end) == (alice, days_ago(12), days_ago(3))
        assert result.opening_balance == 15
        assert [
            (e.transaction_id, e.occurred_on, e.description, e.counterparts, e.minutes, e.running_balance)
            for e in result.entries
        ] == [
            (early.id, days_ago(10), "Gardening together", ("Bob",), 60, 75),
            (service.id, days_ago(7), "Open day", ("Agency account",), 30, 105),
            (late.id, days_ago(5), "Ironing", ("Carol",), -20, 85),
        ]
        assert result.entries[2].category == "Other" and result.entries[2].kind is TransactionKind.EXCHANGE
        assert result.closing_balance == 85
        assert result.closing_balance == await ledger.balance_as_of(db, org.id, alice, days_ago(3))

    async def test_names_only_who_ran_a_group_activity_never_the_other_attendees(self, org, db):
        volunteer, ann, ben = await org.member("Volunteer"), await org.member("Ann"), await org.member("Ben")
        quiz = await ledger.post_group_activity(
            db,
            org.id,
            givers=[(volunteer, 60)],
            receivers=[(ann, 30), (ben, 30)],
            occurred_on=today(),
            description="Quiz night",
            recorded_by=None,
            idempotency_key=new_key(),
        )
        await ledger.donate_to_pot(
            db,
            org.id,
            member_account_id=volunteer,
            minutes=15,
            occurred_on=today(),
            description="Gift",
            recorded_by=None,
            idempotency_key=new_key(),
        )
        await ledger.reverse_transaction(
            db, org.id, quiz.id, reason="Logged twice", recorded_by=None, idempotency_key=new_key()
        )

        volunteer_view = await ledger.statement(db, org.id, volunteer, today(), today())
        ann_view = await ledger.statement(db, org.id, ann, today(), today())

        # The volunteer ran it: the attendees are not theirs to see. An attendee sees who ran it,
        # and not who else came; the reversal mirrors the original, so it shows the same names.
        assert [e.counterparts for e in volunteer_view.entries] == [(), ("Community pot",), ()]
        assert [e.counterparts for e in ann_view.entries] == [("Volunteer",), ("Volunteer",)]

    async def test_an_empty_period_shows_the_balance_brought_forward(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        await exchange(org, alice, bob, 40, occurred_on=days_ago(30))

        result = await ledger.statement(db, org.id, alice, days_ago(10), days_ago(1))

        assert (result.opening_balance, result.entries, result.closing_balance) == (40, (), 40)

    async def test_refuses_a_period_that_ends_before_it_starts(self, org, db):
        alice = await org.member("Alice")
        with pytest.raises(errors.InvalidEntry):
            await ledger.statement(db, org.id, alice, days_ago(1), days_ago(2))

    async def test_refuses_another_organisations_account(self, org, db):
        other = await make_org(db)
        outsider = await other.member("Outsider")
        with pytest.raises(errors.AccountNotFound):
            await ledger.statement(db, org.id, outsider, days_ago(30), today())


class TestMinimumBalanceChanges:
    async def test_a_member_below_a_tightened_minimum_may_receive_credit_but_not_be_debited(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        await exchange(org, alice, bob, 100)  # Bob at -100
        await change_organisation(org, min_balance_minutes=-60)

        async with refused(errors.InsufficientBalance, org) as refusal:
            await exchange(org, alice, bob, 1)
        assert refusal.value.extra["min_balance_minutes"] == -60 and "-1.00" in refusal.value.message

        await exchange(org, bob, alice, 10)  # Bob gives help: always allowed
        assert await ledger.current_balance(db, org.id, bob) == -90

        await exchange(org, bob, alice, 50)  # back above the new minimum: debits down to it only
        await exchange(org, alice, bob, 20)
        async with refused(errors.InsufficientBalance, org):
            await exchange(org, alice, bob, 1)
        assert await ledger.current_balance(db, org.id, bob) == -60

    async def test_a_loosened_minimum_applies_at_once(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        await exchange(org, alice, bob, 120)
        await change_organisation(org, min_balance_minutes=-240)

        await exchange(org, alice, bob, 120)

        assert await ledger.current_balance(db, org.id, bob) == -240

    async def test_an_opening_balance_below_a_later_tightened_minimum_stays_valid(self, org, db):
        alice = await org.member("Alice")
        await opening_balance(org, alice, -120)
        await change_organisation(org, min_balance_minutes=0)

        await exchange(org, alice, org.agency_account_id, 30)

        assert await ledger.current_balance(db, org.id, alice) == -90
