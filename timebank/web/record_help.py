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

from timebank import ledger
from timebank.api.dependencies import DatabaseDep
from timebank.db import Database
from timebank.ledger import errors
from timebank.ledger.posting import check_idempotency_key
from timebank.ledger.reading import account_labels
from timebank.orgs.service import get_organisation_details
from timebank.web.context import PageContext, PageContextDep
from timebank.web.entry_form import EntryForm, check_when_what, minutes_typed, person_problem
from timebank.web.ledger_refusals import ledger_problem
from timebank.web.people import PersonField, resolve_person
from timebank.web.responses import new_form_key, page, see_other

FIELDS = {"amount": "hours", "date": "occurred_on-day", "giver": "giver", "category": "category"}


class RecordHelpForm(EntryForm):
    change: str = ""  # "Change" on the check page: back to the form as typed


Form = Annotated[RecordHelpForm, Body(media_type=RequestEncodingType.URL_ENCODED)]


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
    problems = [person_problem("giver", giver)] if giver.is_error else []
    minutes, problem = minutes_typed(form.hours, form.minutes)
    problems += [problem] if problem else []
    occurred_on, when_problems = await check_when_what(db, ctx, form)
    problems += when_problems
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
