"""The coordinators' pages through HTTP as a browser sends them (both databases): a
transaction's page, reversing it, settings with their check step, and roles and access."""

import datetime as dt
import re

from litestar import Litestar
from sqlalchemy import func, select

from tests.api.conftest import ApiOrg, make_api_org
from tests.web.support import signed_in, visible_text
from timebank import ledger
from timebank.auth import rate_limit
from timebank.db import Database
from timebank.members import service as members
from timebank.models import Role, Transaction
from timebank.orgs import service as orgs


async def _exchange(db: Database, org: ApiOrg, minutes: int = 90, key: str = "x") -> ledger.PostedTransaction:
    return await ledger.post_exchange(
        db,
        org.id,
        giver_account_id=org.member.account_id,
        receiver_account_id=org.other_member.account_id,
        minutes=minutes,
        occurred_on=dt.date(2026, 11, 3),
        description="Fixed a bike",
        category="Transport",
        recorded_by=org.staff.user_id,
        idempotency_key=f"{key}-{org.slug}",
    )


def _entry(org: ApiOrg, transaction_id: int, suffix: str = "") -> str:
    return f"/orgs/{org.slug}/exchanges/{transaction_id}{suffix}"


def _form_key(html: str) -> str:
    found = re.search(r'name="idempotency_key" value="([^"]+)"', html)
    assert found, "the form carries its idempotency key"
    return found.group(1)


async def _transactions(db: Database, org: ApiOrg) -> int:
    async with db.autocommit() as conn:
        table = Transaction.__table__  # type: ignore[attr-defined]
        return await conn.scalar(select(func.count()).select_from(table).where(table.c.organisation_id == org.id))


class TestTransactionPage:
    async def test_shows_who_gave_who_received_and_who_recorded_it(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        posted = await _exchange(db, org)
        staff = await signed_in(app, db, org.staff)
        text = visible_text((await staff.get(_entry(org, posted.id))).text)
        for words in ("Member Self", "Member Other", "1 hour 30 minutes", "3 November 2026", "Transport"):
            assert words in text
        assert "Fixed a bike" in text and org.staff.display_name in text
        assert "Reverse this exchange" not in text  # staff never see the button

    async def test_a_member_sees_their_own_entry_but_not_the_other_members_balance(
        self, app: Litestar, db: Database
    ) -> None:
        org = await make_api_org(db)
        posted = await _exchange(db, org)
        member = await signed_in(app, db, org.member)
        answer = await member.get(_entry(org, posted.id))
        text = visible_text(answer.text)
        assert answer.status_code == 200 and "Member Other" in text and "Your balance after this entry" in text
        # One balance row only: their own.
        assert answer.text.count('<th scope="row"') == 1

    async def test_a_member_gets_not_found_for_an_entry_that_is_not_on_their_account(
        self, app: Litestar, db: Database
    ) -> None:
        org = await make_api_org(db)
        posted = await ledger.post_exchange(
            db,
            org.id,
            giver_account_id=org.other_member.account_id,
            receiver_account_id=org.staff.account_id,
            minutes=30,
            occurred_on=dt.date(2026, 11, 3),
            description="Not theirs",
            recorded_by=None,
            idempotency_key="not-theirs",
        )
        member = await signed_in(app, db, org.member)
        answer = await member.get(_entry(org, posted.id))
        assert answer.status_code == 404 and "Not theirs" not in answer.text

    async def test_a_member_sees_who_ran_a_group_activity_never_the_other_attendees(
        self, app: Litestar, db: Database
    ) -> None:
        org = await make_api_org(db)
        posted = await ledger.post_group_activity(
            db,
            org.id,
            givers=[(org.staff.account_id, 60)],
            receivers=[(org.member.account_id, 30), (org.other_member.account_id, 30)],
            occurred_on=dt.date(2026, 11, 3),
            description="Singing",
            recorded_by=org.staff.user_id,
            idempotency_key="group",
        )
        member = await signed_in(app, db, org.member)
        text = visible_text((await member.get(_entry(org, posted.id))).text)
        assert org.staff.display_name in text and "Member Other" not in text


class TestReversing:
    async def test_reverses_once_however_often_the_form_is_sent(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        posted = await _exchange(db, org)
        coordinator = await signed_in(app, db, org.coordinator)
        form_page = await coordinator.get(_entry(org, posted.id, "/reverse"))
        text = visible_text(form_page.text)
        assert "Member Self" in text and "1 hour 30 minutes" in text and "3 November 2026" in text
        # Balances after: the giver back to 0, the receiver back to 0.
        assert text.count("1 hour 30 minutes below zero") == 1
        form = {"idempotency_key": _form_key(form_page.text), "reason": "Logged against the wrong member"}
        before = await _transactions(db, org)
        first = await coordinator.post(_entry(org, posted.id, "/reverse"), form)
        second = await coordinator.post(_entry(org, posted.id, "/reverse"), form)
        assert first.status_code == second.status_code == 303
        assert first.headers["location"] == second.headers["location"]
        assert await _transactions(db, org) == before + 1
        assert await ledger.current_balance(db, org.id, org.member.account_id) == 0
        reversal = visible_text((await coordinator.get(first.headers["location"])).text)
        assert "The entry has been reversed" in reversal and "Logged against the wrong member" in reversal
        assert f'href="{_entry(org, posted.id)}"' in (await coordinator.get(first.headers["location"])).text
        original = (await coordinator.get(_entry(org, posted.id))).text
        assert "This entry has been reversed" in original and "Reverse this exchange" not in visible_text(original)

    async def test_without_a_reason_it_asks_for_one(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        posted = await _exchange(db, org)
        coordinator = await signed_in(app, db, org.coordinator)
        answer = await coordinator.post(_entry(org, posted.id, "/reverse"), {"idempotency_key": "k", "reason": "  "})
        assert answer.status_code == 400
        assert 'href="#reason"' in answer.text and "Say why the entry is being reversed" in answer.text

    async def test_a_refusal_names_the_person_and_keeps_the_reason(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        await orgs.update_organisation(db, org.id, min_balance_minutes=-2 * 60, changed_by=None)
        posted = await _exchange(db, org, minutes=60)
        # The giver spends what they were given: undoing the gift would take them below the minimum.
        await ledger.post_exchange(
            db,
            org.id,
            giver_account_id=org.staff.account_id,
            receiver_account_id=org.member.account_id,
            minutes=150,
            occurred_on=dt.date(2026, 11, 4),
            description="Spent it",
            recorded_by=None,
            idempotency_key="spent",
        )
        coordinator = await signed_in(app, db, org.coordinator)
        answer = await coordinator.post(
            _entry(org, posted.id, "/reverse"), {"idempotency_key": "below", "reason": "Typed twice"}
        )
        text = visible_text(answer.text)
        assert answer.status_code == 409
        assert "There is a problem" in text and "This would take Member Self to" in text
        assert ">Typed twice</textarea>" in answer.text

    async def test_a_reversal_cannot_be_reversed_and_says_so(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        posted = await _exchange(db, org)
        reversal = await ledger.reverse_transaction(
            db, org.id, posted.id, reason="Wrong", recorded_by=None, idempotency_key="rev"
        )
        coordinator = await signed_in(app, db, org.coordinator)
        page = visible_text((await coordinator.get(_entry(org, reversal.id))).text)
        assert "This correction cancels an earlier entry" in page and "Reverse this exchange" not in page
        answer = await coordinator.post(_entry(org, reversal.id, "/reverse"), {"idempotency_key": "k2", "reason": "x"})
        assert answer.status_code == 409 and "it cannot be reversed" in answer.text
        again = await coordinator.post(_entry(org, posted.id, "/reverse"), {"idempotency_key": "k3", "reason": "x"})
        assert again.status_code == 409 and "already been reversed" in again.text


class TestSettings:
    async def test_a_tighter_minimum_names_the_members_below_it_before_saving(
        self, app: Litestar, db: Database
    ) -> None:
        org = await make_api_org(db)
        await orgs.update_organisation(db, org.id, min_balance_minutes=-20 * 60, changed_by=None)
        await _exchange(db, org, minutes=5 * 60)
        coordinator = await signed_in(app, db, org.coordinator)
        path = f"/orgs/{org.slug}/settings/minimum-balance"
        check = visible_text((await coordinator.post(path, {"value": "2"})).text)
        assert "1 member is already below the new minimum" in check and "Member Other" in check
        assert (await orgs.get_organisation_details(db, org.id)).organisation.min_balance_minutes == -20 * 60
        saved = await coordinator.post(path, {"value": "2", "confirmed": "yes"})
        assert saved.status_code == 303
        assert (await orgs.get_organisation_details(db, org.id)).organisation.min_balance_minutes == -2 * 60

    async def test_a_refusal_keeps_what_was_typed(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        coordinator = await signed_in(app, db, org.coordinator)
        answer = await coordinator.post(f"/orgs/{org.slug}/settings/timezone", {"value": "Europe/Nowhere"})
        assert answer.status_code == 400 and 'value="Europe/Nowhere"' in answer.text and 'href="#value"' in answer.text
        answer = await coordinator.post(f"/orgs/{org.slug}/settings/minimum-balance", {"value": "lots"})
        assert answer.status_code == 400 and 'value="lots"' in answer.text

    async def test_renaming_a_category_says_how_many_entries_it_changes(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        posted = await _exchange(db, org)
        transport = next(c for c in await orgs.list_categories(db, org.id) if c.name == "Transport")
        coordinator = await signed_in(app, db, org.coordinator)
        path = f"/orgs/{org.slug}/settings/rename-category"
        form = {"value": "Lifts and transport", "category": str(transport.id)}
        check = visible_text((await coordinator.post(path, form)).text)
        assert "The 1 entry already in it will show the new name" in check
        assert (await coordinator.post(path, {**form, "confirmed": "yes"})).status_code == 303
        assert (await ledger.get_transaction(db, org.id, posted.id)).category == "Lifts and transport"

    async def test_retiring_says_how_many_entries_use_it(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        await _exchange(db, org)
        transport = next(c for c in await orgs.list_categories(db, org.id) if c.name == "Transport")
        coordinator = await signed_in(app, db, org.coordinator)
        path = f"/orgs/{org.slug}/settings/retire-category"
        check = visible_text((await coordinator.get(f"{path}?category={transport.id}")).text)
        assert "1 entry uses “Transport”" in check
        assert (await coordinator.post(path, {"category": str(transport.id), "confirmed": "yes"})).status_code == 303
        assert "Transport" not in (await orgs.get_organisation_details(db, org.id)).categories

    async def test_change_it_shows_the_form_as_typed_and_too_low_a_minimum_is_refused(
        self, app: Litestar, db: Database
    ) -> None:
        org = await make_api_org(db)
        coordinator = await signed_in(app, db, org.coordinator)
        path = f"/orgs/{org.slug}/settings/name"
        again = await coordinator.post(path, {"value": "Riverside centre", "confirmed": "no"})
        assert again.status_code == 200 and 'value="Riverside centre"' in again.text
        too_low = await coordinator.post(f"/orgs/{org.slug}/settings/minimum-balance", {"value": "10001"})
        assert too_low.status_code == 400 and "Enter 10,000 hours or fewer" in too_low.text
        assert (await coordinator.get(f"/orgs/{org.slug}/settings/no-such-thing")).status_code == 404


class TestAccess:
    async def test_a_coordinator_changes_a_role_and_the_list_shows_it(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        coordinator = await signed_in(app, db, org.coordinator)
        path = f"/orgs/{org.slug}/access/{org.member.member_id}"
        assert (await coordinator.post(path + "/role", {"role": "staff"})).status_code == 303
        assert (await members.get_member(db, org.id, org.member.member_id)).role is Role.STAFF
        listing = (await coordinator.get(f"/orgs/{org.slug}/access")).text
        row = re.search(rf'data-member="{org.member.member_id}".*?</tr>', listing, re.S)
        assert row and "Staff" in row.group(0)

    async def test_the_last_coordinator_is_not_demoted_and_the_page_says_why(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        coordinator = await signed_in(app, db, org.coordinator)
        path = f"/orgs/{org.slug}/access/{org.coordinator.member_id}"
        answer = await coordinator.post(path + "/role", {"role": "member"})
        assert answer.status_code == 409 and "the only active coordinator" in answer.text
        assert 'value="member" checked' in answer.text  # what was chosen stays chosen
        assert (await members.get_member(db, org.id, org.coordinator.member_id)).role is Role.COORDINATOR

    async def test_deactivates_and_reactivates(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        coordinator = await signed_in(app, db, org.coordinator)
        path = f"/orgs/{org.slug}/access/{org.other_member.member_id}/active"
        assert (await coordinator.post(path, {"active": "no"})).status_code == 303
        assert (await members.get_member(db, org.id, org.other_member.member_id)).is_active is False
        assert (await coordinator.post(path, {"active": "yes"})).status_code == 303
        assert (await members.get_member(db, org.id, org.other_member.member_id)).is_active is True
        assert (await coordinator.post(path, {"active": "maybe"})).status_code == 400

    async def test_clears_a_lockout_from_the_page(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        for _ in range(5):
            await rate_limit.record_failure(db, org.member.username, "10.1.1.1", window=dt.timedelta(minutes=15))
        coordinator = await signed_in(app, db, org.coordinator)
        path = f"/orgs/{org.slug}/access/{org.member.member_id}"
        assert "Clear sign-in lockout" in (await coordinator.get(path)).text
        cleared = await coordinator.post(path + "/lockout")
        assert cleared.headers["location"].endswith("notice=lockout_cleared")
        assert "Clear sign-in lockout" not in (await coordinator.get(path)).text
        again = await coordinator.post(path + "/lockout")
        assert again.headers["location"].endswith("notice=not_locked_out")
