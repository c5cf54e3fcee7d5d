""" "Settings" (coordinators): the organisation's name, time zone, minimum balance, categories
and the hourly value used for social value in reports.

Every change is a form, then a check step that says what it will affect (who is already
below a tighter minimum, what today's date becomes, how many entries use a category), then
the save, through the same services the API uses (orgs/service.py, reports/rates.py).
One route per step serves every setting: ``/settings/{change}``, where a POST without
``confirmed`` checks and one with it saves.
"""

import datetime as dt
import decimal
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from litestar import get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, FromQuery
from litestar.response import Redirect, Template
from pydantic import BaseModel

from timebank import ledger
from timebank.api.dependencies import DatabaseDep
from timebank.db import Database
from timebank.ledger import errors
from timebank.orgs import service
from timebank.reports import rates
from timebank.web.context import PageContext, PageContextDep
from timebank.web.responses import page, see_other

CHANGES = (
    "name",
    "timezone",
    "minimum-balance",
    "hourly-value",
    "add-category",
    "rename-category",
    "retire-category",
    "restore-category",
)
# Retiring and restoring have nothing to type: their first step is the check.
NOTHING_TO_TYPE = ("retire-category", "restore-category")
CHANGES_TO_A_CATEGORY = ("rename-category", "retire-category", "restore-category")
DEFAULT_CURRENCY = "GBP"


class SettingForm(BaseModel):
    value: str = ""
    basis: str = ""
    category: str = ""
    confirmed: str = ""


def _settings_path(ctx: PageContext, suffix: str = "") -> str:
    return f"/orgs/{ctx.slug}/settings{suffix}"


def _change_asked(change: str) -> str:
    if change not in CHANGES:
        raise NotFoundException("no such setting")
    return change


async def _current(db: Database, ctx: PageContext) -> dict[str, Any]:
    details = await service.get_organisation_details(db, ctx.organisation_id)
    history = await rates.rate_history(db, ctx.organisation_id)
    return {"organisation": details.organisation, "rate": history[0] if history else None}


@get("/settings", name="settings")
async def settings_page(ctx: PageContextDep, db: DatabaseDep, notice: FromQuery[str | None] = None) -> Template:
    ctx.require_coordinator()
    return page(
        "pages/settings.html",
        ctx=ctx,
        categories=await service.list_categories(db, ctx.organisation_id),
        notice=notice if notice in CHANGES else None,
        **await _current(db, ctx),
    )


async def _category(db: Database, ctx: PageContext, form: SettingForm) -> service.CategoryInUse:
    try:
        return await service.get_category(db, ctx.organisation_id, int(form.category))
    except (ValueError, errors.NotFound):
        raise NotFoundException("no such category") from None


def _minimum_typed(text: str) -> int:
    """ "20" (hours below zero) -> -1200 minutes; a minus sign typed or not, it is below zero."""
    minutes = ledger.hours_to_minutes(text.strip().lstrip("-").strip())
    return -minutes


def _pence_typed(text: str) -> int:
    try:
        return rates.pence_from_text(text.strip().lstrip("£").strip())
    except decimal.InvalidOperation:
        raise errors.InvalidEntry("not an amount") from None


async def _checked(db: Database, ctx: PageContext, change: str, form: SettingForm) -> tuple[dict[str, Any], str | None]:
    """What the change would do, for the check step, or the kind of its problem."""
    current = await _current(db, ctx)
    organisation = current["organisation"]
    value = " ".join(form.value.split())
    try:
        match change:
            case "name":
                if not value:
                    return {}, "no_name"
                if len(value) > 200:
                    return {}, "name_too_long"
                return {"before": organisation.name, "after": value}, None
            case "timezone":
                if not value:
                    return {}, "no_timezone"
                service.check_timezone(value)
                now = dt.datetime.now(dt.UTC)
                return {
                    "before": organisation.timezone,
                    "after": value,
                    "today_before": now.astimezone(ZoneInfo(organisation.timezone)).date(),
                    "today_after": now.astimezone(ZoneInfo(value)).date(),
                }, None
            case "minimum-balance":
                if not value:
                    return {}, "no_minimum"
                minimum = _minimum_typed(value)
                if minimum < service.LOWEST_MIN_BALANCE:
                    return {}, "minimum_too_low"
                return {
                    "before": organisation.min_balance_minutes,
                    "after": minimum,
                    "below": await service.members_below(db, ctx.organisation_id, minimum)
                    if minimum > organisation.min_balance_minutes
                    else [],
                }, None
            case "hourly-value":
                if not value:
                    return {}, "no_amount"
                pence = _pence_typed(value)
                if not " ".join(form.basis.split()):
                    return {}, "no_basis"
                return {"before": current["rate"], "after": pence}, None
            case "add-category" | "rename-category":
                category = await _category(db, ctx, form) if change == "rename-category" else None
                checked = service.check_category_name(value)
                await service.check_category_name_free(
                    db, ctx.organisation_id, checked, except_id=category and category.id
                )
                return {"category": category, "after": checked}, None
            case _:
                return {"category": await _category(db, ctx, form)}, None
    except errors.LedgerError as refusal:
        return {"name": refusal.extra.get("name", "")}, str(refusal.extra.get("reason", f"bad_{change}"))


async def _save(db: Database, ctx: PageContext, change: str, form: SettingForm, effect: dict[str, Any]) -> None:
    match change:
        case "name":
            await service.update_organisation(
                db, ctx.organisation_id, name=effect["after"], changed_by=ctx.user.user_id
            )
        case "timezone":
            await service.update_organisation(
                db, ctx.organisation_id, timezone=effect["after"], changed_by=ctx.user.user_id
            )
        case "minimum-balance":
            await service.update_organisation(
                db, ctx.organisation_id, min_balance_minutes=effect["after"], changed_by=ctx.user.user_id
            )
        case "hourly-value":
            before = effect["before"]
            await rates.set_hourly_rate(
                db,
                ctx.organisation_id,
                amount_pence=effect["after"],
                currency=before.currency if before else DEFAULT_CURRENCY,
                basis=form.basis,
                set_by=ctx.user.user_id,
            )
        case "add-category":
            await service.add_category(db, ctx.organisation_id, effect["after"], changed_by=ctx.user.user_id)
        case "rename-category":
            await service.rename_category(
                db, ctx.organisation_id, effect["category"].id, effect["after"], changed_by=ctx.user.user_id
            )
        case "retire-category" | "restore-category":
            await service.set_category_active(
                db,
                ctx.organisation_id,
                effect["category"].id,
                change == "restore-category",
                changed_by=ctx.user.user_id,
            )


def _form_page(
    ctx: PageContext, change: str, form: SettingForm, extra: dict[str, Any], problem: str | None = None
) -> Template:
    return page(
        "pages/settings_change.html",
        ctx=ctx,
        status_code=400 if problem else 200,
        change=change,
        form=form,
        problem=problem,
        **extra,
    )


@get("/settings/{change:str}", name="settings-change")
async def change_form(
    ctx: PageContextDep, db: DatabaseDep, change: FromPath[str], category: FromQuery[str | None] = None
) -> Template:
    ctx.require_coordinator()
    change = _change_asked(change)
    current = await _current(db, ctx)
    organisation, rate = current["organisation"], current["rate"]
    form = SettingForm(category=category or "")
    chosen = await _category(db, ctx, form) if change in CHANGES_TO_A_CATEGORY else None
    if change in NOTHING_TO_TYPE:
        effect, _ = await _checked(db, ctx, change, form)
        return page("pages/settings_check.html", ctx=ctx, change=change, form=form, effect=effect)
    form.value = {
        "name": organisation.name,
        "timezone": organisation.timezone,
        "minimum-balance": ledger.minutes_to_hours(-organisation.min_balance_minutes).removesuffix(".00"),
        "hourly-value": f"{rate.amount_pence / 100:.2f}" if rate else "",
        "rename-category": chosen.name if chosen else "",
    }.get(change, "")
    form.basis = rate.basis if rate and change == "hourly-value" else ""
    return _form_page(ctx, change, form, {"chosen": chosen})


@post("/settings/{change:str}", name="settings-change-post")
async def change(
    ctx: PageContextDep,
    db: DatabaseDep,
    change: FromPath[str],
    data: Annotated[SettingForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Template | Redirect:
    ctx.require_coordinator()
    change = _change_asked(change)
    if data.confirmed == "no":  # "Change it" on the check step: the form again, as typed
        chosen = await _category(db, ctx, data) if change in CHANGES_TO_A_CATEGORY else None
        return _form_page(ctx, change, data.model_copy(update={"confirmed": ""}), {"chosen": chosen})
    effect, problem = await _checked(db, ctx, change, data)
    if problem:
        chosen = await _category(db, ctx, data) if change in CHANGES_TO_A_CATEGORY else None
        return _form_page(ctx, change, data, {"chosen": chosen, "taken_name": effect.get("name", "")}, problem)
    if data.confirmed != "yes":
        return page("pages/settings_check.html", ctx=ctx, change=change, form=data, effect=effect)
    await _save(db, ctx, change, data, effect)
    return see_other(_settings_path(ctx, f"?notice={change}"))


ROUTES = [settings_page, change_form, change]
