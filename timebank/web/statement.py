"""A statement page: an account's entries over a month (or any period), with running balances.

``statement_page`` renders any account's statement; the member's own is the route here, and
staff pages reuse it for a member's statement (``account_name`` given).
"""

import datetime as dt
from typing import Annotated

from litestar import get
from litestar.params import QueryParameter
from litestar.response import Stream, Template

from timebank import ledger
from timebank.api.dependencies import DatabaseDep
from timebank.api.schemas import decode_cursor, encode_cursor
from timebank.corrections.service import corrections_by_entry
from timebank.db import Database
from timebank.ledger import StatementCursor
from timebank.reports.exports import statement_csv
from timebank.web.context import PageContext, PageContextDep
from timebank.web.responses import page

PAGE_SIZE = 50


def month_of(day: dt.date) -> tuple[dt.date, dt.date]:
    first = day.replace(day=1)
    following = (first + dt.timedelta(days=32)).replace(day=1)
    return first, following - dt.timedelta(days=1)


def _date(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def period_asked(today: dt.date, month: str | None, start: str | None, end: str | None) -> tuple[dt.date, dt.date]:
    """The period in the query: ?from=&to= (either may be left out), ?month=YYYY-MM, or this month.
    Anything that is not a date is left out, so a mistyped address still shows a statement."""
    start_day, end_day = _date(start), _date(end)
    if start_day or end_day:
        start_day = start_day or (end_day or today).replace(day=1)
        end_day = end_day or max(month_of(start_day)[1], start_day)
        return (start_day, end_day) if start_day <= end_day else (end_day, start_day)
    chosen = _date(f"{month}-01") if month else None
    return month_of(chosen or today)


async def statement_page(
    db: Database,
    ctx: PageContext,
    *,
    account_id: int,
    base_path: str,
    account_name: str | None = None,
    month: str | None = None,
    start: str | None = None,
    end: str | None = None,
    after: str | None = None,
) -> Template:
    """The statement of ``account_id`` (``account_name`` None: the reader's own, worded "you")."""
    today = ctx.today()
    first, last = period_asked(today, month, start, end)
    cursor = StatementCursor(*decode_cursor(after)) if after else None
    found = await ledger.statement(db, ctx.organisation_id, account_id, first, last, after=cursor, limit=PAGE_SIZE)
    # The account's own "Report a mistake" requests, shown on their entries with their answers.
    corrections = await corrections_by_entry(
        db, ctx.organisation_id, account_id, [entry.transaction_id for entry in found.entries]
    )
    whole_month = first == month_of(first)[0] and last == month_of(first)[1]
    previous_month = month_of(first - dt.timedelta(days=1))[0]
    next_month = month_of(last + dt.timedelta(days=1))[0]
    period_query = f"from={first.isoformat()}&to={last.isoformat()}"
    return page(
        "pages/statement.html",
        ctx=ctx,
        statement=found,
        corrections=corrections,
        account_name=account_name,
        base_path=base_path,
        whole_month=whole_month,
        previous_month=previous_month,
        next_month=next_month,
        period_query=period_query,
        next_page=(
            encode_cursor(found.next_page.occurred_on, found.next_page.transaction_id) if found.next_page else None
        ),
        is_later_page=cursor is not None,
    )


@get("/statement", name="statement")
async def own_statement(
    ctx: PageContextDep,
    db: DatabaseDep,
    month: Annotated[str | None, QueryParameter(max_length=7)] = None,
    start: Annotated[str | None, QueryParameter(name="from", max_length=10)] = None,
    end: Annotated[str | None, QueryParameter(name="to", max_length=10)] = None,
    after: Annotated[str | None, QueryParameter(max_length=100)] = None,
) -> Template:
    return await statement_page(
        db,
        ctx,
        account_id=ctx.account_id,
        base_path=f"/orgs/{ctx.slug}/statement",
        month=month,
        start=start,
        end=end,
        after=after,
    )


@get("/statement/csv", name="statement-csv")
async def own_statement_csv(
    ctx: PageContextDep,
    db: DatabaseDep,
    month: Annotated[str | None, QueryParameter(max_length=7)] = None,
    start: Annotated[str | None, QueryParameter(name="from", max_length=10)] = None,
    end: Annotated[str | None, QueryParameter(name="to", max_length=10)] = None,
) -> Stream:
    """The reader's own statement for the period the page shows, as the API writes its CSV."""
    return await statement_csv_for(db, ctx, ctx.account_id, month=month, start=start, end=end)


async def statement_csv_for(
    db: Database,
    ctx: PageContext,
    account_id: int,
    *,
    month: str | None = None,
    start: str | None = None,
    end: str | None = None,
) -> Stream:
    """Any account's statement CSV for the period its page would show (staff pages: after their
    own check that the reader may see ``account_id``)."""
    today = ctx.today()
    first, last = period_asked(today, month, start, end)
    return await statement_csv(db, ctx.organisation_id, ctx.slug, account_id, first, last)


ROUTES = [own_statement, own_statement_csv]
