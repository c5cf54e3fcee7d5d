"""post_exchange: one giver, one receiver, and every way a request can be refused."""

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import update

from tests.conftest import make_org, new_key, today
from tests.ledger.support import change_organisation, days_ago, exchange, new_user, refused, set_active
from timebank import ledger
from timebank.ledger import PostingLine, errors
from timebank.ledger.posting import MAX_LEG_MINUTES
from timebank.models import Category, TransactionKind
from timebank.orgs.service import create_organisation


class TestPostExchange:
    async def test_credits_the_giver_and_debits_the_receiver(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        posted = await exchange(org, alice, bob, 90, description="Weeding the allotment", category="Gardening")

        assert posted.kind is TransactionKind.EXCHANGE
        assert posted.organisation_id == org.id
        assert (posted.occurred_on, posted.description, posted.category) == (
            today(),
            "Weeding the allotment",
            "Gardening",
        )
        assert posted.reverses_id is None and posted.created
        assert posted.postings == (PostingLine(alice, 90, 90, 1), PostingLine(bob, -90, -90, 1))
        assert await ledger.current_balance(db, org.id, alice) == 90
        assert await ledger.current_balance(db, org.id, bob) == -90

    async def test_each_posting_records_the_balance_and_account_version_it_produced(self, org):
        alice, bob, carol = await org.member("Alice"), await org.member("Bob"), await org.member("Carol")
        await exchange(org, alice, bob, 30)
        second = await exchange(org, bob, carol, 45)
        third = await exchange(org, carol, alice, 20)

        assert second.postings == (PostingLine(bob, 45, 15, 2), PostingLine(carol, -45, -45, 1))
        assert third.postings == (PostingLine(carol, 20, -25, 2), PostingLine(alice, -20, 10, 2))

    async def test_the_posted_transaction_reads_back_exactly_as_returned(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        posted = await exchange(org, alice, bob, 30, category="Cooking")

        assert await ledger.get_transaction(db, org.id, posted.id) == posted
        assert posted.recorded_at.utcoffset() == dt.timedelta(0)

    async def test_records_who_recorded_it_and_trims_the_description(self, org):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        staff = await new_user(org)
        posted = await exchange(org, alice, bob, 30, description="  Lift to the clinic \n", recorded_by=staff)

        assert posted.recorded_by_user_id == staff
        assert posted.description == "Lift to the clinic"

    async def test_the_agency_account_may_give_or_receive_with_no_lower_limit(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        await exchange(org, alice, org.agency_account_id, 300, description="Ran the open day")
        await exchange(org, org.agency_account_id, bob, 60, description="Hot lunch")

        assert await ledger.current_balance(db, org.id, alice) == 300
        assert await ledger.current_balance(db, org.id, bob) == -60
        # Far below the members' minimum of -2 hours: the agency has no floor.
        assert await ledger.current_balance(db, org.id, org.agency_account_id) == -240

    async def test_allows_reaching_exactly_the_minimum_balance(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        await exchange(org, alice, bob, 120)

        assert await ledger.current_balance(db, org.id, bob) == -120

    async def test_refuses_to_go_below_minimum_balance(self, org):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        await exchange(org, alice, bob, 30)

        async with refused(errors.InsufficientBalance, org) as refusal:
            await exchange(org, alice, bob, 91)

        message = refusal.value.message
        assert "-0.50" in message, "states the current balance"
        assert "-2.00" in message, "states the limit"
        assert refusal.value.extra == {
            "account_id": bob,
            "balance_minutes": -30,
            "min_balance_minutes": -120,
            "requested_minutes": 91,
        }

    async def test_refuses_the_same_account_on_both_sides(self, org):
        alice = await org.member("Alice")
        async with refused(errors.InvalidEntry, org) as refusal:
            await exchange(org, alice, alice, 30)
        assert "different accounts" in refusal.value.message

    @pytest.mark.parametrize("minutes", [0, -1, -60, 1.5, 60.0, "60", Decimal(60), True, False, None])
    async def test_refuses_amounts_that_are_not_a_positive_whole_number_of_minutes(self, org, minutes):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        async with refused(errors.InvalidEntry, org):
            await exchange(org, alice, bob, minutes)

    async def test_moves_at_most_ten_thousand_hours_in_one_entry(self, org, db):
        alice = await org.member("Alice")
        async with refused(errors.InvalidEntry, org) as refusal:
            await exchange(org, alice, org.agency_account_id, MAX_LEG_MINUTES + 1)
        assert "10,000 hours" in refusal.value.message

        await exchange(org, alice, org.agency_account_id, MAX_LEG_MINUTES)
        assert await ledger.current_balance(db, org.id, alice) == MAX_LEG_MINUTES

    @pytest.mark.parametrize("description", ["", "   \n\t", "x" * 501])
    async def test_refuses_a_missing_or_too_long_description(self, org, description):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        async with refused(errors.InvalidEntry, org):
            await exchange(org, alice, bob, 30, description=description)

    @pytest.mark.parametrize(("description", "category"), [(None, None), (42, None), ("Tea", 7)])
    async def test_refuses_a_description_or_category_that_is_not_text(self, org, description, category):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        async with refused(errors.InvalidEntry, org) as refusal:
            await exchange(org, alice, bob, 30, description=description, category=category)
        assert "must be text" in refusal.value.message

    async def test_accepts_a_description_of_exactly_500_characters(self, org):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        posted = await exchange(org, alice, bob, 30, description="x" * 500)
        assert posted.description == "x" * 500

    @pytest.mark.parametrize(
        "key",
        ["", "k" * 129, "clé", "tab\there", "new\nline", "nul\x00", "del\x7f", "emoji-🙂", None, 42],
        ids=["empty", "129-chars", "non-ascii", "tab", "newline", "nul", "del", "emoji", "none", "int"],
    )
    async def test_refuses_a_malformed_idempotency_key(self, org, key):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        async with refused(errors.InvalidEntry, org):
            await exchange(org, alice, bob, 30, idempotency_key=key)

    @pytest.mark.parametrize("key", ["k" * 128, "a", "order 42/7: ~!@#$%^&*()"])
    async def test_accepts_any_printable_ascii_key_of_1_to_128_characters(self, org, key):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        posted = await exchange(org, alice, bob, 30, idempotency_key=key)
        assert posted.idempotency_key == key

    async def test_refuses_an_unknown_category(self, org):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        async with refused(errors.UnknownCategory, org) as refusal:
            await exchange(org, alice, bob, 30, category="Astrology")
        assert "Astrology" in refusal.value.message

    async def test_refuses_another_organisations_category(self, org, db):
        await create_organisation(
            db, slug=f"knit-{new_key()[:8]}", name="Knitters", categories=("Knitting",), changed_by=None
        )
        alice, bob = await org.member("Alice"), await org.member("Bob")
        async with refused(errors.UnknownCategory, org):
            await exchange(org, alice, bob, 30, category="Knitting")

    async def test_refuses_a_category_that_has_been_retired(self, org, db):
        categories = Category.__table__
        async with db.transaction() as conn:
            await conn.execute(
                update(categories)
                .where(categories.c.organisation_id == org.id, categories.c.name == "Transport")
                .values(is_active=False)
            )
        alice, bob = await org.member("Alice"), await org.member("Bob")
        async with refused(errors.UnknownCategory, org):
            await exchange(org, alice, bob, 30, category="Transport")

    @pytest.mark.parametrize("side", ["giver", "receiver"])
    async def test_refuses_an_account_that_does_not_exist(self, org, side):
        alice = await org.member("Alice")
        missing = 2_000_000_000
        giver, receiver = (missing, alice) if side == "giver" else (alice, missing)
        async with refused(errors.UnknownAccount, org) as refusal:
            await exchange(org, giver, receiver, 30)
        assert refusal.value.extra == {"account_id": missing}

    @pytest.mark.parametrize("side", ["giver", "receiver"])
    async def test_refuses_another_organisations_account_exactly_as_a_missing_one(self, org, db, side):
        other = await make_org(db)
        alice, outsider = await org.member("Alice"), await other.member("Outsider")
        missing = 2_000_000_000

        def request(foreign: int) -> tuple[int, int]:
            return (foreign, alice) if side == "giver" else (alice, foreign)

        async with refused(errors.UnknownAccount, org, other) as foreign_refusal:
            await exchange(org, *request(outsider), 30)
        async with refused(errors.UnknownAccount, org, other) as missing_refusal:
            await exchange(org, *request(missing), 30)

        # Nothing tells the caller that the account exists elsewhere.
        assert foreign_refusal.value.message.replace(str(outsider), "N") == missing_refusal.value.message.replace(
            str(missing), "N"
        )
        assert type(foreign_refusal.value) is type(missing_refusal.value)

    @pytest.mark.parametrize("side", ["giver", "receiver"])
    async def test_refuses_the_community_pot(self, org, side):
        alice = await org.member("Alice")
        giver, receiver = (org.pot_account_id, alice) if side == "giver" else (alice, org.pot_account_id)
        async with refused(errors.InvalidEntry, org) as refusal:
            await exchange(org, giver, receiver, 30)
        assert "pot" in refusal.value.message

    @pytest.mark.parametrize("side", ["giver", "receiver"])
    async def test_refuses_a_deactivated_members_account(self, org, db, side):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        inactive = alice if side == "giver" else bob
        await set_active(org, inactive, False)

        async with refused(errors.AccountInactive, org) as refusal:
            await exchange(org, alice, bob, 30)
        assert refusal.value.extra == {"account_id": inactive}

        await set_active(org, inactive, True)
        await exchange(org, alice, bob, 30)
        assert await ledger.current_balance(db, org.id, alice) == 30

    async def test_accepts_help_given_in_the_past(self, org):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        posted = await exchange(org, alice, bob, 30, occurred_on=days_ago(400))
        assert posted.occurred_on == days_ago(400)

    async def test_refuses_a_date_in_the_future(self, org):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        tomorrow = today() + dt.timedelta(days=1)
        async with refused(errors.FutureDate, org) as refusal:
            await exchange(org, alice, bob, 30, occurred_on=tomorrow)
        assert tomorrow.isoformat() in refusal.value.message and "Europe/London" in refusal.value.message
        # The details a page words its refusal from, from both writers.
        assert refusal.value.extra == {"today": today().isoformat(), "timezone": "Europe/London"}

    @pytest.mark.parametrize("timezone", ["Pacific/Kiritimati", "Pacific/Pago_Pago"])
    async def test_today_is_the_organisations_local_date(self, db, timezone):
        # UTC+14 and UTC-11: at any hour, at least one of them is on a different date
        # from UTC and from London, so a server-side "today" fails one of these.
        distant = await make_org(db, timezone=timezone)
        alice, bob = await distant.member("Alice"), await distant.member("Bob")
        local_today = dt.datetime.now(ZoneInfo(timezone)).date()

        posted = await exchange(distant, alice, bob, 30, occurred_on=local_today)
        assert posted.occurred_on == local_today
        async with refused(errors.FutureDate, distant):
            await exchange(distant, alice, bob, 30, occurred_on=local_today + dt.timedelta(days=1))

    @pytest.mark.parametrize("occurred_on", [dt.datetime.now(), today().isoformat(), None])
    async def test_refuses_a_date_that_is_not_a_date(self, org, occurred_on):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        async with refused(errors.InvalidEntry, org):
            await exchange(org, alice, bob, 30, occurred_on=occurred_on)

    async def test_refuses_entries_dated_in_a_closed_period(self, org):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        await change_organisation(org, books_closed_through=days_ago(10))

        for closed_day in (days_ago(10), days_ago(45)):
            async with refused(errors.PeriodClosed, org) as refusal:
                await exchange(org, alice, bob, 30, occurred_on=closed_day)
            assert days_ago(10).isoformat() in refusal.value.message

        posted = await exchange(org, alice, bob, 30, occurred_on=days_ago(9))
        assert posted.occurred_on == days_ago(9)

    async def test_refuses_an_organisation_that_does_not_exist(self, org):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        with pytest.raises(errors.OrganisationNotFound):
            await ledger.post_exchange(
                org.db,
                2_000_000_000,
                giver_account_id=alice,
                receiver_account_id=bob,
                minutes=30,
                occurred_on=today(),
                description="Lost",
                recorded_by=None,
                idempotency_key=new_key(),
            )
