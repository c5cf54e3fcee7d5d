""" "Roles and access" (coordinators): every member's role, whether they are active, their
sign-in and when they last used it; changing a role, deactivating and reactivating, and
clearing a sign-in lockout. The rules are the member service's, as for the API.
"""

import datetime as dt
from typing import Annotated
from zoneinfo import ZoneInfo

from litestar import get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template
from pydantic import BaseModel

from timebank.api.dependencies import DatabaseDep, SettingsDep
from timebank.auth import rate_limit
from timebank.config import Settings
from timebank.db import Database
from timebank.ledger import errors
from timebank.members import service
from timebank.models import Role
from timebank.web.context import PageContext, PageContextDep
from timebank.web.members import require_staff_or_not_found
from timebank.web.responses import page, see_other

Form = Body(media_type=RequestEncodingType.URL_ENCODED)
NOTICES = ("role_changed", "deactivated", "reactivated", "lockout_cleared", "not_locked_out")


class RoleForm(BaseModel):
    role: str = ""


class ActiveForm(BaseModel):
    active: str = ""


def _require_coordinator_about_someone(ctx: PageContext) -> None:
    """A page about one person: not-found for a member (as every page about someone else),
    not-allowed for staff."""
    require_staff_or_not_found(ctx)
    ctx.require_coordinator()


def _access_path(ctx: PageContext, suffix: str = "") -> str:
    return f"/orgs/{ctx.slug}/access{suffix}"


async def _locked_out(db: Database, settings: Settings, usernames: list[str]) -> set[str]:
    return await rate_limit.locked_out_usernames(
        db,
        usernames,
        per_user=settings.sign_in_failures_per_user,
        window=dt.timedelta(minutes=settings.sign_in_window_minutes),
    )


def _local(ctx: PageContext, moment: dt.datetime | None) -> dt.datetime | None:
    return moment.astimezone(ZoneInfo(ctx.timezone)) if moment else None


def _row(ctx: PageContext, person: service.AccessView, locked: set[str]) -> dict[str, object]:
    return {
        "person": person,
        "last_signed_in": _local(ctx, person.last_signed_in_at),
        "locked_out": person.username in locked,
    }


@get("/access", name="access")
async def access_list(ctx: PageContextDep, db: DatabaseDep, settings: SettingsDep) -> Template:
    ctx.require_coordinator()
    people = await service.list_access(db, ctx.organisation_id)
    locked = await _locked_out(db, settings, [p.username for p in people if p.username])
    return page("pages/access.html", ctx=ctx, rows=[_row(ctx, p, locked) for p in people])


async def _person_page(
    db: Database,
    settings: Settings,
    ctx: PageContext,
    member_id: int,
    *,
    notice: str | None = None,
    chosen_role: str | None = None,
    problem: str | None = None,
    status_code: int = 200,
) -> Template:
    _require_coordinator_about_someone(ctx)
    person = next((p for p in await service.list_access(db, ctx.organisation_id) if p.id == member_id), None)
    if person is None:
        raise errors.NotFound(f"no member {member_id} in this organisation")
    locked = await _locked_out(db, settings, [person.username] if person.username else [])
    return page(
        "pages/access_person.html",
        ctx=ctx,
        status_code=status_code,
        row=_row(ctx, person, locked),
        chosen_role=chosen_role or person.role.value,
        roles=[role.value for role in Role],
        notice=notice if notice in NOTICES else None,
        problem=problem,
    )


@get("/access/{member_id:int}", name="access-person")
async def access_person(
    ctx: PageContextDep,
    db: DatabaseDep,
    settings: SettingsDep,
    member_id: FromPath[int],
    notice: FromQuery[str | None] = None,
) -> Template:
    return await _person_page(db, settings, ctx, member_id, notice=notice)


@post("/access/{member_id:int}/role", name="change-role")
async def change_role(
    ctx: PageContextDep,
    db: DatabaseDep,
    settings: SettingsDep,
    member_id: FromPath[int],
    data: Annotated[RoleForm, Form],
) -> Template | Redirect:
    _require_coordinator_about_someone(ctx)
    try:
        role = Role(data.role)
    except ValueError:
        return await _person_page(db, settings, ctx, member_id, problem="no_role", status_code=400)
    current = await service.get_member(db, ctx.organisation_id, member_id)
    service.check_may_edit(ctx.role, current.role, role)
    try:
        await service.update_member(db, ctx.organisation_id, member_id, role=role, changed_by=ctx.user.user_id)
    except errors.LedgerConflict:
        return await _person_page(
            db, settings, ctx, member_id, chosen_role=role.value, problem="last_coordinator", status_code=409
        )
    return see_other(_access_path(ctx, f"/{member_id}?notice=role_changed"))


@post("/access/{member_id:int}/active", name="set-active")
async def set_active(
    ctx: PageContextDep,
    db: DatabaseDep,
    settings: SettingsDep,
    member_id: FromPath[int],
    data: Annotated[ActiveForm, Form],
) -> Template | Redirect:
    _require_coordinator_about_someone(ctx)
    if data.active not in ("yes", "no"):
        return await _person_page(db, settings, ctx, member_id, problem="not_understood", status_code=400)
    active = data.active == "yes"
    try:
        await service.set_member_active(db, ctx.organisation_id, member_id, active, changed_by=ctx.user.user_id)
    except errors.LedgerConflict:
        return await _person_page(db, settings, ctx, member_id, problem="last_coordinator_active", status_code=409)
    return see_other(_access_path(ctx, f"/{member_id}?notice={'reactivated' if active else 'deactivated'}"))


@post("/access/{member_id:int}/lockout", name="clear-lockout")
async def clear_lockout(
    ctx: PageContextDep, db: DatabaseDep, settings: SettingsDep, member_id: FromPath[int]
) -> Template | Redirect:
    _require_coordinator_about_someone(ctx)
    try:
        cleared = await service.clear_sign_in_lockout(
            db, ctx.organisation_id, member_id, editor_role=ctx.role, changed_by=ctx.user.user_id
        )
    except errors.LedgerConflict:
        return await _person_page(db, settings, ctx, member_id, problem="no_sign_in", status_code=409)
    return see_other(_access_path(ctx, f"/{member_id}?notice={'lockout_cleared' if cleared else 'not_locked_out'}"))


ROUTES = [access_list, access_person, change_role, set_active, clear_lockout]
