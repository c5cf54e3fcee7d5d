""" "Log a group activity" through HTTP as a browser without JavaScript sends it (both databases)."""

import re

from litestar import Litestar

from tests.api.conftest import ApiOrg, make_api_org
from tests.web.support import Browser, signed_in, visible_text
from tests.web.test_log_exchange import new_form_of, today
from timebank import ledger
from timebank.db import Database


async def group_form(staff: Browser, org: ApiOrg, **rows: str) -> dict[str, str]:
    answer = await staff.get(f"/orgs/{org.slug}/group-activities/new")
    assert answer.status_code == 200
    day = today()
    return {
        **new_form_of(answer.text),
        "giver_rows": "1",
        "receiver_rows": "4",
        "occurred_on-day": str(day.day),
        "occurred_on-month": str(day.month),
        "occurred_on-year": str(day.year),
        "category": "Gardening",
        "description": "Gardening club",
        **rows,
    }


def hidden_fields(html: str, action: str) -> dict[str, str]:
    """The hidden values of the form that posts to ``action`` (the check step carries everything)."""
    form = re.search(f'<form method="post" action="{re.escape(action)}".*?</form>', html, re.S)
    assert form, action
    return dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form.group(0)))


class TestLogAGroupActivity:
    async def test_the_check_step_shows_the_totals_then_it_posts_once(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        staff = await signed_in(app, db, org.staff)
        form = await group_form(
            staff,
            org,
            **{
                "giver-0": f"Test centre {org.slug}",
                "giver-0-hours": "2",
                "receiver-0": "Member Self",
                "receiver-0-hours": "1",
                "receiver-1": "Member Other",
                "receiver-1-hours": "1",
            },
        )
        check = await staff.post(f"/orgs/{org.slug}/group-activities/new", form)
        assert check.status_code == 200, visible_text(check.text)
        text = visible_text(check.text)
        assert "Check the group activity" in text and "Given 2 hours Received 2 hours" in text
        carried = hidden_fields(check.text, f"/orgs/{org.slug}/group-activities/confirm")
        first = await staff.post(f"/orgs/{org.slug}/group-activities/confirm", carried)
        again = await staff.post(f"/orgs/{org.slug}/group-activities/confirm", carried)
        assert first.status_code == again.status_code == 303
        assert first.headers["location"] == again.headers["location"], "a double submit posts once"
        assert await ledger.current_balance(db, org.id, org.member.account_id) == -60
        assert await ledger.current_balance(db, org.id, org.other_member.account_id) == -60
        done = visible_text((await staff.get(first.headers["location"])).text)
        assert "Group activity logged" in done and "Member Self 1 hour; balance now 1 hour below zero" in done

    async def test_totals_that_differ_are_refused_by_the_ledger_in_words(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        staff = await signed_in(app, db, org.staff)
        form = await group_form(
            staff,
            org,
            **{"giver-0": "Member Other", "giver-0-hours": "2", "receiver-0": "Member Self", "receiver-0-hours": "1"},
        )
        check = await staff.post(f"/orgs/{org.slug}/group-activities/new", form)
        assert "The totals are not the same" in visible_text(check.text)
        carried = hidden_fields(check.text, f"/orgs/{org.slug}/group-activities/confirm")
        refused = await staff.post(f"/orgs/{org.slug}/group-activities/confirm", carried)
        assert refused.status_code == 400
        assert "The givers have 2 hours and the attendees 1 hour" in visible_text(refused.text)
        assert 'href="#giver-0-hours"' in refused.text and 'value="Member Other"' in refused.text
        assert await ledger.current_balance(db, org.id, org.member.account_id) == 0

    async def test_more_rows_without_javascript_and_problems_linked_to_rows(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        staff = await signed_in(app, db, org.staff)
        form = await group_form(
            staff, org, **{"receiver-0": "Member Self", "receiver-0-hours": "x", "action": "add_receiver"}
        )
        more = await staff.post(f"/orgs/{org.slug}/group-activities/new", form)
        assert more.status_code == 200 and 'name="receiver-4"' in more.text and 'value="Member Self"' in more.text
        form.pop("action")
        refused = await staff.post(f"/orgs/{org.slug}/group-activities/new", form)
        assert refused.status_code == 400
        assert 'href="#giver-0"' in refused.text and 'href="#receiver-0-hours"' in refused.text

    async def test_members_may_not_log_group_activities(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        member = await signed_in(app, db, org.member)
        assert (await member.get(f"/orgs/{org.slug}/group-activities/new")).status_code == 403
        assert (await member.post(f"/orgs/{org.slug}/group-activities/confirm", {})).status_code == 403
