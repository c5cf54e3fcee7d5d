"""Categories are matched ignoring case and spacing, and answered in the organisation's spelling."""

import pytest

from tests.conftest import new_key
from tests.ledger.support import exchange, refused
from timebank import ledger
from timebank.ledger import errors
from timebank.ledger.reading import list_transactions
from timebank.orgs.service import get_organisation_details, update_organisation


class TestCategoryMatching:
    @pytest.mark.parametrize("typed", ["gardening", "GARDENING", "  Gardening ", "gArDeNiNg"])
    async def test_any_case_and_spacing_names_the_category(self, org, db, typed):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        posted = await exchange(org, alice, bob, 30, category=typed)

        assert posted.category == "Gardening"
        assert (await ledger.get_transaction(db, org.id, posted.id)).category == "Gardening"

    async def test_inner_spaces_are_collapsed(self, org):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        posted = await exchange(org, alice, bob, 30, category="admin   AND office")
        assert posted.category == "Admin and office"

    async def test_non_ascii_letters_fold_on_both_databases(self, org, db):
        await update_organisation(db, org.id, categories=["Café", "Straße"], changed_by=None)
        alice, bob = await org.member("Alice"), await org.member("Bob")

        assert (await exchange(org, alice, bob, 30, category="CAFÉ")).category == "Café"
        assert (await exchange(org, alice, bob, 30, category="STRASSE")).category == "Straße"

    async def test_a_retry_spelled_differently_is_a_replay(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        key = new_key()
        first = await exchange(org, alice, bob, 30, category="Gardening", idempotency_key=key)
        again = await exchange(org, alice, bob, 30, category="gardening", idempotency_key=key)

        assert again.id == first.id and not again.created
        assert again.category == "Gardening"
        assert await ledger.current_balance(db, org.id, alice) == 30

    async def test_a_different_category_under_the_same_key_is_still_a_conflict(self, org):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        key = new_key()
        await exchange(org, alice, bob, 30, category="Gardening", idempotency_key=key)
        async with refused(errors.IdempotencyConflict, org):
            await exchange(org, alice, bob, 30, category="Cooking", idempotency_key=key)

    async def test_a_respelled_category_keeps_its_entries(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        before = await exchange(org, alice, bob, 30, category="Gardening")
        names = [name if name != "Gardening" else "GARDENING" for name in await _active_names(db, org.id)]
        await update_organisation(db, org.id, categories=names, changed_by=None)

        after = await exchange(org, alice, bob, 30, category="gardening")
        assert after.category == "GARDENING"
        assert (await ledger.get_transaction(db, org.id, before.id)).category == "GARDENING"

    async def test_an_unknown_category_is_still_refused_whatever_its_case(self, org):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        async with refused(errors.UnknownCategory, org) as refusal:
            await exchange(org, alice, bob, 30, category="ASTROLOGY")
        assert "ASTROLOGY" in refusal.value.message

    async def test_listing_by_category_matches_the_same_way(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        gardening = await exchange(org, alice, bob, 30, category="Gardening")
        await exchange(org, alice, bob, 30, category="Cooking")

        found = await list_transactions(db, org.id, category=" GARDENING ")
        assert [t.id for t in found] == [gardening.id]


async def _active_names(db, organisation_id: int) -> list[str]:
    return (await get_organisation_details(db, organisation_id)).categories
