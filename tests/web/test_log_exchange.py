""" "Log an exchange" through HTTP as a browser without JavaScript sends it (both databases)."""

import datetime as dt
import re
from zoneinfo import ZoneInfo

from litestar import Litestar

from tests.api.conftest import ApiOrg, make_api_org
from tests.web.support import Browser, signed_in, visible_text
from timebank import ledger
from timebank.db import Database
from timebank.orgs import service as orgs


def new_form_of(html: str) -> dict[str, str]:
    key = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', html)
    assert key, "the form carries its own idempotency key"
    return {"idempotency_key": key.group(1)}


def today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Europe/London")).date()


def exchange(org: ApiOrg, key: str, **changes: str) -> dict[str, str]:
    day = today()
    return {
        "idempotency_key": key,
        "giver": "Member Other",
        "receiver": "member self",
        "hours": "1",
        "minutes": "30",
        "occurred_on-day": str(day.day),
        "occurred_on-month": str(day.month),
        "occurred_on-year": str(day.year),
        "category": "Gardening",
        "description": "Dug the beds",
        **changes,
    }


async def form_key(staff: Browser, org: ApiOrg) -> str:
    answer = await staff.get(f"/orgs/{org.slug}/exchanges/new")
    assert answer.status_code == 200
    return new_form_of(answer.text)["idempotency_key"]


class TestLogAnExchange:
    async def test_posts_once_and_confirms_with_both_new_balances(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        staff = await signed_in(app, db, org.staff)
        key = await form_key(staff, org)
        yesterday = today() - dt.timedelta(days=1)
        form = exchange(
            org,
            key,
            **{
                "occurred_on-day": str(yesterday.day),
                "occurred_on-month": str(yesterday.month),
                "occurred_on-year": str(yesterday.year),
            },
        )
        first = await staff.post(f"/orgs/{org.slug}/exchanges/new", form)
        again = await staff.post(f"/orgs/{org.slug}/exchanges/new", form)
        assert first.status_code == again.status_code == 303
        assert first.headers["location"] == again.headers["location"], "a double submit posts once"
        assert await ledger.current_balance(db, org.id, org.member.account_id) == -90
        done = await staff.get(first.headers["location"])
        text = visible_text(done.text)
        assert "Member Other gave Member Self 1 hour 30 minutes" in text
        assert "Member Other 1 hour 30 minutes" in text and "Member Self 1 hour 30 minutes below zero" in text
        another = re.search(r'href="([^"]+)" id="log-another"', done.text)
        assert another is not None
        form = await staff.get(another.group(1).replace("&amp;", "&"))
        # "Log another exchange": a new form with the date and the category of the last one.
        assert 'value="Gardening" selected' in form.text
        yesterday = today() - dt.timedelta(days=1)
        for part, value in (("day", yesterday.day), ("month", yesterday.month), ("year", yesterday.year)):
            assert re.search(f'name="occurred_on-{part}"[^>]*value="{value}"', form.text), part
        assert new_form_of(form.text)["idempotency_key"] != key

    async def test_the_centre_may_be_either_side(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        staff = await signed_in(app, db, org.staff)
        centre = f"Test centre {org.slug}"
        form = exchange(org, await form_key(staff, org), giver=centre, receiver="Member Self")
        assert (await staff.post(f"/orgs/{org.slug}/exchanges/new", form)).status_code == 303
        assert await ledger.current_balance(db, org.id, org.org.agency_account_id) == 90

    async def test_several_matches_are_a_step_to_choose_one(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        staff = await signed_in(app, db, org.staff)
        form = exchange(org, await form_key(staff, org), giver="member")
        step = await staff.post(f"/orgs/{org.slug}/exchanges/new", form)
        assert step.status_code == 200 and "There is a problem" not in step.text
        assert 'name="giver_account_id"' in step.text and "Member Other" in step.text
        chosen = {**form, "giver_account_id": str(org.other_member.account_id), "giver_choosing": "1"}
        assert (await staff.post(f"/orgs/{org.slug}/exchanges/new", chosen)).status_code == 303

    async def test_a_refusal_says_what_to_do_and_keeps_everything_typed(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)  # the minimum balance is 2 hours below zero
        staff = await signed_in(app, db, org.staff)
        form = exchange(org, await form_key(staff, org), hours="3", minutes="0", description="A long walk")
        refused = await staff.post(f"/orgs/{org.slug}/exchanges/new", form)
        assert refused.status_code == 409
        text = visible_text(refused.text)
        assert "This would take Member Self to 3 hours below zero" in text
        assert 'href="#hours"' in refused.text
        assert 'value="A long walk"' in refused.text or ">A long walk<" in refused.text
        assert 'value="Member Other"' in refused.text and 'value="3"' in refused.text
        assert await ledger.current_balance(db, org.id, org.member.account_id) == 0

    async def test_problems_with_the_form_are_linked_to_their_fields(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        staff = await signed_in(app, db, org.staff)
        form = exchange(org, await form_key(staff, org), giver="Nobody Like This", receiver="", minutes="75")
        refused = await staff.post(f"/orgs/{org.slug}/exchanges/new", form)
        assert refused.status_code == 400
        for field in ("#giver", "#receiver", "#minutes"):
            assert f'href="{field}"' in refused.text
        assert "No one called “Nobody Like This” was found" in visible_text(refused.text)
        same = exchange(org, await form_key(staff, org), receiver="Member Other")
        assert "must be different people" in (await staff.post(f"/orgs/{org.slug}/exchanges/new", same)).text

    async def test_only_the_organisations_current_categories_are_accepted(self, app: Litestar, db: Database) -> None:
        """The form checks the category against the organisation's active ones (orgs/service.py,
        ``active_category_names``): a retired one, or another organisation's, is a problem on
        the field, and nothing is posted."""
        org, other = await make_api_org(db), await make_api_org(db)
        await orgs.add_category(db, other.id, "Knitting", changed_by=None)
        gardening = next(c for c in await orgs.list_categories(db, org.id) if c.name == "Gardening")
        await orgs.set_category_active(db, org.id, gardening.id, False, changed_by=None)
        staff = await signed_in(app, db, org.staff)
        for category in ("Gardening", "Knitting"):
            refused = await staff.post(
                f"/orgs/{org.slug}/exchanges/new", exchange(org, await form_key(staff, org), category=category)
            )
            assert refused.status_code == 400 and 'href="#category"' in refused.text, category
            assert "Choose what kind of help it was" in visible_text(refused.text)
        await orgs.set_category_active(db, org.id, gardening.id, True, changed_by=None)
        logged = await staff.post(f"/orgs/{org.slug}/exchanges/new", exchange(org, await form_key(staff, org)))
        assert logged.status_code == 303
        assert await ledger.current_balance(db, org.id, org.member.account_id) == -90  # the one that passed

    async def test_members_may_not_log_exchanges(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        member = await signed_in(app, db, org.member)
        assert (await member.get(f"/orgs/{org.slug}/exchanges/new")).status_code == 403
        refused = await member.post(f"/orgs/{org.slug}/exchanges/new", exchange(org, "a" * 32))
        assert refused.status_code == 403
