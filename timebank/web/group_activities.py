""" "Log a group activity" (staff): one or more givers (a volunteer, or the centre) and many
receivers (the attendees), each with their own hours.

The form, then a check step with the totals worked out by the server (with JavaScript,
static/web/group-totals.js shows them as one types), then the posting through
``ledger.post_group_activity`` as the API posts it, with the form's own idempotency key.
The ledger refuses totals that differ; its refusal is worded here. "Add another giver" and
"Add another attendee" post the form back with one more row, so nothing needs JavaScript.
"""

from dataclasses import dataclass
from typing import Any

from litestar import Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Response, Template

from timebank import ledger
from timebank.api.dependencies import DatabaseDep
from timebank.db import Database
from timebank.ledger import errors
from timebank.ledger.posting import MAX_LEGS, check_idempotency_key
from timebank.models import TransactionKind
from timebank.orgs.service import get_organisation_details
from timebank.web.context import PageContext, PageContextDep
from timebank.web.entry_form import EntryForm, check_when_what, dated, minutes_typed, person_problem
from timebank.web.exchanges import balances_after
from timebank.web.ledger_refusals import ledger_problem
from timebank.web.members import require_staff_or_not_found
from timebank.web.people import PersonField, resolve_person
from timebank.web.responses import new_form_key, page, see_other

SIDES = ("giver", "receiver")
FIRST_ROWS = {"giver": 1, "receiver": 4}
MAX_ROWS = {"giver": 20, "receiver": MAX_LEGS - 20}
FIELDS = {"amount": "giver-0-hours", "date": "occurred_on-day", "giver": "giver-0", "category": "category"}


@dataclass
class Row:
    """One giver or attendee of the form, as typed and as resolved."""

    side: str
    index: int
    typed: str = ""
    account_id: str = ""
    choosing: str = ""
    hours: str = ""
    minutes: str = ""
    person: PersonField | None = None
    amount: int | None = None

    @property
    def name(self) -> str:
        return f"{self.side}-{self.index}"

    @property
    def is_empty(self) -> bool:
        return not (self.typed.strip() or self.account_id.isdigit() or self.hours.strip() or self.minutes.strip())


@dataclass
class GroupForm:
    details: EntryForm  # the key, date, category and description
    rows: dict[str, list[Row]]

    def filled(self, side: str) -> list[Row]:
        return [row for row in self.rows[side] if not row.is_empty]

    def total(self, side: str) -> int:
        return sum(row.amount or 0 for row in self.filled(side))


def _count(values: dict[str, str], side: str) -> int:
    text = values.get(f"{side}_rows", "")
    count = int(text) if text.isdigit() else FIRST_ROWS[side]
    return min(max(count, 1), MAX_ROWS[side])


def read_form(values: dict[str, str]) -> GroupForm:
    rows = {}
    for side in SIDES:
        rows[side] = [
            Row(
                side,
                index,
                typed=values.get(f"{side}-{index}", ""),
                account_id=values.get(f"{side}-{index}_account_id", ""),
                choosing=values.get(f"{side}-{index}_choosing", ""),
                hours=values.get(f"{side}-{index}-hours", ""),
                minutes=values.get(f"{side}-{index}-minutes", ""),
                # Shown again as typed until it is resolved (adding a row resolves nobody).
                person=PersonField(typed=values.get(f"{side}-{index}", "")),
            )
            for index in range(_count(values, side))
        ]
    return GroupForm(EntryForm.model_validate(values), rows)


async def _values(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


async def _form_page(
    db: Database, ctx: PageContext, form: GroupForm, problems: list[dict[str, Any]], status_code: int = 200
) -> Template:
    details = await get_organisation_details(db, ctx.organisation_id)
    return page(
        "pages/log_group_activity.html",
        ctx=ctx,
        status_code=status_code,
        form=form.details,
        rows=form.rows,
        problems=problems,
        categories=details.categories,
        max_rows=MAX_ROWS,
    )


@get("/group-activities/new", name="log-group-activity")
async def group_activity_form(ctx: PageContextDep, db: DatabaseDep) -> Template:
    ctx.require_staff()
    form = read_form({})
    form.details = dated(EntryForm(idempotency_key=new_form_key()), ctx.today())
    return await _form_page(db, ctx, form, [])


async def _checked(db: Database, ctx: PageContext, form: GroupForm) -> list[dict[str, Any]]:
    """Resolve every filled row and find what is wrong with the form (before the ledger sees it)."""
    problems = []
    for side in SIDES:
        filled = form.filled(side)
        if not filled:
            problems.append({"kind": f"no_{side}s", "field": f"{side}-0", "href": f"#{side}-0"})
        for row in filled:
            row.person = await resolve_person(
                db, ctx, typed=row.typed, account_id=row.account_id, choosing=bool(row.choosing), include_centre=True
            )
            if row.person.is_error:
                problems.append(person_problem(row.name, row.person))
            row.amount, problem = minutes_typed(row.hours, row.minutes)
            if problem:
                suffix = problem["href"].removeprefix("#")
                problems.append({**problem, "field": f"{row.name}-amount", "href": f"#{row.name}-{suffix}"})
    chosen = [
        row.person.chosen.account_id for side in SIDES for row in form.filled(side) if row.person and row.person.chosen
    ]
    if len(chosen) != len(set(chosen)):
        problems.append({"kind": "person_twice", "field": "giver-0", "href": "#giver-0"})
    _, when_problems = await check_when_what(db, ctx, form.details)
    return problems + when_problems


def _resolved(form: GroupForm) -> bool:
    return all(row.person is not None and row.person.is_resolved for side in SIDES for row in form.filled(side))


def _legs(form: GroupForm, side: str) -> list[tuple[int, int]]:
    return [
        (row.person.chosen.account_id, row.amount or 0) for row in form.filled(side) if row.person and row.person.chosen
    ]


@post("/group-activities/new", name="log-group-activity-check")
async def group_activity_check(ctx: PageContextDep, db: DatabaseDep, request: Request) -> Template:
    """More rows, back to the form (problems, a person to choose, "Change"), or the check step."""
    ctx.require_staff()
    values = await _values(request)
    for side in SIDES:
        if values.get("action") == f"add_{side}":
            values[f"{side}_rows"] = str(_count(values, side) + 1)
            return await _form_page(db, ctx, read_form(values), [])
    form = read_form(values)
    problems = await _checked(db, ctx, form)
    if values.get("action") == "change":
        return await _form_page(db, ctx, form, [])
    if problems:
        return await _form_page(db, ctx, form, problems, status_code=400)
    if not _resolved(form):
        return await _form_page(db, ctx, form, [])
    occurred_on, _ = await check_when_what(db, ctx, form.details)
    return page(
        "pages/log_group_activity_check.html",
        ctx=ctx,
        form=form,
        occurred_on=occurred_on,
        given=form.total("giver"),
        received=form.total("receiver"),
    )


def _group_problem(refusal: errors.LedgerError, form: GroupForm) -> dict[str, Any]:
    """The ledger's refusal, about the row of the account it names when it names one."""
    if isinstance(refusal, errors.InvalidEntry) and "givers_minutes" in refusal.extra:
        return {
            "kind": "totals_differ",
            "field": "giver-0-amount",
            "href": "#giver-0-hours",
            "given": refusal.extra["givers_minutes"],
            "received": refusal.extra["receivers_minutes"],
        }
    problem = ledger_problem(refusal, FIELDS)
    account_id = refusal.extra.get("account_id")
    for side in SIDES:
        for row in form.filled(side):
            if row.person and row.person.chosen and row.person.chosen.account_id == account_id:
                problem["name"] = row.person.chosen.name
                field = row.name if problem["field"] == "giver" else f"{row.name}-amount"
                href = f"#{row.name}" if problem["field"] == "giver" else f"#{row.name}-hours"
                problem.update(field=field, href=href)
    return problem


@post("/group-activities/confirm", name="log-group-activity-confirm")
async def group_activity_confirm(ctx: PageContextDep, db: DatabaseDep, request: Request) -> Response:
    ctx.require_staff()
    form = read_form(await _values(request))
    problems = await _checked(db, ctx, form)
    if problems or not _resolved(form):
        return await _form_page(db, ctx, form, problems, status_code=400 if problems else 200)
    occurred_on, _ = await check_when_what(db, ctx, form.details)
    assert occurred_on is not None
    try:
        posted = await ledger.post_group_activity(
            db,
            ctx.organisation_id,
            givers=_legs(form, "giver"),
            receivers=_legs(form, "receiver"),
            occurred_on=occurred_on,
            description=form.details.description.strip(),
            category=form.details.category or None,
            recorded_by=ctx.user.user_id,
            idempotency_key=check_idempotency_key(form.details.idempotency_key),
        )
    except errors.LedgerError as refusal:
        problem = _group_problem(refusal, form)
        if problem["kind"] == "already_recorded":
            form.details = form.details.model_copy(update={"idempotency_key": new_form_key()})
        return await _form_page(db, ctx, form, [problem], status_code=refusal.status_code)
    return see_other(f"/orgs/{ctx.slug}/group-activities/{posted.id}/logged")


@get("/group-activities/{transaction_id:int}/logged", name="group-activity-logged")
async def group_activity_logged(ctx: PageContextDep, db: DatabaseDep, transaction_id: FromPath[int]) -> Template:
    require_staff_or_not_found(ctx)
    try:
        posted = await ledger.get_transaction(db, ctx.organisation_id, transaction_id)
    except errors.TransactionNotFound:
        raise NotFoundException("no such entry") from None
    if posted.kind is not TransactionKind.GROUP:
        raise NotFoundException("no such group activity")
    legs = await balances_after(db, ctx, posted)
    return page(
        "pages/group_activity_logged.html",
        ctx=ctx,
        posted=posted,
        givers=[leg for leg in legs if leg["minutes"] > 0],
        receivers=[leg for leg in legs if leg["minutes"] < 0],
    )


ROUTES = [group_activity_form, group_activity_check, group_activity_confirm, group_activity_logged]
