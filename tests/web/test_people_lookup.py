"""The people lookup behind person fields: names only, at most ten, active members of one organisation."""

import datetime as dt

import pytest
from litestar import Litestar

from tests.api.conftest import ApiOrg, Person, add_person
from tests.web.support import signed_in
from timebank.db import Database
from timebank.members.service import set_member_active
from timebank.models import Role
from timebank.web.context import PageContext, SignedIn
from timebank.web.people import SEARCH_AGAIN, resolve_person


async def lookup(app: Litestar, db: Database, org: ApiOrg, person: Person, query: str) -> list[dict]:
    page = await signed_in(app, db, person)
    try:
        answer = await page.get(f"/orgs/{org.slug}/people?{query}")
    finally:
        await page.aclose()
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    return answer.json()


def context_of(org: ApiOrg, person: Person) -> PageContext:
    now = dt.datetime.now(dt.UTC)
    user = SignedIn(person.user_id, person.username, False, False, "hash", now, 60)
    return PageContext(
        user=user,
        organisation_id=org.id,
        slug=org.slug,
        organisation_name=f"Test centre {org.slug}",
        timezone="Europe/London",
        member_id=person.member_id,
        display_name=person.display_name,
        role=person.role,
        account_id=person.account_id,
    )


class TestPeopleLookup:
    async def test_a_member_gets_names_and_account_ids_only_never_a_balance(
        self, app: Litestar, db: Database, api_org: ApiOrg
    ) -> None:
        found = await lookup(app, db, api_org, api_org.member, "q=member")
        assert found == [{"account_id": api_org.other_member.account_id, "name": "Member Other"}]
        for person in found:
            assert set(person) == {"account_id", "name"}

    async def test_a_member_never_finds_themself_staff_do(self, app: Litestar, db: Database, api_org: ApiOrg) -> None:
        assert await lookup(app, db, api_org, api_org.member, "q=self") == []
        found = await lookup(app, db, api_org, api_org.staff, "q=self")
        assert found == [{"account_id": api_org.member.account_id, "name": "Member Self"}]

    async def test_at_most_ten_by_name(self, app: Litestar, db: Database, api_org: ApiOrg) -> None:
        for number in range(12):
            await add_person(db, api_org.org, Role.MEMBER, name=f"Gardener {number:02d}")
        found = await lookup(app, db, api_org, api_org.member, "q=GARDENER")
        assert [p["name"] for p in found] == [f"Gardener {n:02d}" for n in range(10)]

    async def test_deactivated_members_are_not_found(self, app: Litestar, db: Database, api_org: ApiOrg) -> None:
        await set_member_active(db, api_org.id, api_org.other_member.member_id, False, changed_by=None)
        assert await lookup(app, db, api_org, api_org.member, "q=member") == []

    async def test_wildcards_are_letters(self, app: Litestar, db: Database, api_org: ApiOrg) -> None:
        assert await lookup(app, db, api_org, api_org.staff, "q=%25") == []
        assert await lookup(app, db, api_org, api_org.staff, "q=_") == []
        assert await lookup(app, db, api_org, api_org.staff, "q=") == []

    async def test_staff_may_ask_for_the_centre_members_may_not(
        self, app: Litestar, db: Database, api_org: ApiOrg
    ) -> None:
        centre = {"account_id": api_org.org.agency_account_id, "name": f"Test centre {api_org.slug}"}
        assert await lookup(app, db, api_org, api_org.staff, "q=centre&include_centre=1") == [centre]
        assert await lookup(app, db, api_org, api_org.staff, "q=centre") == []
        assert await lookup(app, db, api_org, api_org.member, "q=centre&include_centre=1") == []

    async def test_another_organisations_members_are_not_found(
        self, app: Litestar, db: Database, api_org: ApiOrg
    ) -> None:
        from tests.api.conftest import make_api_org

        elsewhere = await make_api_org(db)
        assert await lookup(app, db, elsewhere, elsewhere.staff, "q=member") == [
            {"account_id": elsewhere.other_member.account_id, "name": "Member Other"},
            {"account_id": elsewhere.member.account_id, "name": "Member Self"},
        ]
        page = await signed_in(app, db, api_org.member)
        answer = await page.get(f"/orgs/{elsewhere.slug}/people?q=member")
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("text/html")


class TestResolvePerson:
    async def test_one_exact_name_is_that_person(self, db: Database, api_org: ApiOrg) -> None:
        field = await resolve_person(db, context_of(api_org, api_org.member), typed="  member   OTHER ")
        assert field.chosen is not None and field.chosen.account_id == api_org.other_member.account_id
        assert field.typed == "Member Other"

    async def test_part_of_a_name_asks_to_choose(self, db: Database, api_org: ApiOrg) -> None:
        field = await resolve_person(db, context_of(api_org, api_org.staff), typed="member")
        assert field.chosen is None and field.problem == "choose" and not field.is_error
        assert [c.name for c in field.candidates] == ["Member Other", "Member Self"]
        # The radios were shown and none was picked: now it is an error.
        again = await resolve_person(db, context_of(api_org, api_org.staff), typed="member", choosing=True)
        assert again.problem == "not_chosen" and again.is_error

    async def test_a_chosen_radio_wins(self, db: Database, api_org: ApiOrg) -> None:
        ctx = context_of(api_org, api_org.staff)
        chosen = str(api_org.member.account_id)
        field = await resolve_person(db, ctx, typed="member", account_id=chosen, choosing=True)
        assert field.chosen is not None and field.chosen.name == "Member Self"

    async def test_a_suggestion_typed_over_is_searched_again(self, db: Database, api_org: ApiOrg) -> None:
        ctx = context_of(api_org, api_org.staff)
        field = await resolve_person(db, ctx, typed="Member Other", account_id=str(api_org.member.account_id))
        assert field.chosen is not None and field.chosen.account_id == api_org.other_member.account_id

    @pytest.mark.parametrize("who", ["self", "staff_elsewhere", "agency", "nonsense"])
    async def test_an_account_the_lookup_would_not_offer_is_not_chosen(
        self, db: Database, api_org: ApiOrg, who: str
    ) -> None:
        ctx = context_of(api_org, api_org.member)
        account_id = {
            "self": str(api_org.member.account_id),
            "staff_elsewhere": "999999",
            "agency": str(api_org.org.agency_account_id),
            "nonsense": "12x",
        }[who]
        field = await resolve_person(db, ctx, typed="", account_id=account_id, choosing=True)
        assert field.chosen is None and field.problem == "missing"

    async def test_nothing_found_and_search_again(self, db: Database, api_org: ApiOrg) -> None:
        ctx = context_of(api_org, api_org.member)
        assert (await resolve_person(db, ctx, typed="Nobody")).problem == "not_found"
        again = await resolve_person(db, ctx, typed="mem", account_id=SEARCH_AGAIN, choosing=True)
        assert again.chosen is None and again.problem is None and again.typed == "mem"

    async def test_staff_may_name_the_centre(self, db: Database, api_org: ApiOrg) -> None:
        ctx = context_of(api_org, api_org.staff)
        field = await resolve_person(db, ctx, typed=f"test centre {api_org.slug}", include_centre=True)
        assert field.chosen is not None and field.chosen.is_centre
        assert field.chosen.account_id == api_org.org.agency_account_id
