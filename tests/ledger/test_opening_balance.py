"""post_opening_balance: carrying over a paper or spreadsheet ledger, the agency taking the other side."""

import pytest

from tests.conftest import new_key
from tests.ledger.support import days_ago, org_total, refused
from timebank import ledger
from timebank.ledger import PostingLine, errors
from timebank.models import TransactionKind


async def opening(org, member, minutes, **overrides):
    request = {
        "member_account_id": member,
        "minutes": minutes,
        "occurred_on": days_ago(30),
        "recorded_by": None,
        "idempotency_key": new_key(),
    }
    return await ledger.post_opening_balance(org.db, org.id, **(request | overrides))


class TestPostOpeningBalance:
    async def test_a_positive_balance_is_credited_against_the_agency(self, org, db):
        alice = await org.member("Alice")
        posted = await opening(org, alice, 300)

        assert posted.kind is TransactionKind.OPENING_BALANCE
        assert posted.description == "Opening balance"
        assert posted.occurred_on == days_ago(30)
        assert posted.postings == (PostingLine(alice, 300, 300, 1), PostingLine(org.agency_account_id, -300, -300, 1))
        assert await org_total(db, org.id) == 0

    async def test_a_negative_balance_is_debited_with_the_agency_credited(self, org, db):
        alice = await org.member("Alice")
        posted = await opening(org, alice, -90)

        assert posted.postings == (PostingLine(alice, -90, -90, 1), PostingLine(org.agency_account_id, 90, 90, 1))
        assert await ledger.current_balance(db, org.id, alice) == -90

    async def test_a_negative_balance_may_reach_the_minimum_but_not_go_beyond(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        async with refused(errors.InsufficientBalance, org):
            await opening(org, alice, -121)

        await opening(org, bob, -120)
        assert await ledger.current_balance(db, org.id, bob) == -120

    @pytest.mark.parametrize("minutes", [0, 1.5, "60", True, None])
    async def test_refuses_an_amount_that_is_not_a_non_zero_whole_number_of_minutes(self, org, minutes):
        alice = await org.member("Alice")
        async with refused(errors.InvalidEntry, org):
            await opening(org, alice, minutes)

    @pytest.mark.parametrize("account", ["agency", "pot"])
    async def test_is_only_for_member_accounts(self, org, account):
        shared = org.agency_account_id if account == "agency" else org.pot_account_id
        async with refused(errors.InvalidEntry, org):
            await opening(org, shared, 60)
