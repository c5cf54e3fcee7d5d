"""Members through HTTP: registered and edited by staff and coordinators, each able to read their own."""

import pytest
from sqlalchemy import select

from tests.api.conftest import PASSWORD, client_for, make_api_org
from tests.api.support import error, invalid, post_exchange, posted
from tests.conftest import today
from tests.ledger.support import unchanged
from timebank.models import Member

members = Member.__table__


@pytest.fixture(scope="module")
async def shared_org(db):
    """One organisation for the tests that only send refused requests (each checked to change nothing)."""
    return await make_api_org(db)


async def register(client, api_org, body, by=None):
    return await client.post(api_org.url("/members"), json=body, headers=(by or api_org.staff).headers)


async def registered(client, api_org, body, by=None) -> dict:
    r = await register(client, api_org, body, by)
    assert r.status_code == 201, r.text
    return r.json()


async def member_total(client, api_org) -> int:
    r = await client.get(api_org.url("/members"), headers=api_org.coordinator.headers)
    assert r.status_code == 200, r.text
    return r.json()["total"]


async def read_member(client, api_org, member_id: int) -> dict:
    r = await client.get(api_org.url(f"/members/{member_id}"), headers=api_org.coordinator.headers)
    assert r.status_code == 200, r.text
    return r.json()


async def edit(client, api_org, member_id: int, changes: dict, by):
    return await client.patch(api_org.url(f"/members/{member_id}"), json=changes, headers=by.headers)


class TestRegisterMember:
    async def test_staff_register_a_member_who_will_not_sign_in(self, client, db, api_org):
        new = await registered(client, api_org, {"display_name": "  Alice   Murray "})
        assert new == {
            "id": new["id"],
            "display_name": "Alice Murray",
            "email": None,
            "role": "member",
            "username": None,
            "joined_on": today().isoformat(),
            "is_active": True,
            "account_id": new["account_id"],
            "balance": {"minutes": 0, "hours": "0.00"},
        }
        account = await client.get(api_org.url(f"/accounts/{new['account_id']}"), headers=api_org.staff.headers)
        assert account.json()["member_id"] == new["id"]
        async with db.engine.connect() as conn:
            user_id = await conn.scalar(select(members.c.user_id).where(members.c.id == new["id"]))
        assert user_id is None  # no login: nothing to sign in with

    async def test_a_member_given_a_username_and_password_can_sign_in(self, client, api_org):
        body = {
            "display_name": "Bob Smith",
            "username": f" Bob.Smith.{api_org.slug} ",
            "password": PASSWORD,
            "email": "bob@example.org",
            "joined_on": "2024-03-01",
        }
        new = await registered(client, api_org, body)
        assert new["username"] == f"bob.smith.{api_org.slug}"
        assert new["email"] == "bob@example.org"
        assert new["joined_on"] == "2024-03-01"
        token = await client.post("/api/v1/auth/token", json={"username": body["username"], "password": PASSWORD})
        assert token.status_code == 200, token.text
        me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token.json()['access_token']}"})
        assert me.json()["organisations"] == [
            {
                "slug": api_org.slug,
                "name": f"Test centre {api_org.slug}",
                "role": "member",
                "member_id": new["id"],
                "account_id": new["account_id"],
            }
        ]

    async def test_a_username_already_taken_is_409_whatever_its_case(self, client, shared_org):
        total = await member_total(client, shared_org)
        body = {"display_name": "Copycat", "username": shared_org.member.username.upper(), "password": PASSWORD}
        assert "already taken" in error(await register(client, shared_org, body), 409)["detail"]
        assert await member_total(client, shared_org) == total

    @pytest.mark.parametrize("role", ["member", "staff", "coordinator"])
    async def test_a_coordinator_may_give_any_role(self, client, api_org, role):
        new = await registered(client, api_org, {"display_name": f"New {role}", "role": role}, by=api_org.coordinator)
        assert new["role"] == role

    @pytest.mark.parametrize("role", ["staff", "coordinator"])
    async def test_staff_may_register_members_only(self, client, shared_org, role):
        total = await member_total(client, shared_org)
        body = error(await register(client, shared_org, {"display_name": "Promoted", "role": role}), 403)
        assert "coordinator" in body["detail"]
        assert await member_total(client, shared_org) == total

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "display_name"),
            ({"display_name": ""}, "display_name"),
            ({"display_name": "   "}, "display_name"),
            ({"display_name": "x" * 201}, "display_name"),
            ({"display_name": 42}, "display_name"),
            ({"display_name": "Ann", "email": "not-an-email"}, "email"),
            ({"display_name": "Ann", "role": "admin"}, "role"),
            ({"display_name": "Ann", "username": "ann-no-password"}, "password"),
            ({"display_name": "Ann", "password": PASSWORD}, "username"),
            ({"display_name": "Ann", "username": "ann-short", "password": "short"}, "password"),
            ({"display_name": "Ann", "username": "", "password": PASSWORD}, "username"),
            ({"display_name": "Ann", "joined_on": "2024-13-01"}, "joined_on"),
            ({"display_name": "Ann", "is_admin": True}, "is_admin"),
            ({"display_name": "Ann\x00"}, None),
        ],
        ids=lambda value: str(value)[:40],
    )
    async def test_refuses_invalid_details_with_400_and_registers_nobody(self, client, shared_org, body, field):
        total = await member_total(client, shared_org)
        invalid(await register(client, shared_org, body), field)
        assert await member_total(client, shared_org) == total


async def seven_members(client, db):
    """An organisation whose members are, by name: Alan Alderman, Coordinator.., Member Other,
    Member Self, Percy 100% Pure, Staff.., Zoe Alder; Member Self has given Member Other 0.75 hours."""
    api_org = await make_api_org(db)
    for name in ("Zoe Alder", "Alan Alderman", "Percy 100% Pure"):
        await registered(client, api_org, {"display_name": name})
    await posted(client, api_org, api_org.member.account_id, api_org.other_member.account_id, minutes=45)
    return api_org


class TestListMembers:
    @pytest.fixture(scope="class")
    @classmethod
    async def centre(cls, app, db):
        """Seven members the tests of this class only read."""
        async with client_for(app) as client:
            return await seven_members(client, db)

    async def list_members(self, client, api_org, query: str = "") -> dict:
        r = await client.get(api_org.url(f"/members{query}"), headers=api_org.staff.headers)
        assert r.status_code == 200, r.text
        return r.json()

    async def test_lists_every_member_by_name_with_their_balance(self, client, centre):
        page = await self.list_members(client, centre)
        names = [item["display_name"] for item in page["items"]]
        assert names == sorted(names)
        assert len(names) == page["total"] == 7
        assert (page["limit"], page["offset"]) == (50, 0)
        balances = {item["display_name"]: item["balance"] for item in page["items"]}
        assert balances["Member Self"] == {"minutes": 45, "hours": "0.75"}
        assert balances["Member Other"] == {"minutes": -45, "hours": "-0.75"}
        assert balances["Zoe Alder"] == {"minutes": 0, "hours": "0.00"}

    @pytest.mark.parametrize(
        ("q", "expected"),
        [
            ("alder", ["Alan Alderman", "Zoe Alder"]),
            ("ALDERMAN", ["Alan Alderman"]),
            ("100%", ["Percy 100% Pure"]),
            ("%", ["Percy 100% Pure"]),
            ("_", []),
            ("nobody", []),
        ],
    )
    async def test_searches_by_part_of_the_name(self, client, centre, q, expected):
        page = await self.list_members(client, centre, f"?q={q.replace('%', '%25')}")
        assert [item["display_name"] for item in page["items"]] == expected
        assert page["total"] == len(expected)

    async def test_filters_active_or_inactive_members(self, client, db):
        centre = await seven_members(client, db)
        r = await edit(client, centre, centre.other_member.member_id, {"is_active": False}, by=centre.staff)
        assert r.status_code == 200, r.text
        inactive = await self.list_members(client, centre, "?active=false")
        assert [item["display_name"] for item in inactive["items"]] == ["Member Other"]
        assert inactive["items"][0]["is_active"] is False
        active = await self.list_members(client, centre, "?active=true")
        assert active["total"] == 6
        assert "Member Other" not in [item["display_name"] for item in active["items"]]

    async def test_pages_through_all_members_with_limit_and_offset(self, client, centre):
        everyone = (await self.list_members(client, centre))["items"]
        pages = [await self.list_members(client, centre, f"?limit=3&offset={offset}") for offset in (0, 3, 6, 9)]
        assert [len(page["items"]) for page in pages] == [3, 3, 1, 0]
        assert all(page["total"] == 7 and page["limit"] == 3 for page in pages)
        assert [item for page in pages for item in page["items"]] == everyone

    @pytest.mark.parametrize(
        "query", ["?limit=0", "?limit=201", "?limit=many", "?offset=-1", "?active=maybe", f"?q={'x' * 201}"]
    )
    async def test_refuses_bad_paging_or_filters_with_400(self, client, shared_org, query):
        invalid(await client.get(shared_org.url(f"/members{query}"), headers=shared_org.staff.headers))


class TestReadMember:
    async def test_a_member_reads_their_own_record(self, client, api_org):
        me = api_org.member
        r = await client.get(api_org.url(f"/members/{me.member_id}"), headers=me.headers)
        assert r.status_code == 200, r.text
        assert r.json()["display_name"] == "Member Self"
        assert r.json()["account_id"] == me.account_id
        assert r.json()["username"] == me.username

    async def test_a_member_unknown_here_is_404_whether_or_not_it_exists_elsewhere(self, client, db, api_org):
        elsewhere = await make_api_org(db)
        answers = []
        for member_id in (elsewhere.member.member_id, 10**12):
            body = error(await client.get(api_org.url(f"/members/{member_id}"), headers=api_org.staff.headers), 404)
            answers.append(body["detail"].replace(str(member_id), "<id>"))
        assert answers[0] == answers[1]


class TestEditMember:
    async def test_staff_change_a_members_name_and_email(self, client, api_org):
        target = api_org.other_member
        r = await edit(
            client, api_org, target.member_id, {"display_name": "Olive  Other", "email": "o@example.org"}, api_org.staff
        )
        assert r.status_code == 200, r.text
        assert r.json()["display_name"] == "Olive Other"
        assert r.json()["email"] == "o@example.org"
        assert r.json()["role"] == "member"
        assert await read_member(client, api_org, target.member_id) == r.json()

    async def test_only_a_coordinator_changes_roles_and_the_new_role_applies_at_once(self, client, api_org):
        target = api_org.member
        error(await edit(client, api_org, target.member_id, {"role": "staff"}, api_org.staff), 403)
        assert (await read_member(client, api_org, target.member_id))["role"] == "member"
        error(await client.get(api_org.url("/members"), headers=target.headers), 403)
        r = await edit(client, api_org, target.member_id, {"role": "staff"}, api_org.coordinator)
        assert r.status_code == 200, r.text
        assert r.json()["role"] == "staff"
        assert (await client.get(api_org.url("/members"), headers=target.headers)).status_code == 200

    async def test_staff_may_restate_a_members_current_role(self, client, api_org):
        changes = {"role": "member", "display_name": "Still A Member"}
        r = await edit(client, api_org, api_org.member.member_id, changes, api_org.staff)
        assert r.status_code == 200, r.text

    async def test_staff_may_not_edit_a_coordinator(self, client, shared_org):
        coordinator = shared_org.coordinator
        before = await read_member(client, shared_org, coordinator.member_id)
        for changes in ({"display_name": "Demoted"}, {"is_active": False}, {"email": "c@example.org"}):
            error(await edit(client, shared_org, coordinator.member_id, changes, shared_org.staff), 403)
        assert await read_member(client, shared_org, coordinator.member_id) == before

    @pytest.mark.parametrize("changes", [{"role": "staff"}, {"role": "member"}, {"is_active": False}])
    async def test_the_last_coordinator_can_be_neither_demoted_nor_deactivated(self, client, shared_org, changes):
        coordinator = shared_org.coordinator
        before = await read_member(client, shared_org, coordinator.member_id)
        body = error(await edit(client, shared_org, coordinator.member_id, changes, coordinator), 409)
        assert "last active coordinator" in body["detail"]
        assert await read_member(client, shared_org, coordinator.member_id) == before

    async def test_with_a_second_coordinator_the_first_may_step_down(self, client, api_org):
        first, second = api_org.coordinator, api_org.staff
        r = await edit(client, api_org, second.member_id, {"role": "coordinator"}, first)
        assert r.status_code == 200, r.text
        r = await edit(client, api_org, first.member_id, {"role": "member"}, first)
        assert r.status_code == 200, r.text
        assert r.json()["role"] == "member"
        error(await client.patch(api_org.url(), json={"name": "Mine"}, headers=first.headers), 403)
        # Now the second is the last one.
        error(await edit(client, api_org, second.member_id, {"is_active": False}, second), 409)

    async def test_deactivation_keeps_the_account_and_history_and_refuses_new_exchanges(self, client, api_org):
        leaving, staying = api_org.other_member, api_org.member
        old = await posted(client, api_org, staying.account_id, leaving.account_id, minutes=30)
        r = await edit(client, api_org, leaving.member_id, {"is_active": False}, api_org.staff)
        assert r.status_code == 200, r.text
        assert r.json()["is_active"] is False
        assert r.json()["balance"] == {"minutes": -30, "hours": "-0.50"}
        account = await client.get(api_org.url(f"/accounts/{leaving.account_id}"), headers=api_org.staff.headers)
        assert account.json()["is_active"] is False
        assert account.json()["balance"]["minutes"] == -30
        statement = await client.get(
            api_org.url(f"/accounts/{leaving.account_id}/statement"), headers=api_org.staff.headers
        )
        assert [entry["transaction_id"] for entry in statement.json()["entries"]] == [old["id"]]
        async with unchanged(api_org.org):
            for giver, receiver in ((leaving, staying), (staying, leaving)):
                refused = error(await post_exchange(client, api_org, giver.account_id, receiver.account_id), 409)
                assert refused["extra"] == {"account_id": leaving.account_id}
        # They no longer belong to the organisation, though their login still exists.
        error(await client.get(api_org.url(f"/accounts/{leaving.account_id}"), headers=leaving.headers), 404)
        r = await edit(client, api_org, leaving.member_id, {"is_active": True}, api_org.staff)
        assert r.json()["is_active"] is True
        await posted(client, api_org, staying.account_id, leaving.account_id, minutes=30)

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"display_name": ""}, "display_name"),
            ({"display_name": "   "}, "display_name"),
            ({"email": "not-an-email"}, "email"),
            ({"role": "king"}, "role"),
            ({"is_active": "sometimes"}, "is_active"),
            ({"username": "renamed"}, "username"),
            ({"account_id": 1}, "account_id"),
        ],
        ids=lambda value: str(value)[:40],
    )
    async def test_refuses_invalid_changes_with_400_and_changes_nothing(self, client, shared_org, changes, field):
        target = shared_org.member.member_id
        before = await read_member(client, shared_org, target)
        invalid(await edit(client, shared_org, target, changes, shared_org.coordinator), field)
        assert await read_member(client, shared_org, target) == before

    async def test_an_unknown_member_is_404(self, client, shared_org):
        error(await edit(client, shared_org, 10**12, {"display_name": "Ghost"}, shared_org.staff), 404)
