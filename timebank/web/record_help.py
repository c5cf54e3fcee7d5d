""" "Record help I received": a member records help someone gave them, paid from their own account.

The form, then "check your answers" with the balance after, then the posting through
``ledger.post_exchange`` exactly as the API posts it for a member (the receiver is their
own account), with the form's own idempotency key: a double click or a resubmission posts
once. Every successful POST redirects (post/redirect/get) to the "done" page.
"""

import datetime as dt
from typing import Annotated, Any

from litestar import get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath
from litestar.response import Response, Template
from pydantic import BaseModel, ConfigDict, Field

from timebank import ledger
from timebank.api.dependencies import DatabaseDep
from timebank.db import Database
from timebank.ledger import errors
from timebank.ledger.posting import MAX_DESCRIPTION, check_idempotency_key
from timebank.ledger.reading import account_labels
from timebank.orgs.service import get_organisation_details
from timebank.web.context import PageContext, PageContextDep
from timebank.web.ledger_refusals import ledger_problem
from timebank.web.people import PersonField, resolve_person
from timebank.web.responses import new_form_key, page, see_other

FIELDS = {"amount": "hours", "date": "occurred_on-day", "giver": "giver", "category": "category"}


class RecordHelpForm(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    idempotency_key: str = ""
    giver: str = ""
    giver_account_id: str = ""
    giver_choosing: str = ""
    hours: str = ""
    minutes: str = ""
    day: str = Field("", alias="occurred_on-day")
    month: str = Field("", alias="occurred_on-month")
    year: str = Field("", alias="occurred_on-year")
    category: str = ""
    description: str = ""
    change: str = ""


Form = Annotated[RecordHelpForm, Body(media_type=RequestEncodingType.URL_ENCODED)]


def _whole_number(text: str) -> int | None:
    text = text.strip()
    if not text:
        return 0
    return int(text) if text.isdigit() and len(text) <= 6 else None


def minutes_typed(form: RecordHelpForm) -> tuple[int | None, dict[str, Any] | None]:
    """The hours and minutes fields as minutes, or the problem to show (shared by the staff pages)."""
    hours, minutes = _whole_number(form.hours), _whole_number(form.minutes)
    if hours is None:
        return None, {"kind": "hours_not_number", "field": "amount", "href": "#hours"}
    if minutes is None:
        return None, {"kind": "minutes_not_number", "field": "amount", "href": "#minutes"}
    if minutes > 59:
        return None, {"kind": "minutes_too_many", "field": "amount", "href": "#minutes"}
    if hours * 60 + minutes == 0:
        return None, {"kind": "no_time", "field": "amount", "href": "#hours"}
    return hours * 60 + minutes, None


def date_typed(form: RecordHelpForm) -> tuple[dt.date | None, dict[str, Any] | None]:
    """The day, month and year fields as a date, or the problem to show (shared by the staff pages)."""
    parts = (form.day.strip(), form.month.strip(), form.year.strip())
    if not any(parts):
        return None, {"kind": "no_date", "field": "date", "href": "#occurred_on-day"}
    try:
        day, month, year = (int(part) for part in parts)
        return dt.date(year, month, day), None
    except ValueError:
        return None, {"kind": "date_not_real", "field": "date", "href": "#occurred_on-day"}


async def _form_page(
    db: Database,
    ctx: PageContext,
    form: RecordHelpForm,
    giver: PersonField | None,
    problems: list[dict[str, Any]],
    status_code: int = 200,
) -> Template:
    details = await get_organisation_details(db, ctx.organisation_id)
    return page(
        "pages/record_help.html",
        ctx=ctx,
        status_code=status_code,
        form=form,
        giver=giver,
        problems=problems,
        categories=details.categories,
    )


@get("/record-help", name="record-help")
async def record_help_form(ctx: PageContextDep, db: DatabaseDep) -> Template:
    today = ctx.today()
    form = RecordHelpForm(
        idempotency_key=new_form_key(), day=str(today.day), month=str(today.month), year=str(today.year)
    )
    return await _form_page(db, ctx, form, None, [])


async def _checked(
    db: Database, ctx: PageContext, form: RecordHelpForm
) -> tuple[PersonField, int | None, dt.date | None, list[dict[str, Any]]]:
    """The form's answers and what is wrong with them (before the ledger sees them)."""
    giver = await resolve_person(
        db, ctx, typed=form.giver, account_id=form.giver_account_id, choosing=bool(form.giver_choosing)
    )
    problems = []
    if giver.is_error:
        problems.append({"kind": f"giver_{giver.problem}", "field": "giver", "href": "#giver", "typed": giver.typed})
    minutes, problem = minutes_typed(form)
    problems += [problem] if problem else []
    occurred_on, problem = date_typed(form)
    problems += [problem] if problem else []
    categories = (await get_organisation_details(db, ctx.organisation_id)).categories
    if categories and form.category not in categories:
        problems.append({"kind": "no_category", "field": "category", "href": "#category"})
    if not form.description.strip():
        problems.append({"kind": "no_description", "field": "description", "href": "#description"})
    elif len(form.description.strip()) > MAX_DESCRIPTION:
        problems.append(
            {"kind": "description_too_long", "field": "description", "href": "#description", "limit": MAX_DESCRIPTION}
        )
    return giver, minutes, occurred_on, problems


@post("/record-help", name="record-help-check")
async def record_help_check(ctx: PageContextDep, db: DatabaseDep, data: Form) -> Template:
    """The answers: back to the form (a problem, a person to choose, or "Change"), or "Check your answers"."""
    giver, minutes, occurred_on, problems = await _checked(db, ctx, data)
    if data.change:
        return await _form_page(db, ctx, data, giver, [])
    if problems:
        return await _form_page(db, ctx, data, giver, problems, status_code=400)
    if not giver.is_resolved:
        # Several people matched (choose one), or "Someone else" was picked: not a mistake.
        return await _form_page(db, ctx, data, giver, [])
    assert minutes is not None and occurred_on is not None and giver.chosen is not None
    balance = await ledger.current_balance(db, ctx.organisation_id, ctx.account_id)
    return page(
        "pages/record_help_check.html",
        ctx=ctx,
        form=data,
        giver=giver.chosen,
        minutes=minutes,
        occurred_on=occurred_on,
        balance_after=balance - minutes,
    )


@post("/record-help/confirm", name="record-help-confirm")
async def record_help_confirm(ctx: PageContextDep, db: DatabaseDep, data: Form) -> Response:
    giver, minutes, occurred_on, problems = await _checked(db, ctx, data)
    if problems or not giver.is_resolved:
        return await _form_page(db, ctx, data, giver, problems, status_code=400 if problems else 200)
    assert minutes is not None and occurred_on is not None and giver.chosen is not None
    try:
        posted = await ledger.post_exchange(
            db,
            ctx.organisation_id,
            giver_account_id=giver.chosen.account_id,
            receiver_account_id=ctx.account_id,
            minutes=minutes,
            occurred_on=occurred_on,
            description=data.description.strip(),
            category=data.category or None,
            recorded_by=ctx.user.user_id,
            idempotency_key=check_idempotency_key(data.idempotency_key),
        )
    except errors.LedgerError as refusal:
        problem = ledger_problem(refusal, FIELDS)
        if problem["kind"] == "already_recorded":
            data = data.model_copy(update={"idempotency_key": new_form_key()})
        return await _form_page(db, ctx, data, giver, [problem], status_code=refusal.status_code)
    return see_other(f"/orgs/{ctx.slug}/record-help/done/{posted.id}")


@get("/record-help/done/{transaction_id:int}", name="record-help-done")
async def record_help_done(ctx: PageContextDep, db: DatabaseDep, transaction_id: FromPath[int]) -> Template:
    try:
        posted = await ledger.get_transaction(db, ctx.organisation_id, transaction_id)
    except errors.TransactionNotFound:
        raise NotFoundException("no such entry") from None
    mine = [p for p in posted.postings if p.account_id == ctx.account_id and p.minutes < 0]
    if not mine:
        # Only the receiver sees this page: anyone else, whatever id they type, gets not-found.
        raise NotFoundException("no such entry")
    givers = [p.account_id for p in posted.postings if p.minutes > 0]
    labels = await account_labels(db, ctx.organisation_id, givers)
    balance = await ledger.current_balance(db, ctx.organisation_id, ctx.account_id)
    return page(
        "pages/record_help_done.html",
        ctx=ctx,
        posted=posted,
        minutes=-mine[0].minutes,
        giver_names=[labels[g] for g in givers],
        balance_minutes=balance,
    )


ROUTES = [record_help_form, record_help_check, record_help_confirm, record_help_done]
