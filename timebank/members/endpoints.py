"""Members: registered and edited by staff and coordinators; each may read their own record."""

from typing import Annotated

from litestar import Controller, delete, get, patch, post
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter
from litestar.status_codes import HTTP_204_NO_CONTENT

from timebank.api.dependencies import DatabaseDep, OrgContextDep
from timebank.api.schemas import amount, error_responses
from timebank.members.schemas import MemberCreate, MemberPage, MemberPublic, MemberUpdate
from timebank.members.service import (
    MemberView,
    check_may_edit,
    check_may_register,
    clear_sign_in_lockout,
    create_member,
    get_member,
    list_members,
    update_member,
)


def _public(view: MemberView) -> MemberPublic:
    return MemberPublic(
        id=view.id,
        display_name=view.display_name,
        email=view.email,
        role=view.role,
        username=view.username,
        joined_on=view.joined_on,
        is_active=view.is_active,
        account_id=view.account_id,
        balance=amount(view.balance_minutes),
    )


class MemberController(Controller):
    path = "/members"
    tags = ["members"]

    @post(
        "/",
        summary="Register a member (staff, coordinators)",
        description="A member without a username cannot sign in (many never do). "
        "Only a coordinator may give a role other than member.",
        responses=error_responses(400, 401, 403, 404, 409, 503),
    )
    async def create(self, data: JSONBody[MemberCreate], ctx: OrgContextDep, db: DatabaseDep) -> MemberPublic:
        ctx.require_staff()
        check_may_register(ctx.role, data.role)
        new = await create_member(
            db,
            ctx.organisation_id,
            display_name=data.display_name,
            role=data.role,
            username=data.username,
            password=data.password,
            email=data.email,
            joined_on=data.joined_on,
            changed_by=ctx.caller.user_id,
        )
        assert new.member.id is not None
        return _public(await get_member(db, ctx.organisation_id, new.member.id))

    @get(
        "/",
        summary="List members, with balances (staff, coordinators)",
        responses=error_responses(400, 401, 403, 404, 503),
    )
    async def list_all(
        self,
        ctx: OrgContextDep,
        db: DatabaseDep,
        search: Annotated[str | None, QueryParameter(name="q", max_length=200, description="Part of the name.")] = None,
        active: Annotated[bool | None, Parameter(description="Only active (true) or inactive (false) members.")] = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        offset: Annotated[int, Parameter(ge=0, le=1_000_000)] = 0,
    ) -> MemberPage:
        ctx.require_staff()
        views, total = await list_members(
            db, ctx.organisation_id, search=search, active=active, limit=limit, offset=offset
        )
        return MemberPage(items=[_public(v) for v in views], total=total, limit=limit, offset=offset)

    @get(
        "/{member_id:int}",
        summary="A member (the member themself, staff, coordinators)",
        responses=error_responses(401, 403, 404, 503),
    )
    async def get_one(self, member_id: FromPath[int], ctx: OrgContextDep, db: DatabaseDep) -> MemberPublic:
        if member_id != ctx.member_id:
            ctx.require_staff()
        return _public(await get_member(db, ctx.organisation_id, member_id))

    @patch(
        "/{member_id:int}",
        summary="Edit or deactivate a member (staff, coordinators; roles: coordinators)",
        description="Deactivation keeps the account and its history; new exchanges with it are refused. "
        "The last active coordinator cannot be demoted or deactivated.",
        responses=error_responses(400, 401, 403, 404, 409, 503),
    )
    async def update(
        self, member_id: FromPath[int], data: JSONBody[MemberUpdate], ctx: OrgContextDep, db: DatabaseDep
    ) -> MemberPublic:
        ctx.require_staff()
        current = await get_member(db, ctx.organisation_id, member_id)
        check_may_edit(ctx.role, current.role, data.role)
        await update_member(
            db,
            ctx.organisation_id,
            member_id,
            display_name=data.display_name,
            email=data.email,
            role=data.role,
            is_active=data.is_active,
            changed_by=ctx.caller.user_id,
        )
        return _public(await get_member(db, ctx.organisation_id, member_id))

    @delete(
        "/{member_id:int}/sign-in-lockout",
        status_code=HTTP_204_NO_CONTENT,
        summary="Clear a member's sign-in lockout (coordinators)",
        description="Forgives the failed sign-ins counted against the member's username, so they can sign "
        "in at once. The count per address (a centre's shared computers share one) stays: it does not say "
        "whose failures it holds. 409 if the member has no sign-in; 204 whether or not they were locked out.",
        responses=error_responses(401, 403, 404, 409, 503),
    )
    async def clear_lockout(self, member_id: FromPath[int], ctx: OrgContextDep, db: DatabaseDep) -> None:
        await clear_sign_in_lockout(
            db, ctx.organisation_id, member_id, editor_role=ctx.role, changed_by=ctx.caller.user_id
        )
