"""Staff pages for members, through HTTP as a browser sends them (both databases).

The rules are the member service's; these tests check the pages apply them and say so:
who may be edited, whose password staff may reset, and that a reset or a deactivation
ends the member's open sessions.
"""

import re

import pytest
from litestar import Litestar
from sqlalchemy import update
from sqlmodel import select

from tests.api.conftest import PASSWORD, ApiOrg, add_person, add_site_admin, make_api_org
from tests.web.support import signed_in, visible_text
from timebank.db import Database
from timebank.members import service
from timebank.models import Member, Role, User


def member_path(org: ApiOrg, member_id: int, suffix: str = "") -> str:
    return f"/orgs/{org.slug}/members/{member_id}{suffix}"


class TestMembersList:
    async def test_lists_members_with_balances_and_finds_by_part_of_a_name(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        staff = await signed_in(app, db, org.staff)
        everyone = visible_text((await staff.get(f"/orgs/{org.slug}/members")).text)
        assert "Member Self" in everyone and "Member Other" in everyone and "0 hours" in everyone
        found = visible_text((await staff.get(f"/orgs/{org.slug}/members?q=othe")).text)
        assert "Member Other" in found and "Member Self" not in found
        assert "1 member found" in found

    async def test_pages_through_many_members(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        for number in range(30):
            await service.create_member(db, org.id, display_name=f"Zed {number:02d}", changed_by=None)
        staff = await signed_in(app, db, org.staff)
        first = visible_text((await staff.get(f"/orgs/{org.slug}/members")).text)
        second = visible_text((await staff.get(f"/orgs/{org.slug}/members?page_number=2")).text)
        # By name: the four people of the organisation, then Zed 00 to Zed 20 on the first page.
        assert "34 members" in first and "Zed 20" in first and "Zed 21" not in first and "Zed 21" in second

    async def test_another_organisations_member_is_not_found(self, app: Litestar, db: Database) -> None:
        org, elsewhere = await make_api_org(db), await make_api_org(db)
        staff = await signed_in(app, db, org.staff)
        for suffix in ("", "/edit", "/statement", "/password", "/sign-in"):
            answer = await staff.get(member_path(org, elsewhere.member.member_id, suffix))
            assert answer.status_code == 404, suffix
            assert "Member Self" not in answer.text
        assert (await staff.post(member_path(org, elsewhere.member.member_id, "/deactivate"))).status_code == 404
        assert (await service.get_member(db, elsewhere.id, elsewhere.member.member_id)).is_active is True


class TestRegistering:
    async def test_registers_a_member_with_a_temporary_sign_in(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        staff = await signed_in(app, db, org.staff)
        form = {"display_name": "Dora  Jones", "email": "", "joined_on": "", "username": "Dora.J", "password": PASSWORD}
        answer = await staff.post(f"/orgs/{org.slug}/members/new", form)
        assert answer.status_code == 303
        assert re.search(r"/members/\d+\?notice=registered_with_sign_in$", answer.headers["location"])
        async with db.session() as session:
            user = (await session.exec(select(User).where(User.username == "dora.j"))).one()
        assert user.must_change_password is True
        shown = visible_text((await staff.get(answer.headers["location"])).text)
        assert "Dora Jones" in shown and "dora.j" in shown

    async def test_a_refusal_keeps_what_was_typed_and_names_the_field(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        staff = await signed_in(app, db, org.staff)
        form = {"display_name": "Eve", "email": "eve@", "joined_on": "2026-02-30", "username": org.member.username}
        answer = await staff.post(f"/orgs/{org.slug}/members/new", {**form, "password": "short"})
        assert answer.status_code == 400
        assert 'href="#email"' in answer.text and 'href="#joined_on"' in answer.text
        assert 'value="eve@"' in answer.text and 'value="Eve"' in answer.text
        taken = await staff.post(
            f"/orgs/{org.slug}/members/new",
            {"display_name": "Eve", "username": org.member.username, "password": PASSWORD},
        )
        assert taken.status_code == 400 and "That username is taken" in taken.text

    async def test_without_a_username_the_suggested_password_is_not_used(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        staff = await signed_in(app, db, org.staff)
        answer = await staff.post(
            f"/orgs/{org.slug}/members/new", {"display_name": "Fay", "password": "abcd-efgh-jkmn"}
        )
        assert answer.status_code == 303 and answer.headers["location"].endswith("?notice=registered")


class TestEditing:
    async def test_staff_may_not_edit_a_coordinator(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        staff = await signed_in(app, db, org.staff)
        coordinator = member_path(org, org.coordinator.member_id)
        assert "Edit details" not in (await staff.get(coordinator)).text
        assert (await staff.get(coordinator + "/edit")).status_code == 403
        assert (await staff.post(coordinator + "/edit", {"display_name": "Renamed"})).status_code == 403
        assert (await staff.post(coordinator + "/deactivate")).status_code == 403

    async def test_edits_the_name_and_refuses_an_empty_one(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        staff = await signed_in(app, db, org.staff)
        path = member_path(org, org.other_member.member_id, "/edit")
        refused = await staff.post(path, {"display_name": " ", "email": ""})
        assert refused.status_code == 400 and "Enter the member" in refused.text
        assert (await staff.post(path, {"display_name": "Oliver Other", "email": "o@example.org"})).status_code == 303
        view = await service.get_member(db, org.id, org.other_member.member_id)
        assert (view.display_name, view.email) == ("Oliver Other", "o@example.org")


class TestDeactivating:
    async def test_ends_the_members_open_session_and_can_be_undone(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        staff = await signed_in(app, db, org.staff)
        member = await signed_in(app, db, org.other_member)
        assert (await member.get(f"/orgs/{org.slug}/")).status_code == 200
        answer = await staff.post(member_path(org, org.other_member.member_id, "/deactivate"))
        assert answer.status_code == 303
        signed_out = await member.get(f"/orgs/{org.slug}/")
        assert signed_out.status_code == 303 and signed_out.headers["location"] == "/"
        assert "Deactivated" in (await staff.get(answer.headers["location"])).text
        assert (await staff.post(member_path(org, org.other_member.member_id, "/reactivate"))).status_code == 303
        assert (await service.get_member(db, org.id, org.other_member.member_id)).is_active is True

    async def test_one_who_belongs_elsewhere_stays_signed_in_there(self, app: Litestar, db: Database) -> None:
        org, elsewhere = await make_api_org(db), await make_api_org(db)
        also_there = await service.create_member(db, elsewhere.id, display_name="Also there", changed_by=None)
        async with db.session() as session:
            await session.exec(
                update(Member).where(Member.id == also_there.member.id).values(user_id=org.other_member.user_id)  # type: ignore[arg-type]
            )
            await session.commit()
        member = await signed_in(app, db, org.other_member)
        staff = await signed_in(app, db, org.staff)
        assert (await staff.post(member_path(org, org.other_member.member_id, "/deactivate"))).status_code == 303
        assert (await member.get(f"/orgs/{elsewhere.slug}/")).status_code == 200
        assert (await member.get(f"/orgs/{org.slug}/")).status_code == 404


class TestGivingASignIn:
    async def test_a_member_without_one_gets_a_temporary_password(self, app: Litestar, db: Database) -> None:
        org = await make_api_org(db)
        new = await service.create_member(db, org.id, display_name="Gus", changed_by=None)
        staff = await signed_in(app, db, org.staff)
        path = member_path(org, new.member.id or 0, "/sign-in")
        assert (await staff.post(path, {"username": "gus-" + org.slug, "password": "short"})).status_code == 400
        assert (await staff.post(path, {"username": "gus-" + org.slug, "password": PASSWORD})).status_code == 303
        async with db.session() as session:
            user = (await session.exec(select(User).where(User.username == "gus-" + org.slug))).one()
        assert user.must_change_password is True
        again = await staff.post(path, {"username": "gus2-" + org.slug, "password": PASSWORD})
        assert again.status_code == 400 and "already sign in" in again.text


class TestResettingAPassword:
    async def test_a_plain_member_gets_a_temporary_password_and_is_signed_out(
        self, app: Litestar, db: Database
    ) -> None:
        org = await make_api_org(db)
        staff = await signed_in(app, db, org.staff)
        member = await signed_in(app, db, org.other_member)
        path = member_path(org, org.other_member.member_id, "/password")
        form = (await staff.get(path)).text
        suggested = re.search(r'name="password"[^>]*value="([a-z0-9-]+)"', form)
        assert suggested and len(suggested.group(1)) == 14
        assert (await staff.post(path, {"password": "short"})).status_code == 400
        assert (await staff.post(path, {"password": suggested.group(1)})).status_code == 303
        assert (await member.get(f"/orgs/{org.slug}/")).status_code == 303
        async with db.session() as session:
            user = await session.get(User, org.other_member.user_id)
        assert user is not None and user.must_change_password is True

    @pytest.mark.parametrize("who", ["staff", "coordinator", "site_admin", "member_elsewhere", "no_sign_in"])
    async def test_refused_for_anyone_but_a_plain_member_of_this_organisation_alone(
        self, app: Litestar, db: Database, who: str
    ) -> None:
        org = await make_api_org(db)
        if who in ("staff", "coordinator"):
            target = (await add_person(db, org.org, Role(who))).member_id
        elif who == "no_sign_in":
            target = (await service.create_member(db, org.id, display_name="Hal", changed_by=None)).member.id or 0
        else:
            target = (await add_person(db, org.org, Role.MEMBER)).member_id
            if who == "site_admin":
                async with db.session() as session:
                    user_id = (await session.get(Member, target)).user_id  # type: ignore[union-attr]
                    await session.exec(update(User).where(User.id == user_id).values(is_site_admin=True))  # type: ignore[arg-type]
                    await session.commit()
            else:
                elsewhere = await make_api_org(db)
                async with db.session() as session:
                    user_id = (await session.get(Member, target)).user_id  # type: ignore[union-attr]
                other = await service.create_member(db, elsewhere.id, display_name="Also there", changed_by=None)
                async with db.session() as session:
                    await session.exec(update(Member).where(Member.id == other.member.id).values(user_id=user_id))  # type: ignore[arg-type]
                    await session.commit()
        coordinator = await signed_in(app, db, org.coordinator)
        path = member_path(org, target, "/password")
        assert "Reset their password" not in (await coordinator.get(member_path(org, target))).text
        assert (await coordinator.get(path)).status_code == 403
        assert (await coordinator.post(path, {"password": PASSWORD})).status_code == 403
        assert await service.password_reset_refusal(db, org.id, target) is not None

    async def test_a_site_admin_who_is_a_plain_member_is_refused_by_the_service(self, db: Database) -> None:
        org = await make_api_org(db)
        admin = await add_site_admin(db)
        new = await service.create_member(db, org.id, display_name="Admin as member", changed_by=None)
        async with db.session() as session:
            await session.exec(update(Member).where(Member.id == new.member.id).values(user_id=admin.user_id))  # type: ignore[arg-type]
            await session.commit()
        with pytest.raises(service.errors.NotAllowed):
            await service.reset_member_password(
                db, org.id, new.member.id or 0, editor_role=Role.COORDINATOR, password=PASSWORD, changed_by=None
            )
