"""The services behind the coordinators' pages, on both databases: categories renamed in
place, retired and restored; who is below a minimum; roles and access; clearing a lockout;
the last sign-in."""

import datetime as dt

import pytest
from sqlalchemy import select

from tests.api.conftest import PASSWORD, make_api_org
from tests.api.conftest import test_settings as settings_for_tests
from timebank import ledger
from timebank.auth import rate_limit
from timebank.auth.rate_limit import SignInThrottled
from timebank.auth.service import WrongCredentials, authenticate, change_password
from timebank.db import Database
from timebank.ledger import errors
from timebank.members import service as members
from timebank.models import Role
from timebank.orgs import service as orgs


async def _exchange(db: Database, org, giver, receiver, minutes: int, category: str | None, key: str):  # type: ignore[no-untyped-def]
    return await ledger.post_exchange(
        db,
        org.id,
        giver_account_id=giver.account_id,
        receiver_account_id=receiver.account_id,
        minutes=minutes,
        occurred_on=dt.date(2026, 11, 2),
        description="Dug the beds",
        category=category,
        recorded_by=None,
        idempotency_key=key,
    )


def _named(categories: list[orgs.CategoryInUse], name: str) -> orgs.CategoryInUse:
    return next(c for c in categories if c.name == name)


class TestCategories:
    async def test_a_rename_keeps_the_category_so_old_entries_show_the_new_name(self, db: Database) -> None:
        org = await make_api_org(db)
        posted = await _exchange(db, org, org.member, org.other_member, 30, "Gardening", "rename-1")
        gardening = _named(await orgs.list_categories(db, org.id), "Gardening")
        assert gardening.entries == 1
        await orgs.rename_category(db, org.id, gardening.id, "  Garden   and allotment ", changed_by=None)
        renamed = _named(await orgs.list_categories(db, org.id), "Garden and allotment")
        assert (renamed.id, renamed.entries) == (gardening.id, 1)
        assert (await ledger.get_transaction(db, org.id, posted.id)).category == "Garden and allotment"
        # New entries take the new name, in any case and spacing.
        await _exchange(db, org, org.member, org.other_member, 15, "garden AND allotment", "rename-2")

    async def test_refuses_a_name_another_category_has_retired_or_not(self, db: Database) -> None:
        org = await make_api_org(db)
        categories = await orgs.list_categories(db, org.id)
        gardening, cooking = _named(categories, "Gardening"), _named(categories, "Cooking")
        with pytest.raises(errors.LedgerConflict) as taken:
            await orgs.rename_category(db, org.id, gardening.id, "COOKING", changed_by=None)
        assert taken.value.extra["reason"] == "name_taken"
        await orgs.set_category_active(db, org.id, cooking.id, False, changed_by=None)
        with pytest.raises(errors.LedgerConflict) as retired:
            await orgs.add_category(db, org.id, "cooking", changed_by=None)
        assert retired.value.extra["reason"] == "name_retired"
        with pytest.raises(errors.InvalidEntry):
            await orgs.add_category(db, org.id, "   ", changed_by=None)
        # A new spelling of its own name is not a clash.
        await orgs.rename_category(db, org.id, gardening.id, "GARDENING", changed_by=None)

    async def test_a_retired_category_stays_on_old_entries_and_can_be_restored(self, db: Database) -> None:
        org = await make_api_org(db)
        posted = await _exchange(db, org, org.member, org.other_member, 30, "Cooking", "retire-1")
        cooking = _named(await orgs.list_categories(db, org.id), "Cooking")
        await orgs.set_category_active(db, org.id, cooking.id, False, changed_by=None)
        assert "Cooking" not in (await orgs.get_organisation_details(db, org.id)).categories
        assert (await ledger.get_transaction(db, org.id, posted.id)).category == "Cooking"
        with pytest.raises(errors.UnknownCategory):
            await _exchange(db, org, org.member, org.other_member, 15, "Cooking", "retire-2")
        await orgs.set_category_active(db, org.id, cooking.id, True, changed_by=None)
        await _exchange(db, org, org.member, org.other_member, 15, "Cooking", "retire-3")
        assert _named(await orgs.list_categories(db, org.id), "Cooking").entries == 2

    async def test_another_organisations_category_is_not_found(self, db: Database) -> None:
        org, elsewhere = await make_api_org(db), await make_api_org(db)
        theirs = _named(await orgs.list_categories(db, elsewhere.id), "Gardening")
        with pytest.raises(errors.NotFound):
            await orgs.rename_category(db, org.id, theirs.id, "Mine now", changed_by=None)
        with pytest.raises(errors.NotFound):
            await orgs.set_category_active(db, org.id, theirs.id, False, changed_by=None)
        assert _named(await orgs.list_categories(db, elsewhere.id), "Gardening").is_active


class TestMembersBelow:
    async def test_names_the_members_already_below_a_tighter_minimum(self, db: Database) -> None:
        org = await make_api_org(db)
        await orgs.update_organisation(db, org.id, min_balance_minutes=-20 * 60, changed_by=None)
        await _exchange(db, org, org.member, org.other_member, 5 * 60, None, "below-1")
        below = await orgs.members_below(db, org.id, -2 * 60)
        assert [(m.display_name, m.balance_minutes) for m in below] == [("Member Other", -5 * 60)]
        assert await orgs.members_below(db, org.id, -5 * 60) == []
        # Tightening holds them at their balance: they may receive, not spend.
        await orgs.update_organisation(db, org.id, min_balance_minutes=-2 * 60, changed_by=None)
        with pytest.raises(errors.InsufficientBalance):
            await _exchange(db, org, org.member, org.other_member, 1, None, "below-2")
        await _exchange(db, org, org.other_member, org.member, 30, None, "below-3")


class TestAccess:
    async def test_lists_every_member_with_role_status_and_sign_in(self, db: Database) -> None:
        org = await make_api_org(db)
        await members.create_member(db, org.id, display_name="Aaron No Sign-in", changed_by=None)
        people = await members.list_access(db, org.id)
        first = people[0]
        assert (first.display_name, first.username, first.last_signed_in_at) == ("Aaron No Sign-in", None, None)
        roles = {p.display_name: p.role for p in people}
        assert roles["Member Self"] is Role.MEMBER and Role.COORDINATOR in roles.values()

    async def test_a_sign_in_sets_the_last_sign_in_and_changing_a_password_does_not(self, db: Database) -> None:
        org = await make_api_org(db)
        settings = settings_for_tests()
        before = dt.datetime.now(dt.UTC)
        await authenticate(db, settings, org.member.username, PASSWORD, "10.0.0.1")
        [seen] = [p for p in await members.list_access(db, org.id) if p.id == org.member.member_id]
        assert seen.last_signed_in_at is not None and seen.last_signed_in_at >= before - dt.timedelta(seconds=1)
        await change_password(
            db,
            settings,
            user_id=org.member.user_id,
            username=org.member.username,
            current_password=PASSWORD,
            new_password=PASSWORD,
            client="10.0.0.1",
        )
        [again] = [p for p in await members.list_access(db, org.id) if p.id == org.member.member_id]
        assert again.last_signed_in_at == seen.last_signed_in_at


class TestClearingALockout:
    async def test_after_clearing_the_member_can_sign_in_at_once(self, db: Database) -> None:
        org = await make_api_org(db)
        settings = settings_for_tests(sign_in_failures_per_user=3, sign_in_failures_per_client=100)
        for _ in range(3):
            with pytest.raises(WrongCredentials):
                await authenticate(db, settings, org.member.username, "guess", "10.0.0.2")
        with pytest.raises(SignInThrottled):
            await authenticate(db, settings, org.member.username, PASSWORD, "10.0.0.2")
        window = dt.timedelta(minutes=settings.sign_in_window_minutes)
        assert await rate_limit.locked_out_usernames(db, [org.member.username], per_user=3, window=window) == {
            org.member.username
        }
        cleared = await members.clear_sign_in_lockout(
            db, org.id, org.member.member_id, editor_role=Role.COORDINATOR, changed_by=None
        )
        assert cleared is True
        assert await rate_limit.locked_out_usernames(db, [org.member.username], per_user=3, window=window) == set()
        signed_in = await authenticate(db, settings, org.member.username, PASSWORD, "10.0.0.2")
        assert signed_in.user_id == org.member.user_id

    async def test_leaves_the_shared_addresss_count_and_other_usernames_alone(self, db: Database) -> None:
        org = await make_api_org(db)
        settings = settings_for_tests(sign_in_failures_per_user=2, sign_in_failures_per_client=100)
        for username in (org.member.username, org.member.username, org.other_member.username):
            with pytest.raises(WrongCredentials):
                await authenticate(db, settings, username, "guess", "10.0.0.3")
        await members.clear_sign_in_lockout(
            db, org.id, org.member.member_id, editor_role=Role.COORDINATOR, changed_by=None
        )
        async with db.autocommit() as conn:
            left = dict(
                (await conn.execute(select(rate_limit.failures.c.bucket, rate_limit.failures.c.failures))).all()
            )
        assert left["client:10.0.0.3"] == 3 and left[f"user:{org.other_member.username}"] == 1
        assert f"user:{org.member.username}" not in left

    async def test_only_a_coordinator_clears_and_only_in_their_organisation(self, db: Database) -> None:
        org, elsewhere = await make_api_org(db), await make_api_org(db)
        with pytest.raises(errors.NotAllowed):
            await members.clear_sign_in_lockout(
                db, org.id, org.member.member_id, editor_role=Role.STAFF, changed_by=None
            )
        with pytest.raises(errors.NotFound):
            await members.clear_sign_in_lockout(
                db, org.id, elsewhere.member.member_id, editor_role=Role.COORDINATOR, changed_by=None
            )
        nobody = await members.create_member(db, org.id, display_name="No sign-in", changed_by=None)
        with pytest.raises(errors.LedgerConflict):
            await members.clear_sign_in_lockout(
                db, org.id, nobody.member.id, editor_role=Role.COORDINATOR, changed_by=None
            )
        assert nobody.user is None
