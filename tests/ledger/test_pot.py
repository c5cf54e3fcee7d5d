"""The community pot: members donate hours to it, and it grants them onward. Never below zero."""

import pytest

from tests.conftest import make_org, new_key, today
from tests.ledger.support import exchange, refused, set_active
from timebank import ledger
from timebank.ledger import PostingLine, errors
from timebank.models import TransactionKind


async def donate(org, member, minutes, **overrides):
    request = {
        "member_account_id": member,
        "minutes": minutes,
        "occurred_on": today(),
        "description": "For whoever needs it",
        "recorded_by": None,
        "idempotency_key": new_key(),
    }
    return await ledger.donate_to_pot(org.db, org.id, **(request | overrides))


async def grant(org, member, minutes, **overrides):
    request = {
        "member_account_id": member,
        "minutes": minutes,
        "occurred_on": today(),
        "description": "Help after a hospital stay",
        "recorded_by": None,
        "idempotency_key": new_key(),
    }
    return await ledger.grant_from_pot(org.db, org.id, **(request | overrides))


class TestDonateToPot:
    async def test_moves_hours_from_the_member_to_the_pot(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        await exchange(org, alice, bob, 90)

        posted = await donate(org, alice, 60)

        assert posted.kind is TransactionKind.DONATION and posted.category is None
        assert posted.postings == (PostingLine(alice, -60, 30, 2), PostingLine(org.pot_account_id, 60, 60, 1))
        assert await ledger.current_balance(db, org.id, org.pot_account_id) == 60

    async def test_is_held_to_the_members_minimum_balance(self, org):
        alice = await org.member("Alice")
        await donate(org, alice, 120)
        async with refused(errors.InsufficientBalance, org):
            await donate(org, alice, 1)

    async def test_refuses_a_deactivated_member(self, org):
        alice = await org.member("Alice")
        await set_active(org, alice, False)
        async with refused(errors.AccountInactive, org):
            await donate(org, alice, 30)


class TestGrantFromPot:
    async def test_moves_donated_hours_to_a_member(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        await donate(org, alice, 90)

        posted = await grant(org, bob, 60)

        assert posted.kind is TransactionKind.GRANT
        assert posted.postings == (PostingLine(org.pot_account_id, -60, 30, 2), PostingLine(bob, 60, 60, 1))

    async def test_may_empty_the_pot_but_never_take_it_below_zero(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        await donate(org, alice, 45)

        async with refused(errors.InsufficientBalance, org) as refusal:
            await grant(org, bob, 46)
        assert refusal.value.extra["account_id"] == org.pot_account_id
        assert refusal.value.extra["min_balance_minutes"] == 0
        assert "0.75" in refusal.value.message and "0.00" in refusal.value.message

        await grant(org, bob, 45)
        assert await ledger.current_balance(db, org.id, org.pot_account_id) == 0

    async def test_an_empty_pot_grants_nothing(self, org):
        bob = await org.member("Bob")
        async with refused(errors.InsufficientBalance, org):
            await grant(org, bob, 1)


class TestOnlyMembersUseThePot:
    @pytest.mark.parametrize("operation", [donate, grant], ids=["donate", "grant"])
    async def test_refuses_the_agency_account(self, org, operation):
        await donate(org, await org.member("Alice"), 60)
        async with refused(errors.InvalidEntry, org):
            await operation(org, org.agency_account_id, 30)

    @pytest.mark.parametrize("operation", [donate, grant], ids=["donate", "grant"])
    async def test_refuses_the_pot_itself(self, org, operation):
        await donate(org, await org.member("Alice"), 60)
        async with refused(errors.InvalidEntry, org):
            await operation(org, org.pot_account_id, 30)

    @pytest.mark.parametrize("operation", [donate, grant], ids=["donate", "grant"])
    async def test_refuses_another_organisations_member(self, org, db, operation):
        other = await make_org(db)
        outsider = await other.member("Outsider")
        await donate(org, await org.member("Alice"), 60)
        async with refused(errors.UnknownAccount, org, other):
            await operation(org, outsider, 30)
