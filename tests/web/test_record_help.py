"""'Record help I received' and the statement through the pages, on both databases.

The browser tests (tests/web/browser/test_member_pages.py) cover the same flows in Chromium
on SQLite; these check what the ledger answers through the pages on PostgreSQL as well.
"""

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from litestar import Litestar

from tests.api.conftest import ApiOrg
from tests.ledger.support import change_organisation
from tests.web.support import Browser, signed_in, visible_text
from timebank import ledger
from timebank.db import Database
from timebank.web.statement import period_asked


def today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Europe/London")).date()


def answers(org: ApiOrg, **changes: str) -> dict[str, str]:
    day = today()
    return {
        "idempotency_key": "form-key-1",
        "giver": "Member Other",
        "hours": "1",
        "minutes": "30",
        "occurred_on-day": str(day.day),
        "occurred_on-month": str(day.month),
        "occurred_on-year": str(day.year),
        "category": "Gardening",
        "description": "Planted the beans",
        **changes,
    }


@pytest.fixture
async def member_page(app: Litestar, db: Database, api_org: ApiOrg) -> Browser:
    return await signed_in(app, db, api_org.member)


class TestRecordHelp:
    async def test_the_form_starts_with_today_and_a_form_key(self, member_page: Browser, api_org: ApiOrg) -> None:
        answer = await member_page.get(f"/orgs/{api_org.slug}/record-help")
        assert answer.status_code == 200
        assert f'name="occurred_on-day" type="text" value="{today().day}"' in answer.text
        assert re.search(r'name="idempotency_key" value="[0-9a-f]{32}"', answer.text)

    async def test_check_then_record_posts_once(self, member_page: Browser, db: Database, api_org: ApiOrg) -> None:
        check = await member_page.post(f"/orgs/{api_org.slug}/record-help", answers(api_org))
        assert check.status_code == 200
        assert "After this you will have received 1 hour 30 minutes more than you have given" in visible_text(
            check.text
        )
        # Nothing is posted by the check.
        assert await ledger.current_balance(db, api_org.id, api_org.member.account_id) == 0
        form = answers(api_org, giver_account_id=str(api_org.other_member.account_id))
        first = await member_page.post(f"/orgs/{api_org.slug}/record-help/confirm", form)
        again = await member_page.post(f"/orgs/{api_org.slug}/record-help/confirm", form)
        assert first.status_code == again.status_code == 303
        assert first.headers["location"] == again.headers["location"]
        assert await ledger.current_balance(db, api_org.id, api_org.member.account_id) == -90
        assert await ledger.current_balance(db, api_org.id, api_org.other_member.account_id) == 90
        done = await member_page.get(first.headers["location"])
        assert "Member Other gave you 1 hour 30 minutes" in visible_text(done.text)

    async def test_the_same_form_changed_after_recording_is_not_recorded_again(
        self, member_page: Browser, db: Database, api_org: ApiOrg
    ) -> None:
        form = answers(api_org, giver_account_id=str(api_org.other_member.account_id))
        assert (await member_page.post(f"/orgs/{api_org.slug}/record-help/confirm", form)).status_code == 303
        # Back to the form, another amount, the same form key.
        changed = await member_page.post(f"/orgs/{api_org.slug}/record-help/confirm", {**form, "minutes": "45"})
        assert changed.status_code == 409
        assert "This form was already used to record some help" in visible_text(changed.text)
        # A new key for the form shown again, so that recording it now is a new entry.
        assert 'name="idempotency_key" value="form-key-1"' not in changed.text
        assert await ledger.current_balance(db, api_org.id, api_org.member.account_id) == -90

    async def test_below_the_minimum_is_refused_and_keeps_the_form(
        self, member_page: Browser, db: Database, api_org: ApiOrg
    ) -> None:
        # The organisation's minimum is 2 hours below zero.
        refused = await member_page.post(f"/orgs/{api_org.slug}/record-help/confirm", answers(api_org, hours="3"))
        assert refused.status_code == 409
        text = visible_text(refused.text)
        assert "There is a problem" in text
        assert "This would take your balance to 3 hours 30 minutes below zero" in text
        assert "cannot go lower than 2 hours below zero" in text
        assert 'href="#hours"' in refused.text and 'value="Planted the beans"' not in refused.text
        assert "Planted the beans" in refused.text and 'value="3"' in refused.text
        assert await ledger.current_balance(db, api_org.id, api_org.member.account_id) == 0

    async def test_a_future_date_is_refused_with_the_organisations_today(
        self, member_page: Browser, api_org: ApiOrg
    ) -> None:
        tomorrow = today() + dt.timedelta(days=1)
        form = answers(
            api_org,
            **{
                "occurred_on-day": str(tomorrow.day),
                "occurred_on-month": str(tomorrow.month),
                "occurred_on-year": str(tomorrow.year),
            },
        )
        refused = await member_page.post(f"/orgs/{api_org.slug}/record-help/confirm", form)
        assert refused.status_code == 400
        day = today()
        assert f"Enter today's date ({day.day} {day.strftime('%B %Y')}) or an earlier one" in visible_text(refused.text)
        assert 'href="#occurred_on-day"' in refused.text

    async def test_a_closed_period_is_refused_with_its_date(
        self, member_page: Browser, db: Database, api_org: ApiOrg
    ) -> None:
        # Set directly, as the ledger tests do: closing a month (the only way in the app) needs an
        # ended month, and this test wants the day before today closed.
        closed = today() - dt.timedelta(days=1)
        await change_organisation(api_org.org, books_closed_through=closed)
        on_the_last_closed_day = {
            "occurred_on-day": str(closed.day),
            "occurred_on-month": str(closed.month),
            "occurred_on-year": str(closed.year),
        }
        refused = await member_page.post(
            f"/orgs/{api_org.slug}/record-help/confirm", answers(api_org, **on_the_last_closed_day)
        )
        assert refused.status_code == 409
        assert f"The records up to {closed.day} {closed.strftime('%B %Y')} are closed" in visible_text(refused.text)

    async def test_a_deactivated_helper_is_refused_at_the_name(
        self, member_page: Browser, db: Database, api_org: ApiOrg
    ) -> None:
        from timebank.members.service import set_member_active

        await set_member_active(db, api_org.id, api_org.other_member.member_id, False, changed_by=None)
        form = answers(api_org, giver_account_id=str(api_org.other_member.account_id))
        refused = await member_page.post(f"/orgs/{api_org.slug}/record-help/confirm", form)
        assert refused.status_code == 400
        assert "We could not find anyone called “Member Other”" in visible_text(refused.text)

    async def test_problems_with_the_answers(self, member_page: Browser, api_org: ApiOrg) -> None:
        form = answers(api_org, giver="", hours="x", description=" ", **{"occurred_on-month": "13"})
        refused = await member_page.post(f"/orgs/{api_org.slug}/record-help", form)
        assert refused.status_code == 400
        text = visible_text(refused.text)
        for words in [
            "Enter the name of the person who helped you",
            "Enter the hours as a whole number",
            "Enter a real date",
            "Say what they did for you",
        ]:
            assert words in text

    async def test_only_the_receiver_sees_the_done_page(
        self, app: Litestar, db: Database, api_org: ApiOrg, member_page: Browser
    ) -> None:
        form = answers(api_org, giver_account_id=str(api_org.other_member.account_id))
        done = (await member_page.post(f"/orgs/{api_org.slug}/record-help/confirm", form)).headers["location"]
        giver = await signed_in(app, db, api_org.other_member)
        assert (await giver.get(done)).status_code == 404
        assert (await member_page.get(done)).status_code == 200


class TestStatementPeriods:
    def test_a_month_this_month_or_any_period(self) -> None:
        day = dt.date(2026, 11, 17)
        assert period_asked(day, None, None, None) == (dt.date(2026, 11, 1), dt.date(2026, 11, 30))
        assert period_asked(day, "2026-02", None, None) == (dt.date(2026, 2, 1), dt.date(2026, 2, 28))
        assert period_asked(day, "nonsense", None, None) == (dt.date(2026, 11, 1), dt.date(2026, 11, 30))
        assert period_asked(day, None, "2026-01-05", "2026-03-02") == (dt.date(2026, 1, 5), dt.date(2026, 3, 2))
        assert period_asked(day, None, "2026-03-02", "2026-01-05") == (dt.date(2026, 1, 5), dt.date(2026, 3, 2))
        assert period_asked(day, None, "2026-01-05", None) == (dt.date(2026, 1, 5), dt.date(2026, 1, 31))

    async def test_the_statement_shows_running_balances(
        self, member_page: Browser, db: Database, api_org: ApiOrg
    ) -> None:
        for minutes in (30, 45):
            await ledger.post_exchange(
                db,
                api_org.id,
                giver_account_id=api_org.member.account_id,
                receiver_account_id=api_org.other_member.account_id,
                minutes=minutes,
                occurred_on=today(),
                description="Made tea",
                recorded_by=None,
                idempotency_key=f"statement-{minutes}",
            )
        page = await member_page.get(f"/orgs/{api_org.slug}/statement")
        text = visible_text(page.text)
        assert "You helped Member Other" in text
        assert re.search(r"30 minutes\s+30 minutes .*45 minutes\s+1 hour 15 minutes", text), text
        assert page.headers["cache-control"] == "no-store"


class TestMemberHome:
    async def test_a_group_activity_shows_who_ran_it_never_the_other_attendees(
        self, member_page: Browser, db: Database, api_org: ApiOrg
    ) -> None:
        await ledger.post_group_activity(
            db,
            api_org.id,
            givers=[(api_org.staff.account_id, 120)],
            receivers=[(api_org.member.account_id, 60), (api_org.other_member.account_id, 60)],
            occurred_on=today(),
            description="Cooking club",
            category="Cooking",
            recorded_by=api_org.staff.user_id,
            idempotency_key="group-1",
        )
        for path in ("/", "/statement"):
            text = visible_text((await member_page.get(f"/orgs/{api_org.slug}{path}")).text)
            assert f"Took part in a group activity run by {api_org.staff.display_name}" in text, path
            assert "Member Other" not in text, path

    async def test_the_balance_in_words_and_how_far_it_may_go(
        self, member_page: Browser, db: Database, api_org: ApiOrg
    ) -> None:
        await ledger.post_exchange(
            db,
            api_org.id,
            giver_account_id=api_org.other_member.account_id,
            receiver_account_id=api_org.member.account_id,
            minutes=45,
            occurred_on=today(),
            description="Walked the dog",
            recorded_by=None,
            idempotency_key="home-1",
        )
        text = visible_text((await member_page.get(f"/orgs/{api_org.slug}/")).text)
        assert "You have received 45 minutes more than you have given" in text
        # The organisation's minimum is 2 hours below zero.
        assert "You can go down to 2 hours below zero. So you can receive 1 hour 15 minutes more help" in text
        assert f"Member Other helped you — 45 minutes — {today().day} {today().strftime('%B %Y')}" in text
        assert "Your statement" in text and "Record help I received" in text and "Your details" in text
