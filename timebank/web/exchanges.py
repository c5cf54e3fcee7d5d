""" "Log an exchange" (staff): the page staff use most, so one form and one POST.

Giver and receiver are person fields (web/people.py), either of which may be the centre
(the agency account). The form carries its own idempotency key, so a double submit posts
once; it posts through ``ledger.post_exchange`` as the API does for staff, then redirects
to a confirmation with both new balances and "Log another exchange" (date and category kept).
"""

import contextlib
import datetime as dt
from typing import Annotated, Any

from litestar import get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotFoundException
from litestar.params import Body, FromPath, QueryParameter
from litestar.response import Response, Template

from timebank import ledger
from timebank.api.dependencies import DatabaseDep
from timebank.db import Database
from timebank.ledger import errors
from timebank.ledger.posting import check_idempotency_key
from timebank.ledger.reading import account_labels
from timebank.models import AccountKind, TransactionKind
from timebank.orgs.service import get_organisation_details
from timebank.web.context import PageContext, PageContextDep
from timebank.web.entry_form import EntryForm, check_when_what, dated, minutes_typed, person_problem
from timebank.web.ledger_refusals import ledger_problem
from timebank.web.members import require_staff_or_not_found
from timebank.web.people import PersonField, resolve_person
from timebank.web.responses import new_form_key, page, see_other

FIELDS = {"amount": "hours", "date": "occurred_on-day", "giver": "giver", "category": "category"}


class ExchangeForm(EntryForm):
    receiver: str = ""
    receiver_account_id: str = ""
    receiver_choosing: str = ""


async def _form_page(
    db: Database,
    ctx: PageContext,
    form: ExchangeForm,
    people: dict[str, PersonField | None],
    problems: list[dict[str, Any]],
    status_code: int = 200,
) -> Template:
    details = await get_organisation_details(db, ctx.organisation_id)
    return page(
        "pages/log_exchange.html",
        ctx=ctx,
        status_code=status_code,
        form=form,
        giver=people.get("giver"),
        receiver=people.get("receiver"),
        problems=problems,
        categories=details.categories,
    )


@get("/exchanges/new", name="log-exchange")
async def log_exchange_form(
    ctx: PageContextDep,
    db: DatabaseDep,
    occurred_on: Annotated[str | None, QueryParameter(max_length=10)] = None,
    category: Annotated[str | None, QueryParameter(max_length=80)] = None,
) -> Template:
    """A new form; "Log another exchange" passes the last one's date and category."""
    ctx.require_staff()
    day = ctx.today()
    with contextlib.suppress(ValueError):  # a mistyped address still gives today
        day = min(dt.date.fromisoformat(occurred_on), day) if occurred_on else day
    form = dated(ExchangeForm(idempotency_key=new_form_key(), category=category or ""), day)
    return await _form_page(db, ctx, form, {}, [])


async def _checked(
    db: Database, ctx: PageContext, form: ExchangeForm
) -> tuple[dict[str, PersonField], int | None, dt.date | None, list[dict[str, Any]]]:
    people = {
        name: await resolve_person(
            db,
            ctx,
            typed=getattr(form, name),
            account_id=getattr(form, f"{name}_account_id"),
            choosing=bool(getattr(form, f"{name}_choosing")),
            include_centre=True,
        )
        for name in ("giver", "receiver")
    }
    problems = [person_problem(name, field) for name, field in people.items() if field.is_error]
    giver, receiver = people["giver"].chosen, people["receiver"].chosen
    if giver and receiver and giver.account_id == receiver.account_id:
        problems.append({"kind": "same_person", "field": "receiver", "href": "#receiver"})
    minutes, problem = minutes_typed(form.hours, form.minutes)
    problems += [problem] if problem else []
    occurred_on, when_problems = await check_when_what(db, ctx, form)
    return people, minutes, occurred_on, problems + when_problems


def staff_problem(refusal: errors.LedgerError, people: dict[str, PersonField]) -> dict[str, Any]:
    """The ledger's refusal for the staff form: about the giver or the receiver, by name."""
    problem = ledger_problem(refusal, FIELDS)
    account_id = refusal.extra.get("account_id")
    for name, field in people.items():
        if field.chosen and field.chosen.account_id == account_id:
            problem["name"] = field.chosen.name
            if problem["field"] == "giver":
                problem.update(field=name, href=f"#{name}")
    return problem


@post("/exchanges/new", name="log-exchange-post")
async def log_exchange(
    ctx: PageContextDep,
    db: DatabaseDep,
    data: Annotated[ExchangeForm, Body(media_type=RequestEncodingType.URL_ENCODED)],
) -> Response:
    ctx.require_staff()
    people, minutes, occurred_on, problems = await _checked(db, ctx, data)
    if problems:
        return await _form_page(db, ctx, data, people, problems, status_code=400)
    if not all(field.is_resolved for field in people.values()):
        # Several people matched (choose one), or "Someone else" was picked: a step, not a mistake.
        return await _form_page(db, ctx, data, people, [])
    giver, receiver = people["giver"].chosen, people["receiver"].chosen
    assert giver and receiver and minutes is not None and occurred_on is not None
    try:
        posted = await ledger.post_exchange(
            db,
            ctx.organisation_id,
            giver_account_id=giver.account_id,
            receiver_account_id=receiver.account_id,
            minutes=minutes,
            occurred_on=occurred_on,
            description=data.description.strip(),
            category=data.category or None,
            recorded_by=ctx.user.user_id,
            idempotency_key=check_idempotency_key(data.idempotency_key),
        )
    except errors.LedgerError as refusal:
        problem = staff_problem(refusal, people)
        if problem["kind"] == "already_recorded":
            data = data.model_copy(update={"idempotency_key": new_form_key()})
        return await _form_page(db, ctx, data, people, [problem], status_code=refusal.status_code)
    return see_other(f"/orgs/{ctx.slug}/exchanges/{posted.id}/logged")


async def balances_after(db: Database, ctx: PageContext, posted: ledger.PostedTransaction) -> list[dict[str, Any]]:
    """Each leg with its account's name (the centre by the organisation's name) and its balance
    right after this entry (the posting's ``balance_after``)."""
    labels = await account_labels(db, ctx.organisation_id, (p.account_id for p in posted.postings))
    centre = await ledger.shared_account_id(db, ctx.organisation_id, AccountKind.AGENCY)
    return [
        {
            "name": ctx.organisation_name if p.account_id == centre else labels.get(p.account_id, ""),
            "is_centre": p.account_id == centre,
            "minutes": p.minutes,
            "balance_after": p.balance_after,
        }
        for p in posted.postings
    ]


@get("/exchanges/{transaction_id:int}/logged", name="exchange-logged")
async def exchange_logged(ctx: PageContextDep, db: DatabaseDep, transaction_id: FromPath[int]) -> Template:
    require_staff_or_not_found(ctx)
    try:
        posted = await ledger.get_transaction(db, ctx.organisation_id, transaction_id)
    except errors.TransactionNotFound:
        raise NotFoundException("no such entry") from None
    if posted.kind is not TransactionKind.EXCHANGE:
        raise NotFoundException("no such exchange")
    legs = await balances_after(db, ctx, posted)
    return page(
        "pages/exchange_logged.html",
        ctx=ctx,
        posted=posted,
        giver=next(leg for leg in legs if leg["minutes"] > 0),
        receiver=next(leg for leg in legs if leg["minutes"] < 0),
    )


ROUTES = [log_exchange_form, log_exchange, exchange_logged]
