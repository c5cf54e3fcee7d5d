"""Staff pages for members: the list, a member's page, registering, editing, deactivating,
giving a sign-in and resetting a password. Every rule is the member service's
(timebank/members/service.py), the same the API applies."""

import datetime as dt
import math
import secrets
from typing import Annotated

from litestar import get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery, QueryParameter
from litestar.response import Redirect, Template
from pydantic import BaseModel, EmailStr, TypeAdapter, ValidationError

from timebank import ledger
from timebank.api.dependencies import DatabaseDep
from timebank.ledger import errors
from timebank.members import service
from timebank.models import Role
from timebank.web.context import PageContext, PageContextDep
from timebank.web.responses import page, see_other
from timebank.web.statement import statement_page

Form = Body(media_type=RequestEncodingType.URL_ENCODED)
PAGE_SIZE = 25
MAX_PAGE = 40_000  # a million members: far beyond any day centre, and far from any overflow
RECENT_DAYS = 92
RECENT_ENTRIES = 10
# No 0/o, 1/l/i: the temporary password is read out or written on paper.
_PASSWORD_LETTERS = "abcdefghjkmnpqrstuvwxyz23456789"
_EMAIL = TypeAdapter(EmailStr)


def suggested_password() -> str:
    """A temporary password easy to hand over in person: "kfmt-wrpz-hnqa" (about 59 bits)."""
    return "-".join("".join(secrets.choice(_PASSWORD_LETTERS) for _ in range(4)) for _ in range(3))


def _members_path(ctx: PageContext, suffix: str = "") -> str:
    return f"/orgs/{ctx.slug}/members{suffix}"


def _email_problem(email: str) -> str | None:
    if not email:
        return None
    try:
        _EMAIL.validate_python(email)
    except ValidationError:
        return "bad_email"
    return None


def _field_of(error: errors.LedgerError, default: str) -> str:
    return str(error.extra.get("field", default))


class RegisterForm(BaseModel):
    display_name: str = ""
    email: str = ""
    joined_on: str = ""
    username: str = ""
    password: str = ""


class EditForm(BaseModel):
    display_name: str = ""
    email: str = ""


class SignInForm(BaseModel):
    username: str = ""
    password: str = ""


class PasswordForm(BaseModel):
    password: str = ""


def _refused(template: str, ctx: PageContext, problems: dict[str, str], **values: object) -> Template:
    """The form again with what was typed, an error summary, and each field's own message."""
    return page(template, ctx=ctx, status_code=400, problems=problems, **values)


@get("/members", name="members")
async def members_list(
    ctx: PageContextDep, db: DatabaseDep, q: FromQuery[str | None] = None, page_number: FromQuery[int] = 1
) -> Template:
    ctx.require_staff()
    search = (q or "").strip()[:200]
    page_number = min(max(page_number, 1), MAX_PAGE)
    views, total = await service.list_members(
        db,
        ctx.organisation_id,
        search=search or None,
        active=None,
        limit=PAGE_SIZE,
        offset=(page_number - 1) * PAGE_SIZE,
    )
    return page(
        "pages/members.html",
        ctx=ctx,
        members=views,
        total=total,
        search=search,
        page_number=page_number,
        pages=max(math.ceil(total / PAGE_SIZE), 1),
    )


@get("/members/new", name="register-member")
async def register_form(ctx: PageContextDep) -> Template:
    ctx.require_staff()
    form = RegisterForm(joined_on=ctx.today().isoformat(), password=suggested_password())
    return page("pages/register_member.html", ctx=ctx, form=form, problems={})


@post("/members/new", name="register-member-post")
async def register(ctx: PageContextDep, db: DatabaseDep, data: Annotated[RegisterForm, Form]) -> Template | Redirect:
    service.check_may_register(ctx.role, Role.MEMBER)
    problems: dict[str, str] = {}
    if not data.display_name.strip():
        problems["display_name"] = "no_name"
    if problem := _email_problem(data.email.strip()):
        problems["email"] = problem
    joined_on = None
    try:
        joined_on = dt.date.fromisoformat(data.joined_on.strip()) if data.joined_on.strip() else ctx.today()
        if joined_on > ctx.today():
            problems["joined_on"] = "joined_in_future"
    except ValueError:
        problems["joined_on"] = "bad_date"
    username = data.username.strip()
    # The form suggests a temporary password: without a username it is not used.
    if username and not data.password:
        problems["password"] = "no_password"
    if problems:
        return _refused("pages/register_member.html", ctx, problems, form=data)
    try:
        new = await service.create_member(
            db,
            ctx.organisation_id,
            display_name=data.display_name,
            email=data.email.strip() or None,
            joined_on=joined_on,
            username=username or None,
            password=data.password if username else None,
            temporary_password=True,
            changed_by=ctx.user.user_id,
        )
    except (errors.InvalidEntry, errors.LedgerConflict) as refused:
        field = _field_of(refused, "display_name")
        kind = {"username": "username_taken" if isinstance(refused, errors.LedgerConflict) else "bad_username"}
        return _refused(
            "pages/register_member.html",
            ctx,
            {field: kind.get(field, "password_too_short" if field == "password" else "bad_name")},
            form=data,
        )
    notice = "registered_with_sign_in" if username else "registered"
    return see_other(_members_path(ctx, f"/{new.member.id}?notice={notice}"))


@get("/members/{member_id:int}", name="member")
async def member_page(
    ctx: PageContextDep, db: DatabaseDep, member_id: FromPath[int], notice: FromQuery[str | None] = None
) -> Template:
    require_staff_or_not_found(ctx)
    member = await service.get_member(db, ctx.organisation_id, member_id)
    today = ctx.today()
    recent = await ledger.statement(
        db, ctx.organisation_id, member.account_id, today - dt.timedelta(days=RECENT_DAYS), today
    )
    may_edit = _may_edit(ctx, member.role)
    return page(
        "pages/member.html",
        ctx=ctx,
        member=member,
        entries=list(reversed(recent.entries))[:RECENT_ENTRIES],
        notice=notice,
        may_edit=may_edit,
        reset_refusal=await service.password_reset_refusal(db, ctx.organisation_id, member_id) if may_edit else "",
    )


@get("/members/{member_id:int}/statement", name="member-statement")
async def member_statement(
    ctx: PageContextDep,
    db: DatabaseDep,
    member_id: FromPath[int],
    month: Annotated[str | None, QueryParameter(max_length=7)] = None,
    start: Annotated[str | None, QueryParameter(name="from", max_length=10)] = None,
    end: Annotated[str | None, QueryParameter(name="to", max_length=10)] = None,
    after: Annotated[str | None, QueryParameter(max_length=100)] = None,
) -> Template:
    require_staff_or_not_found(ctx)
    member = await service.get_member(db, ctx.organisation_id, member_id)
    return await statement_page(
        db,
        ctx,
        account_id=member.account_id,
        base_path=_members_path(ctx, f"/{member_id}/statement"),
        account_name=member.display_name,
        month=month,
        start=start,
        end=end,
        after=after,
    )


def require_staff_or_not_found(ctx: PageContext) -> None:
    """A member who types the address of someone's page gets not-found, as for any page
    that is not theirs (the issue: "another member's page ... gets a not-found page")."""
    if not ctx.is_staff:
        raise NotFoundException("no such page")


def _may_edit(ctx: PageContext, member_role: Role) -> bool:
    try:
        service.check_may_edit(ctx.role, member_role)
    except errors.NotAllowed:
        return False
    return True


async def _editable(ctx: PageContext, db: DatabaseDep, member_id: int) -> service.MemberView:
    """The member, if the signed-in person may edit them (the service's rule, else not-allowed)."""
    require_staff_or_not_found(ctx)
    member = await service.get_member(db, ctx.organisation_id, member_id)
    service.check_may_edit(ctx.role, member.role)
    return member


@get("/members/{member_id:int}/edit", name="edit-member")
async def edit_form(ctx: PageContextDep, db: DatabaseDep, member_id: FromPath[int]) -> Template:
    member = await _editable(ctx, db, member_id)
    form = EditForm(display_name=member.display_name, email=member.email or "")
    return page("pages/edit_member.html", ctx=ctx, member=member, form=form, problems={})


@post("/members/{member_id:int}/edit", name="edit-member-post")
async def edit(
    ctx: PageContextDep, db: DatabaseDep, member_id: FromPath[int], data: Annotated[EditForm, Form]
) -> Template | Redirect:
    member = await _editable(ctx, db, member_id)
    problems: dict[str, str] = {}
    if not data.display_name.strip():
        problems["display_name"] = "no_name"
    elif len(" ".join(data.display_name.split())) > service.MAX_DISPLAY_NAME:
        problems["display_name"] = "bad_name"
    if problem := _email_problem(data.email.strip()):
        problems["email"] = problem
    if problems:
        return _refused("pages/edit_member.html", ctx, problems, member=member, form=data)
    # An empty email is kept as it was: the service has no way to clear one yet.
    await service.update_member(
        db,
        ctx.organisation_id,
        member_id,
        display_name=data.display_name,
        email=data.email.strip() or None,
        changed_by=ctx.user.user_id,
    )
    return see_other(_members_path(ctx, f"/{member_id}?notice=edited"))


async def _set_active(ctx: PageContext, db: DatabaseDep, member_id: int, active: bool) -> Redirect:
    await _editable(ctx, db, member_id)
    await service.update_member(db, ctx.organisation_id, member_id, is_active=active, changed_by=ctx.user.user_id)
    return see_other(_members_path(ctx, f"/{member_id}?notice={'reactivated' if active else 'deactivated'}"))


@post("/members/{member_id:int}/deactivate", name="deactivate-member")
async def deactivate(ctx: PageContextDep, db: DatabaseDep, member_id: FromPath[int]) -> Redirect:
    return await _set_active(ctx, db, member_id, False)


@post("/members/{member_id:int}/reactivate", name="reactivate-member")
async def reactivate(ctx: PageContextDep, db: DatabaseDep, member_id: FromPath[int]) -> Redirect:
    return await _set_active(ctx, db, member_id, True)


@get("/members/{member_id:int}/sign-in", name="give-sign-in")
async def sign_in_form(ctx: PageContextDep, db: DatabaseDep, member_id: FromPath[int]) -> Template:
    member = await _editable(ctx, db, member_id)
    form = SignInForm(password=suggested_password())
    return page("pages/give_sign_in.html", ctx=ctx, member=member, form=form, problems={})


@post("/members/{member_id:int}/sign-in", name="give-sign-in-post")
async def give_sign_in(
    ctx: PageContextDep, db: DatabaseDep, member_id: FromPath[int], data: Annotated[SignInForm, Form]
) -> Template | Redirect:
    member = await _editable(ctx, db, member_id)
    problems: dict[str, str] = {}
    if not data.username.strip():
        problems["username"] = "no_username"
    if not data.password:
        problems["password"] = "no_password"
    if not problems:
        try:
            await service.give_sign_in(
                db,
                ctx.organisation_id,
                member_id,
                editor_role=ctx.role,
                username=data.username,
                password=data.password,
                changed_by=ctx.user.user_id,
            )
            return see_other(_members_path(ctx, f"/{member_id}?notice=sign_in_given"))
        except (errors.InvalidEntry, errors.LedgerConflict) as refused:
            field = _field_of(refused, "username")
            if refused.extra.get("reason") == "has_sign_in":
                problems["username"] = "has_sign_in"
            elif field == "password":
                problems["password"] = "password_too_short"
            elif isinstance(refused, errors.LedgerConflict) and field == "username":
                problems["username"] = "username_taken"
            else:
                problems["username"] = "bad_username"
    return _refused("pages/give_sign_in.html", ctx, problems, member=member, form=data)


@get("/members/{member_id:int}/password", name="reset-password")
async def reset_password_form(ctx: PageContextDep, db: DatabaseDep, member_id: FromPath[int]) -> Template:
    member = await _editable(ctx, db, member_id)
    refusal = await service.password_reset_refusal(db, ctx.organisation_id, member_id)
    if refusal is not None:
        raise errors.NotAllowed("staff may reset the password of a plain member of this organisation only")
    form = PasswordForm(password=suggested_password())
    return page("pages/reset_password.html", ctx=ctx, member=member, form=form, problems={})


@post("/members/{member_id:int}/password", name="reset-password-post")
async def reset_password(
    ctx: PageContextDep, db: DatabaseDep, member_id: FromPath[int], data: Annotated[PasswordForm, Form]
) -> Template | Redirect:
    member = await _editable(ctx, db, member_id)
    try:
        await service.reset_member_password(
            db,
            ctx.organisation_id,
            member_id,
            editor_role=ctx.role,
            password=data.password,
            changed_by=ctx.user.user_id,
        )
    except errors.InvalidEntry:
        return _refused(
            "pages/reset_password.html",
            ctx,
            {"password": "password_too_short" if data.password else "no_password"},
            member=member,
            form=data,
        )
    return see_other(_members_path(ctx, f"/{member_id}?notice=password_reset"))


ROUTES = [
    members_list,
    register_form,
    register,
    member_page,
    member_statement,
    edit_form,
    edit,
    deactivate,
    reactivate,
    sign_in_form,
    give_sign_in,
    reset_password_form,
    reset_password,
]
