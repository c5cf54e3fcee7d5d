"""A transaction's page, and "Reverse this exchange" (coordinators).

The page shows any entry of the organisation to staff and coordinators, and an entry on a
member's own account to that member, through the same visibility rule as the API
(``exchanges.endpoints.present``): a member never sees another member's balance, nor the
other attendees of a group activity. Reversing posts through ``ledger.reverse_transaction``,
as the API's ``POST .../reversal`` does, with the form's own idempotency key.
"""

import datetime as dt
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
from timebank.db import Database, as_utc
from timebank.exchanges.endpoints import present
from timebank.exchanges.schemas import TransactionPublic
from timebank.ledger import errors
from timebank.ledger.posting import MAX_DESCRIPTION, check_idempotency_key
from timebank.members.service import name_in_organisation
from timebank.models import AccountKind, TransactionKind
from timebank.web.context import PageContext, PageContextDep
from timebank.web.ledger_refusals import ledger_problem
from timebank.web.members import require_staff_or_not_found
from timebank.web.responses import new_form_key, page, see_other


class ReversalForm(BaseModel):
    idempotency_key: str = ""
    reason: str = ""
    # The "Report a mistake" request this reversal answers ("Reverse this exchange" on the
    # Corrections page): after reversing, back there to answer it, and the answer records
    # the reversal (corrections/service.py).
    correction: str = ""


def transaction_path(ctx: PageContext, transaction_id: int, suffix: str = "") -> str:
    return f"/orgs/{ctx.slug}/exchanges/{transaction_id}{suffix}"


async def _visible(
    db: Database, ctx: PageContext, transaction_id: int
) -> tuple[ledger.PostedTransaction, TransactionPublic]:
    """The entry as the signed-in person may see it; not-found for an entry that is not theirs
    (the same page whether it exists or not, so ids cannot be probed)."""
    try:
        posted = await ledger.get_transaction(db, ctx.organisation_id, transaction_id)
    except errors.TransactionNotFound:
        raise NotFoundException("no such entry") from None
    if not ctx.is_staff and all(p.account_id != ctx.account_id for p in posted.postings):
        raise NotFoundException("no such entry")
    [public] = await present(db, ctx, [posted])
    return posted, public


async def _legs(db: Database, ctx: PageContext, public: TransactionPublic) -> list[dict[str, Any]]:
    """Each leg the reader may see, named as people name it (the centre by the organisation's name)."""
    centre = await ledger.shared_account_id(db, ctx.organisation_id, AccountKind.AGENCY)
    pot = await ledger.shared_account_id(db, ctx.organisation_id, AccountKind.POT)
    return [
        {
            "account_id": p.account_id,
            "name": ctx.organisation_name if p.account_id == centre else p.display_name,
            "is_pot": p.account_id == pot,
            "is_own": p.account_id == ctx.account_id,
            "minutes": p.minutes,
            "balance_after": p.balance_after,
        }
        for p in public.postings
    ]


def _local(ctx: PageContext, moment: dt.datetime) -> dt.datetime:
    return as_utc(moment).astimezone(ZoneInfo(ctx.timezone))


def may_reverse(ctx: PageContext, posted: ledger.PostedTransaction) -> bool:
    """Whether to offer "Reverse this exchange": the ledger decides in the end (and says why not)."""
    return ctx.is_coordinator and posted.kind is not TransactionKind.REVERSAL and posted.reversed_by_id is None


@get("/exchanges/{transaction_id:int}", name="transaction")
async def transaction_page(
    ctx: PageContextDep, db: DatabaseDep, transaction_id: FromPath[int], notice: FromQuery[str | None] = None
) -> Template:
    posted, public = await _visible(db, ctx, transaction_id)
    recorder = None
    if posted.recorded_by_user_id is not None:
        recorder = await name_in_organisation(db, ctx.organisation_id, posted.recorded_by_user_id)
    return page(
        "pages/transaction.html",
        ctx=ctx,
        posted=posted,
        legs=await _legs(db, ctx, public),
        recorded_at=_local(ctx, posted.recorded_at),
        recorded_by=recorder,
        may_reverse=may_reverse(ctx, posted),
        notice=notice,
    )


async def _reversal_page(
    db: Database,
    ctx: PageContext,
    posted: ledger.PostedTransaction,
    form: ReversalForm,
    problems: list[dict[str, Any]],
    status_code: int = 200,
) -> Template:
    """What the reversal will undo, and each balance after it (the balance now, less the leg)."""
    [public] = await present(db, ctx, [posted])
    legs = await _legs(db, ctx, public)
    for leg in legs:
        leg["balance_now"] = await ledger.current_balance(db, ctx.organisation_id, leg["account_id"])
        leg["balance_after_reversal"] = leg["balance_now"] - leg["minutes"]
    return page(
        "pages/reverse_transaction.html",
        ctx=ctx,
        status_code=status_code,
        posted=posted,
        legs=legs,
        form=form,
        problems=problems,
        max_reason=MAX_DESCRIPTION,
    )


async def _reversible(db: Database, ctx: PageContext, transaction_id: int) -> ledger.PostedTransaction:
    """The entry, for a coordinator; staff are refused (403) and members get not-found."""
    require_staff_or_not_found(ctx)
    posted, _ = await _visible(db, ctx, transaction_id)
    ctx.require_coordinator()
    return posted


@get("/exchanges/{transaction_id:int}/reverse", name="reverse-transaction")
async def reverse_form(
    ctx: PageContextDep, db: DatabaseDep, transaction_id: FromPath[int], correction: FromQuery[int | None] = None
) -> Template | Redirect:
    posted = await _reversible(db, ctx, transaction_id)
    if posted.reversed_by_id is not None:
        return see_other(transaction_path(ctx, posted.id))  # nothing left to undo: its page says by what
    form = ReversalForm(idempotency_key=new_form_key(), correction=str(correction) if correction else "")
    return await _reversal_page(db, ctx, posted, form, [])


def reversal_problem(refusal: errors.LedgerError, legs_named: dict[int, str]) -> dict[str, Any]:
    """The ledger's refusal of a reversal, for the page: about the reason field, naming the
    person whose balance it is about."""
    match refusal:
        case errors.AlreadyReversed():
            return {"kind": "already_reversed", "field": "reason", "href": "#reason"}
        case errors.CannotReverse():
            return {"kind": "cannot_reverse", "field": "reason", "href": "#reason"}
    problem = ledger_problem(refusal, {"amount": "reason", "date": "reason", "giver": "reason", "category": "reason"})
    problem.update(field="reason", name=legs_named.get(refusal.extra.get("account_id", 0), ""))
    return problem


@post("/exchanges/{transaction_id:int}/reverse", name="reverse-transaction-post")
async def reverse(
    ctx: PageContextDep,
    db: DatabaseDep,
    transaction_id: FromPath[int],
    data: Annotated[ReversalForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Template | Redirect:
    posted = await _reversible(db, ctx, transaction_id)
    reason = data.reason.strip()
    if not reason:
        return await _reversal_page(
            db, ctx, posted, data, [{"kind": "no_reason", "field": "reason", "href": "#reason"}], 400
        )
    if len(reason) > MAX_DESCRIPTION:
        problem = {"kind": "reason_too_long", "field": "reason", "href": "#reason", "limit": MAX_DESCRIPTION}
        return await _reversal_page(db, ctx, posted, data, [problem], 400)
    try:
        reversal = await ledger.reverse_transaction(
            db,
            ctx.organisation_id,
            transaction_id,
            reason=reason,
            recorded_by=ctx.user.user_id,
            idempotency_key=check_idempotency_key(data.idempotency_key),
        )
    except errors.LedgerError as refusal:
        [public] = await present(db, ctx, [posted])
        names = {leg["account_id"]: leg["name"] for leg in await _legs(db, ctx, public)}
        problem = reversal_problem(refusal, names)
        if problem["kind"] == "already_recorded":
            data = data.model_copy(update={"idempotency_key": new_form_key()})
        return await _reversal_page(db, ctx, posted, data, [problem], refusal.status_code)
    if data.correction.isdigit():
        return see_other(f"/orgs/{ctx.slug}/corrections#correction-{int(data.correction)}")
    # A replayed key (a double submit) answers with the first reversal: the same page.
    return see_other(transaction_path(ctx, reversal.id, "?notice=reversed"))


ROUTES = [transaction_page, reverse_form, reverse]
