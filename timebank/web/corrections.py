""" "Report a mistake" (a member, from their statement) and "Corrections" (staff and coordinators).

A member opens the form from an entry of their own statement; any other entry is a
not-found page, as the API answers. The form carries its own idempotency key, so a double
click sends one message; post/redirect/get to a confirmation. Staff see open requests
(oldest first) and answered ones, and answer each once, on the same service as the API
(timebank/corrections/service.py). Coordinators get a "Reverse this exchange" link that
carries the request's id (the reversal page links the two).
"""

from typing import Annotated, Any

from litestar import get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, QueryParameter
from litestar.response import Response, Template
from pydantic import BaseModel

from timebank import ledger
from timebank.api.dependencies import DatabaseDep
from timebank.corrections import service
from timebank.db import Database
from timebank.ledger import PostedTransaction, errors
from timebank.ledger.posting import check_idempotency_key
from timebank.ledger.reading import account_labels
from timebank.ledger.visibility import legs_a_member_sees
from timebank.models import Role
from timebank.web.context import PageContext, PageContextDep
from timebank.web.responses import new_form_key, page, see_other

ANSWERED_SHOWN = 50


class ReportForm(BaseModel):
    idempotency_key: str = ""
    what_is_wrong: str = ""
    what_it_should_be: str = ""


class AnswerForm(BaseModel):
    idempotency_key: str = ""
    answer: str = ""


Report = Annotated[ReportForm, Body(media_type=RequestEncodingType.URL_ENCODED)]
AnswerBody = Annotated[AnswerForm, Body(media_type=RequestEncodingType.URL_ENCODED)]


def _report_path(ctx: PageContext, transaction_id: int) -> str:
    return f"/orgs/{ctx.slug}/statement/entries/{transaction_id}/report"


async def _own_entry(db: Database, ctx: PageContext, transaction_id: int) -> tuple[PostedTransaction, list[str]]:
    """The entry, if it is on the reader's own account, and the names they may see on it."""
    if not await service.entry_is_on_account(db, ctx.organisation_id, transaction_id, ctx.account_id):
        # The same page whether the entry does not exist or is someone else's.
        raise NotFoundException("no such entry on your account")
    posted = await ledger.get_transaction(db, ctx.organisation_id, transaction_id)
    reverses_kind = None
    if posted.reverses_id is not None:
        reverses_kind = (await ledger.get_transaction(db, ctx.organisation_id, posted.reverses_id)).kind
    legs = [(p.account_id, p.minutes) for p in posted.postings]
    seen = legs_a_member_sees(posted.kind, reverses_kind, legs, ctx.account_id)
    others = [account_id for account_id, _ in legs if account_id in seen and account_id != ctx.account_id]
    labels = await account_labels(db, ctx.organisation_id, others)
    return posted, [labels[account_id] for account_id in others]


async def _report_page(
    db: Database,
    ctx: PageContext,
    transaction_id: int,
    form: ReportForm,
    problems: list[dict[str, Any]],
    status_code: int = 200,
) -> Template:
    posted, names = await _own_entry(db, ctx, transaction_id)
    mine = next(p for p in posted.postings if p.account_id == ctx.account_id)
    return page(
        "pages/report_mistake.html",
        ctx=ctx,
        status_code=status_code,
        entry=posted,
        minutes=mine.minutes,
        names=names,
        form=form,
        problems=problems,
        action=_report_path(ctx, transaction_id),
        limit=service.MAX_TEXT,
    )


@get("/statement/entries/{transaction_id:int}/report", name="report-mistake")
async def report_mistake_form(ctx: PageContextDep, db: DatabaseDep, transaction_id: FromPath[int]) -> Template:
    return await _report_page(db, ctx, transaction_id, ReportForm(idempotency_key=new_form_key()), [])


def _report_problems(form: ReportForm) -> list[dict[str, Any]]:
    problems = []
    for field, required in (("what_is_wrong", True), ("what_it_should_be", False)):
        kind = service.text_problem(getattr(form, field), required=required)
        if kind:
            problems.append({"kind": kind, "field": field, "href": f"#{field}"})
    return problems


@post("/statement/entries/{transaction_id:int}/report", name="report-mistake-send")
async def report_mistake_send(
    ctx: PageContextDep, db: DatabaseDep, transaction_id: FromPath[int], data: Report
) -> Response:
    problems = _report_problems(data)
    if problems:
        return await _report_page(db, ctx, transaction_id, data, problems, status_code=400)
    # The service refuses an entry that is not on the reader's account (the not-found page).
    report = {
        "member_id": ctx.member_id,
        "account_id": ctx.account_id,
        "reported_by": ctx.user.user_id,
        "what_is_wrong": data.what_is_wrong,
        "what_it_should_be": data.what_it_should_be,
    }
    try:
        await service.report_mistake(
            db,
            ctx.organisation_id,
            transaction_id,
            idempotency_key=check_idempotency_key(data.idempotency_key),
            **report,
        )
    except errors.IdempotencyConflict:
        # Sent before, then changed (Back, edit, Send): a new message, as the person meant.
        await service.report_mistake(db, ctx.organisation_id, transaction_id, idempotency_key=new_form_key(), **report)
    return see_other(f"{_report_path(ctx, transaction_id)}/sent")


@get("/statement/entries/{transaction_id:int}/report/sent", name="report-mistake-sent")
async def report_mistake_sent(ctx: PageContextDep, db: DatabaseDep, transaction_id: FromPath[int]) -> Template:
    posted, _names = await _own_entry(db, ctx, transaction_id)
    return page("pages/report_mistake_sent.html", ctx=ctx, entry=posted)


async def _corrections_page(
    db: Database,
    ctx: PageContext,
    *,
    answered_now: service.Correction | None = None,
    failed: dict[str, Any] | None = None,
    status_code: int = 200,
) -> Template:
    waiting = await service.list_corrections(db, ctx.organisation_id, status="open")
    answered = await service.list_corrections(db, ctx.organisation_id, status="answered", limit=ANSWERED_SHOWN)
    return page(
        "pages/corrections.html",
        ctx=ctx,
        status_code=status_code,
        waiting=waiting,
        answered=answered,
        answered_now=answered_now,
        failed=failed or {},
        limit=service.MAX_TEXT,
        form_keys={c.id: new_form_key() for c in waiting},
        may_reverse=ctx.role is Role.COORDINATOR,
    )


@get("/corrections", name="corrections")
async def corrections(
    ctx: PageContextDep,
    db: DatabaseDep,
    answered: Annotated[int | None, QueryParameter(ge=1)] = None,
) -> Template:
    ctx.require_staff()
    answered_now = None
    if answered is not None:
        try:
            answered_now = await service.get_correction(db, ctx.organisation_id, answered)
        except service.CorrectionNotFound:
            answered_now = None  # a mistyped address still shows the page
    return await _corrections_page(db, ctx, answered_now=answered_now)


@post("/corrections/{correction_id:int}/answer", name="correction-answer")
async def answer_correction(
    ctx: PageContextDep, db: DatabaseDep, correction_id: FromPath[int], data: AnswerBody
) -> Response:
    ctx.require_staff()
    try:
        correction = await service.get_correction(db, ctx.organisation_id, correction_id)
    except service.CorrectionNotFound:
        raise NotFoundException("no such correction request") from None
    kind = service.text_problem(data.answer, required=True)
    if kind:
        failed = {"id": correction.id, "kind": kind, "answer": data.answer}
        return await _corrections_page(db, ctx, failed=failed, status_code=400)
    try:
        await service.answer_correction(
            db,
            ctx.organisation_id,
            correction_id,
            answer=data.answer,
            answered_by=ctx.user.user_id,
            idempotency_key=check_idempotency_key(data.idempotency_key),
        )
    except (service.AlreadyAnswered, errors.IdempotencyConflict):
        # Answered by someone else meanwhile, or by this very form before (Back, edit, send).
        failed = {"id": correction.id, "kind": "already_answered", "answer": data.answer}
        return await _corrections_page(db, ctx, failed=failed, status_code=409)
    return see_other(f"/orgs/{ctx.slug}/corrections?answered={correction_id}")


ROUTES = [report_mistake_form, report_mistake_send, report_mistake_sent, corrections, answer_correction]
