"""The report pages: the monthly (or range) report with its charts, its CSV, and closing a month.

Every figure comes from ``timebank.reports.service.monthly_report`` (what the API answers,
a closed month's as stored) and a close goes through ``reports.closing.close_month``: the
pages word and draw the report, they compute nothing of their own.
"""

from typing import Annotated, Literal

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath, FromQuery, QueryParameter
from litestar.response import Template
from pydantic import BaseModel

from timebank.api.dependencies import DatabaseDep
from timebank.ledger import errors
from timebank.models import Role
from timebank.reports import csv, exports
from timebank.reports.closing import close_month
from timebank.reports.schemas import MonthlyReport
from timebank.reports.service import (
    Period,
    add_months,
    anonymised,
    month_end,
    month_label,
    monthly_report,
    parse_month,
)
from timebank.web import charts
from timebank.web.context import PageContext, PageContextDep
from timebank.web.responses import new_form_key, page, see_other
from timebank.web.templating import page_locale

KIND_ORDER = (
    "person_to_person",
    "person_to_agency",
    "agency_to_person",
    "group",
    "pot_donation",
    "pot_grant",
    "reversal",
    "opening_balance",
)


class CloseForm(BaseModel):
    month: str = ""
    idempotency_key: str = ""


Form = Body(media_type=RequestEncodingType.URL_ENCODED)
FromMonth = Annotated[str | None, QueryParameter(name="from")]
ToMonth = Annotated[str | None, QueryParameter(name="to")]


def _last_month(ctx: PageContext) -> str:
    return month_label(add_months(ctx.today().replace(day=1), -1))


def _period(
    ctx: PageContext, month: str | None, from_month: str | None, to_month: str | None
) -> tuple[Period | None, str | None]:
    """The period chosen in the form (default: last month), or None and what was wrong."""
    try:
        if from_month or to_month:
            return Period.range(from_month or "", to_month or ""), None
        return Period.month(month or _last_month(ctx)), None
    except errors.InvalidEntry:
        return None, "range" if (from_month or to_month) else "month"


def _csv_query(period: Period) -> str:
    if period.is_one_month:
        return f"month={month_label(period.first)}"
    return f"from={month_label(period.first)}&to={month_label(period.last)}"


def _closable(ctx: PageContext, period: Period, report: MonthlyReport) -> bool:
    """Whether to offer "Close this month"; the close itself decides (and says why not)."""
    return (
        ctx.role is Role.COORDINATOR
        and period.is_one_month
        and not report.closed
        and (month_end(period.first) < ctx.today())
    )


@get("/reports", name="reports")
async def report_page(
    ctx: PageContextDep,
    db: DatabaseDep,
    month: FromQuery[str | None] = None,
    from_month: FromMonth = None,
    to_month: ToMonth = None,
    just_closed: Annotated[bool, QueryParameter(name="closed")] = False,
) -> Template:
    ctx.require_staff()
    period, problem = _period(ctx, month, from_month, to_month)
    form = {"month": month or "", "from": from_month or "", "to": to_month or ""}
    if period is None:
        return page(
            "pages/reports.html",
            ctx=ctx,
            status_code=400,
            report=None,
            problem=problem,
            form=form,
            default_month=_last_month(ctx),
        )
    report = await monthly_report(db, ctx.organisation_id, period)
    if not (month or from_month or to_month):
        form["month"] = month_label(period.first)
    query = _csv_query(period)
    return page(
        "pages/reports.html",
        ctx=ctx,
        report=report,
        problem=None,
        form=form,
        default_month=_last_month(ctx),
        period=period,
        query=query,
        kinds=[(key, getattr(report.by_kind, key)) for key in KIND_ORDER],
        closable=_closable(ctx, period, report),
        just_closed=just_closed and report.closed,
    )


@get("/reports/charts/{name:str}", name="report-chart", media_type="image/svg+xml")
async def report_chart(
    request: Request,
    ctx: PageContextDep,
    db: DatabaseDep,
    name: FromPath[str],
    month: FromQuery[str | None] = None,
    from_month: FromMonth = None,
    to_month: ToMonth = None,
) -> Response[str]:
    """A chart of the report as an SVG image (its own CSP, security.py: CHART_CSP)."""
    ctx.require_staff()
    period, _ = _period(ctx, month, from_month, to_month)
    draw = charts.CHARTS.get(name.removesuffix(".svg"))
    if period is None or draw is None:
        raise errors.NotFound("no such chart")
    report = await monthly_report(db, ctx.organisation_id, period)
    return Response(draw(report, page_locale(request.app)), media_type="image/svg+xml")


@get("/reports/csv", name="report-csv")
async def report_csv(
    ctx: PageContextDep,
    db: DatabaseDep,
    month: FromQuery[str | None] = None,
    from_month: FromMonth = None,
    to_month: ToMonth = None,
    version: FromQuery[Literal["named", "anonymised"]] = "named",
) -> Response[str]:
    """The report's CSV, as the API writes it (reports/exports.py through reports/csv.py)."""
    ctx.require_staff()
    period, _ = _period(ctx, month, from_month, to_month)
    if period is None:
        raise errors.InvalidEntry("give month=YYYY-MM, or from=YYYY-MM and to=YYYY-MM")
    report = await monthly_report(db, ctx.organisation_id, period)
    if version == "anonymised":
        report = anonymised(report)
    label = report.month or f"{report.from_month}-to-{report.to_month}"
    suffix = "-anonymised" if version == "anonymised" else ""
    return csv.download(exports.report_rows(report), f"report-{ctx.slug}-{label}{suffix}.csv")


def _close_page(ctx: PageContext, month: str, *, problem: dict[str, str] | None = None) -> Template:
    return page(
        "pages/report_close.html",
        ctx=ctx,
        month=month,
        first_day=parse_month(month),
        close_key=new_form_key(),
        problem=problem,
        status_code=409 if problem else 200,
    )


@get("/reports/close", name="report-close")
async def close_confirmation(ctx: PageContextDep, month: FromQuery[str | None] = None) -> Template:
    """What closing means, said before the button that does it."""
    ctx.require_coordinator()
    try:
        parse_month(month or "")
    except errors.InvalidEntry as refusal:
        raise errors.NotFound("no such month") from refusal
    return _close_page(ctx, month or "")


@post("/reports/close", name="report-close-post")
async def close(ctx: PageContextDep, db: DatabaseDep, data: Annotated[CloseForm, Form]) -> Response:
    ctx.require_coordinator()
    try:
        first = parse_month(data.month)
    except errors.InvalidEntry as refusal:
        raise errors.NotFound("no such month") from refusal
    try:
        await close_month(
            db, ctx.organisation_id, first, closed_by=ctx.user.user_id, idempotency_key=data.idempotency_key
        )
    except errors.PeriodClosed:
        return _close_page(ctx, data.month, problem={"kind": "already_closed"})
    except errors.IdempotencyConflict:
        return _close_page(ctx, data.month, problem={"kind": "stale_form"})
    except errors.LedgerConflict as refusal:
        earlier = refusal.extra.get("month")
        if earlier is not None:
            return _close_page(ctx, data.month, problem={"kind": "earlier_open", "earlier": earlier})
        return _close_page(ctx, data.month, problem={"kind": "not_ended"})
    return see_other(f"/orgs/{ctx.slug}/reports?month={data.month}&closed=true")


ROUTES = [report_page, report_chart, report_csv, close_confirmation, close]
