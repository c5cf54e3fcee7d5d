"""Organisations through HTTP: created by a site administrator, read by members, run by coordinators."""

import datetime as dt
import uuid

import pytest
from sqlalchemy import func, select

from tests.api.conftest import add_site_admin, make_api_org
from tests.api.support import error, invalid, post_exchange, posted
from tests.conftest import make_org, today
from tests.ledger.support import unchanged
from timebank.models import Organisation
from timebank.orgs.service import DEFAULT_CATEGORIES

ORGS = "/api/v1/orgs"
organisations = Organisation.__table__


@pytest.fixture(scope="module")
async def shared_org(db):
    """One organisation for the tests that only send refused requests (each checked to change nothing)."""
    return await make_api_org(db)


@pytest.fixture(scope="module")
async def site_admin(db):
    return await add_site_admin(db)


def new_slug() -> str:
    return f"centre-{uuid.uuid4().hex[:10]}"


async def organisations_named(db, slug: str) -> int:
    async with db.engine.connect() as conn:
        return await conn.scalar(select(func.count()).select_from(organisations).where(organisations.c.slug == slug))


class TestCreateOrganisation:
    async def test_a_site_administrator_creates_one_with_its_agency_account_pot_and_categories(self, client, db):
        admin = await add_site_admin(db)
        slug = new_slug()
        body = {"slug": slug, "name": "Holy Cross Centre", "timezone": "Europe/Dublin", "min_balance_hours": "-10"}
        r = await client.post(ORGS, json=body, headers=admin.headers)
        assert r.status_code == 201, r.text
        created = r.json()
        assert created == {
            "id": created["id"],
            "slug": slug,
            "name": "Holy Cross Centre",
            "timezone": "Europe/Dublin",
            "min_balance": {"minutes": -600, "hours": "-10.00"},
            "books_closed_through": None,
            "categories": sorted(DEFAULT_CATEGORIES),
            "agency_account_id": created["agency_account_id"],
            "pot_account_id": created["pot_account_id"],
        }
        assert created["agency_account_id"] != created["pot_account_id"]

    @pytest.mark.parametrize(
        ("minimum", "expected"),
        [
            ({"min_balance_minutes": -90}, {"minutes": -90, "hours": "-1.50"}),
            ({"min_balance_hours": -2.25}, {"minutes": -135, "hours": "-2.25"}),
            ({"min_balance_minutes": 0}, {"minutes": 0, "hours": "0.00"}),
            ({}, {"minutes": -1200, "hours": "-20.00"}),
        ],
        ids=["minutes", "hours", "zero", "default"],
    )
    async def test_takes_the_minimum_balance_in_minutes_or_hours(self, client, site_admin, minimum, expected):
        admin = site_admin
        r = await client.post(ORGS, json={"slug": new_slug(), "name": "Centre", **minimum}, headers=admin.headers)
        assert r.status_code == 201, r.text
        assert r.json()["min_balance"] == expected
        assert r.json()["timezone"] == "Europe/London"

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"slug": "Holy Cross"}, "slug"),
            ({"slug": "-holy"}, "slug"),
            ({"slug": ""}, "slug"),
            ({"slug": "x" * 64}, "slug"),
            ({"name": ""}, "name"),
            ({"name": "   "}, "name"),
            ({"timezone": "Mars/Olympus_Mons"}, "Mars/Olympus_Mons"),
            ({"timezone": "Europe"}, "Europe"),
            ({"timezone": "../../etc/passwd"}, "etc/passwd"),
            ({"min_balance_hours": "1"}, "min_balance_hours"),
            ({"min_balance_hours": "-1.333"}, "min_balance_hours"),
            ({"min_balance_hours": "-10001"}, "min_balance_hours"),
            ({"min_balance_minutes": 5}, "min_balance_minutes"),
            ({"min_balance_minutes": -(10**20)}, "min_balance_minutes"),
            ({"min_balance_minutes": -60, "min_balance_hours": -1}, "min_balance"),
            ({"owner": "me"}, "owner"),
        ],
        ids=lambda value: str(value)[:40],
    )
    async def test_refuses_invalid_settings_with_400_and_creates_nothing(self, client, db, site_admin, changes, field):
        admin = site_admin
        body = {"slug": new_slug(), "name": "Centre", **changes}
        invalid(await client.post(ORGS, json=body, headers=admin.headers), field)
        if isinstance(body["slug"], str):
            assert await organisations_named(db, body["slug"]) == 0

    async def test_with_a_first_coordinator_who_can_then_sign_in_and_run_it(self, client, db, site_admin):
        slug, username = new_slug(), f"lead-{uuid.uuid4().hex[:8]}"
        r = await client.post(
            ORGS,
            json={
                "slug": slug,
                "name": "Hub",
                "first_coordinator": {"display_name": "Emma", "username": username, "password": "a long password"},
            },
            headers=site_admin.headers,
        )
        assert r.status_code == 201, r.text
        token = await client.post("/api/v1/auth/token", json={"username": username, "password": "a long password"})
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        me = (await client.get("/api/v1/me", headers=headers)).json()
        assert [(m["slug"], m["role"]) for m in me["organisations"]] == [(slug, "coordinator")]
        member = await client.post(f"{ORGS}/{slug}/members", json={"display_name": "Pat"}, headers=headers)
        assert member.status_code == 201, member.text

    async def test_a_first_coordinator_whose_username_is_taken_creates_nothing(self, client, db, site_admin, api_org):
        slug = new_slug()
        taken = {"display_name": "Emma", "username": api_org.member.username, "password": "a long password"}
        r = await client.post(
            ORGS, json={"slug": slug, "name": "Hub", "first_coordinator": taken}, headers=site_admin.headers
        )
        error(r, 409)
        assert await organisations_named(db, slug) == 0

    async def test_a_slug_already_taken_is_409(self, client, db):
        admin = await add_site_admin(db)
        existing = await make_org(db)
        body = error(await client.post(ORGS, json={"slug": existing.slug, "name": "Again"}, headers=admin.headers), 409)
        assert existing.slug in body["detail"]
        assert await organisations_named(db, existing.slug) == 1

    async def test_only_a_site_administrator_may_create_one(self, client, db, api_org):
        slug = new_slug()
        error(await client.post(ORGS, json={"slug": slug, "name": "Mine"}, headers=api_org.coordinator.headers), 403)
        error(await client.post(ORGS, json={"slug": slug, "name": "Mine"}), 401)
        assert await organisations_named(db, slug) == 0


class TestReadOrganisation:
    async def test_any_member_reads_its_settings(self, client, api_org):
        r = await client.get(api_org.url(), headers=api_org.member.headers)
        assert r.status_code == 200, r.text
        assert r.json() == {
            "id": api_org.id,
            "slug": api_org.slug,
            "name": f"Test centre {api_org.slug}",
            "timezone": "Europe/London",
            "min_balance": {"minutes": -120, "hours": "-2.00"},
            "books_closed_through": None,
            "categories": sorted(DEFAULT_CATEGORIES),
            "agency_account_id": api_org.org.agency_account_id,
            "pot_account_id": api_org.org.pot_account_id,
        }

    @pytest.mark.parametrize(
        ("method", "path"),
        [
            ("GET", ""),
            ("PATCH", ""),
            ("GET", "/members"),
            ("POST", "/members"),
            ("GET", "/accounts"),
            ("GET", "/accounts/1"),
            ("GET", "/exchanges"),
            ("POST", "/exchanges"),
            ("POST", "/exchanges/1/reversal"),
        ],
    )
    async def test_another_organisation_looks_exactly_like_one_that_does_not_exist(
        self, client, db, shared_org, method, path
    ):
        elsewhere = await make_org(db)
        missing = new_slug()
        coordinator = shared_org.coordinator
        answers = []
        for slug in (elsewhere.slug, missing):
            r = await client.request(
                method, f"{ORGS}/{slug}{path}", json={"name": "Mine"}, headers=coordinator.posting()
            )
            body = error(r, 404)
            answers.append({**body, "detail": body["detail"].replace(slug, "<slug>")})
        assert answers[0] == answers[1]

    async def test_a_caller_without_a_token_cannot_tell_which_organisations_exist(self, client, shared_org):
        existing = error(await client.get(shared_org.url()), 401)
        missing = error(await client.get(f"{ORGS}/{new_slug()}"), 401)
        assert existing == missing


class TestUpdateOrganisation:
    async def test_a_coordinator_changes_name_time_zone_and_minimum_balance(self, client, api_org):
        changes = {"name": "Riverside Centre", "timezone": "Europe/Lisbon", "min_balance_hours": "-5.5"}
        r = await client.patch(api_org.url(), json=changes, headers=api_org.coordinator.headers)
        assert r.status_code == 200, r.text
        assert r.json()["name"] == "Riverside Centre"
        assert r.json()["timezone"] == "Europe/Lisbon"
        assert r.json()["min_balance"] == {"minutes": -330, "hours": "-5.50"}
        assert (await client.get(api_org.url(), headers=api_org.member.headers)).json() == r.json()

    async def test_changes_only_what_is_given(self, client, api_org):
        before = (await client.get(api_org.url(), headers=api_org.member.headers)).json()
        r = await client.patch(api_org.url(), json={"name": "Renamed"}, headers=api_org.coordinator.headers)
        assert r.status_code == 200, r.text
        assert r.json() == {**before, "name": "Renamed"}

    async def test_categories_replace_the_list_and_retired_ones_stay_on_old_entries(self, client, api_org):
        old = await posted(
            client, api_org, api_org.member.account_id, api_org.other_member.account_id, category="Gardening"
        )
        r = await client.patch(
            api_org.url(), json={"categories": ["Music", "Cooking"]}, headers=api_org.coordinator.headers
        )
        assert r.status_code == 200, r.text
        assert r.json()["categories"] == ["Cooking", "Music"]
        again = await client.get(api_org.url(f"/exchanges/{old['id']}"), headers=api_org.staff.headers)
        assert again.json()["category"] == "Gardening"
        retired = await post_exchange(
            client, api_org, api_org.member.account_id, api_org.other_member.account_id, category="Gardening"
        )
        assert "Gardening" in invalid(retired)["detail"]
        await posted(client, api_org, api_org.member.account_id, api_org.other_member.account_id, category="Music")

    async def test_closing_a_month_refuses_entries_dated_in_it_or_before(self, client, api_org):
        last_day = today().replace(day=1) - dt.timedelta(days=1)
        r = await client.post(api_org.url(f"/periods/{last_day:%Y-%m}/close"), headers=api_org.coordinator.posting())
        assert r.status_code == 201, r.text
        organisation = (await client.get(api_org.url(), headers=api_org.member.headers)).json()
        assert organisation["books_closed_through"] == last_day.isoformat()
        giver, receiver = api_org.member.account_id, api_org.other_member.account_id
        async with unchanged(api_org.org):
            for day in (last_day, last_day - dt.timedelta(days=40)):
                body = error(await post_exchange(client, api_org, giver, receiver, occurred_on=day.isoformat()), 409)
                assert last_day.isoformat() in body["detail"]
                assert body["extra"] == {"books_closed_through": last_day.isoformat()}
        await posted(client, api_org, giver, receiver, occurred_on=today().replace(day=1).isoformat())

    @pytest.mark.parametrize("value", [None, "2020-01-31", "last week"])
    async def test_books_closed_through_is_refused_with_a_clear_message(self, client, shared_org, value):
        r = await client.patch(
            shared_org.url(),
            json={"name": "Not renamed", "books_closed_through": value},
            headers=shared_org.coordinator.headers,
        )
        body = invalid(r, "books_closed_through")
        assert "closing a month" in body["detail"] and "/periods/YYYY-MM/close" in body["detail"]
        after = (await client.get(shared_org.url(), headers=shared_org.member.headers)).json()
        assert after["books_closed_through"] is None
        assert after["name"] != "Not renamed"

    async def test_the_month_not_yet_ended_cannot_be_closed(self, client, shared_org):
        r = await client.post(
            shared_org.url(f"/periods/{today():%Y-%m}/close"), headers=shared_org.coordinator.posting()
        )
        assert "has not ended" in error(r, 409)["detail"]
        assert (await client.get(shared_org.url(), headers=shared_org.member.headers)).json()[
            "books_closed_through"
        ] is None

    async def test_a_tighter_minimum_lets_a_member_below_it_receive_but_not_spend(self, client, api_org):
        member, other = api_org.member.account_id, api_org.other_member.account_id
        await posted(client, api_org, other, member, minutes=90)  # the member is at -1.50 hours
        r = await client.patch(api_org.url(), json={"min_balance_minutes": -60}, headers=api_org.coordinator.headers)
        assert r.status_code == 200, r.text
        account = (await client.get(api_org.url(f"/accounts/{member}"), headers=api_org.member.headers)).json()
        assert account["balance"]["minutes"] == -90
        assert account["min_balance"] == {"minutes": -60, "hours": "-1.00"}
        async with unchanged(api_org.org):
            error(await post_exchange(client, api_org, other, member, minutes=1), 409)
        await posted(client, api_org, member, other, minutes=15)  # earning is always allowed

    async def test_a_looser_minimum_lets_members_spend_further(self, client, api_org):
        member, other = api_org.member.account_id, api_org.other_member.account_id
        error(await post_exchange(client, api_org, other, member, minutes=180), 409)
        r = await client.patch(api_org.url(), json={"min_balance_hours": "-3"}, headers=api_org.coordinator.headers)
        assert r.status_code == 200, r.text
        await posted(client, api_org, other, member, minutes=180)

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"timezone": "Mars/Olympus_Mons"}, "Mars/Olympus_Mons"),
            ({"min_balance_minutes": 5}, "min_balance_minutes"),
            ({"min_balance_hours": "-0.333"}, "min_balance_hours"),
            ({"min_balance_minutes": -60, "min_balance_hours": "-1"}, "min_balance"),
            ({"categories": ["Music", "music"]}, "categories"),
            ({"categories": [""]}, "categories"),
            ({"categories": ["x" * 81]}, "categories"),
            ({"categories": "Music"}, "categories"),
            ({"name": ""}, "name"),
            ({"books_closed_through": "last week"}, "books_closed_through"),
            ({"books_closed_through": "2025-02-30"}, "books_closed_through"),
            ({"slug": "new-slug"}, "slug"),
        ],
        ids=lambda value: str(value)[:40],
    )
    async def test_refuses_invalid_settings_with_400_and_changes_nothing(self, client, shared_org, changes, field):
        before = (await client.get(shared_org.url(), headers=shared_org.member.headers)).json()
        invalid(await client.patch(shared_org.url(), json=changes, headers=shared_org.coordinator.headers), field)
        assert (await client.get(shared_org.url(), headers=shared_org.member.headers)).json() == before

    async def test_only_a_coordinator_may_change_settings(self, client, shared_org):
        before = (await client.get(shared_org.url(), headers=shared_org.member.headers)).json()
        for person in (shared_org.staff, shared_org.member):
            body = error(await client.patch(shared_org.url(), json={"name": "Mine"}, headers=person.headers), 403)
            assert "coordinator" in body["detail"]
        assert (await client.get(shared_org.url(), headers=shared_org.member.headers)).json() == before
