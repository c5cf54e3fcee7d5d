"""Reports, month close, hourly rates and the ledger export. Staff read; coordinators also close and set."""

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Literal

from litestar import Controller, Request, Response, get, post
from litestar.openapi import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, OpenAPIType, Operation, Schema
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.response import Stream
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from timebank.api.dependencies import DatabaseDep, OrgContextDep
from timebank.api.schemas import error_responses
from timebank.exchanges.endpoints import IdempotencyKey
from timebank.ledger import errors
from timebank.reports import csv, exports
from timebank.reports.closing import close_month
from timebank.reports.rates import RateChange, pence_from_text, rate_history, set_hourly_rate
from timebank.reports.schemas import (
    HourlyRateHistory,
    HourlyRateInput,
    HourlyRatePublic,
    MonthlyReport,
    PeriodClosePublic,
)
from timebank.reports.service import Period, anonymised, money, month_label, monthly_report, parse_month

Format = Literal["json", "csv"]
MonthText = Annotated[str | None, QueryParameter(description="One month, YYYY-MM.", max_length=7)]
FromMonth = Annotated[str | None, QueryParameter(name="from", description="First month, YYYY-MM.", max_length=7)]
ToMonth = Annotated[str | None, QueryParameter(name="to", description="Last month, YYYY-MM.", max_length=7)]
FormatParam = Annotated[
    Format | None, QueryParameter(name="format", description="csv, or send Accept: text/csv. Default JSON.")
]


def wants_csv(request: Request, format_: Format | None) -> bool:
    """``?format=csv`` or ``Accept: text/csv`` (an explicit ``?format=json`` wins over the header)."""
    if format_ is not None:
        return format_ == "csv"
    return "text/csv" in request.headers.get("accept", "")


def also_as_files(*media_types: str) -> type[Operation]:
    """An OpenAPI operation whose 200 answer may also be one of ``media_types`` (CSV, JSON lines)."""

    @dataclass
    class FileOperation(Operation):
        def __post_init__(self) -> None:
            ok = (self.responses or {}).get("200")
            if isinstance(ok, OpenAPIResponse):
                ok.content = {
                    **(ok.content or {}),
                    **{
                        media_type: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
                        for media_type in media_types
                    },
                }

    return FileOperation


CSV_TOO = also_as_files(csv.MEDIA_TYPE)
JSON_LINES = "application/jsonl"


class ReportController(Controller):
    path = "/reports"
    tags = ["reports"]

    @get(
        "/monthly",
        summary="The monthly activity report, for one month or a range of whole months (staff, coordinators)",
        description="`?month=YYYY-MM`, or `?from=YYYY-MM&to=YYYY-MM`. Every figure is defined in `definitions`. "
        "A closed month's report is the one stored at its close. `?format=csv` (or `Accept: text/csv`) gives "
        "the summary and the per-member table as CSV; `anonymised=true` replaces names by member numbers "
        "(the default for a range's CSV, for funders).",
        responses=error_responses(400, 401, 403, 404, 503),
        operation_class=CSV_TOO,
    )
    async def monthly(
        self,
        request: Request,
        ctx: OrgContextDep,
        db: DatabaseDep,
        month: MonthText = None,
        from_month: FromMonth = None,
        to_month: ToMonth = None,
        format_: FormatParam = None,
        anonymise: Annotated[
            bool | None, QueryParameter(name="anonymised", description="Member numbers instead of names.")
        ] = None,
    ) -> Response[MonthlyReport]:
        ctx.require_staff()
        if month is not None and (from_month is not None or to_month is not None):
            raise errors.InvalidEntry("give either month, or from and to, not both")
        if month is not None:
            period = Period.month(month)
        elif from_month is not None and to_month is not None:
            period = Period.range(from_month, to_month)
        else:
            raise errors.InvalidEntry("give month=YYYY-MM, or from=YYYY-MM and to=YYYY-MM")
        as_csv = wants_csv(request, format_)
        report = await monthly_report(db, ctx.organisation_id, period)
        if anonymise if anonymise is not None else (as_csv and not period.is_one_month):
            report = anonymised(report)
        if not as_csv:
            return Response(report)
        label = report.month or f"{report.from_month}-to-{report.to_month}"
        return csv.download(exports.report_rows(report), f"report-{ctx.slug}-{label}.csv")


class PeriodController(Controller):
    path = "/periods"
    tags = ["reports"]

    @post(
        "/{month:str}/close",
        summary="Close a month (coordinators). There is no reopening",
        description="Stores the month's report as it stands and every account's balance as of its last day; "
        "from then on nothing may be dated in it or before it (409). Only a month that has ended, and only "
        "once every earlier month with entries is closed. A mistake found later is corrected by a reversal, "
        "dated in an open month, whose report lists it as a correction.",
        responses={
            200: ResponseSpec(PeriodClosePublic, description="A replayed Idempotency-Key: the original close."),
            **error_responses(400, 401, 403, 404, 409, 503),
        },
    )
    async def close(
        self, month: FromPath[str], ctx: OrgContextDep, db: DatabaseDep, idempotency_key: IdempotencyKey
    ) -> Response[PeriodClosePublic]:
        ctx.require_coordinator()
        closed = await close_month(
            db,
            ctx.organisation_id,
            parse_month(month),
            closed_by=ctx.caller.user_id,
            idempotency_key=idempotency_key,
        )
        return Response(
            PeriodClosePublic(
                month=month_label(closed.month),
                closed_through=closed.closed_through,
                closed_at=closed.closed_at,
                closed_by_user_id=closed.closed_by_user_id,
                books_closed_through=closed.closed_through,
            ),
            status_code=HTTP_201_CREATED if closed.created else HTTP_200_OK,
            headers={} if closed.created else {"Idempotent-Replayed": "true"},
        )


def _rate_public(change: RateChange) -> HourlyRatePublic:
    return HourlyRatePublic(
        id=change.id,
        rate=money(change.amount_pence, change.currency),
        basis=change.basis,
        set_on=change.set_on,
        set_at=change.set_at,
        set_by_user_id=change.set_by_user_id,
    )


class HourlyRateController(Controller):
    path = "/hourly-rates"
    tags = ["reports"]

    @get(
        "/",
        summary="The hourly value for the social value, and every earlier one (staff, coordinators)",
        responses=error_responses(401, 403, 404, 503),
    )
    async def history(self, ctx: OrgContextDep, db: DatabaseDep) -> HourlyRateHistory:
        ctx.require_staff()
        changes = [_rate_public(change) for change in await rate_history(db, ctx.organisation_id)]
        return HourlyRateHistory(current=changes[0] if changes else None, history=changes)

    @post(
        "/",
        summary="Set the hourly value of an hour of help (coordinators)",
        description="Kept with who set it and when; reports of open months use the newest, a closed month "
        "keeps the one it was closed with.",
        responses=error_responses(400, 401, 403, 404, 503),
    )
    async def set_rate(self, data: JSONBody[HourlyRateInput], ctx: OrgContextDep, db: DatabaseDep) -> HourlyRatePublic:
        ctx.require_coordinator()
        change = await set_hourly_rate(
            db,
            ctx.organisation_id,
            amount_pence=pence_from_text(data.amount),
            currency=data.currency,
            basis=data.basis,
            set_by=ctx.caller.user_id,
        )
        return _rate_public(change)


class ExportController(Controller):
    path = "/exports"
    tags = ["reports"]

    @get(
        "/ledger",
        summary="Every transaction with its postings for a date range, as CSV or JSON lines (staff, coordinators)",
        description="`?from=YYYY-MM-DD&to=YYYY-MM-DD&format=csv|jsonl`, by the date the help was given. "
        "Streamed from one snapshot of the ledger. CSV: one row per posting with its transaction's columns; "
        "JSON lines: one transaction per line with its postings.",
        responses=error_responses(400, 401, 403, 404, 503),
        media_type=csv.MEDIA_TYPE,
        operation_class=also_as_files(JSON_LINES),
    )
    async def ledger(
        self,
        ctx: OrgContextDep,
        db: DatabaseDep,
        from_date: Annotated[dt.date, QueryParameter(name="from", description="First day (YYYY-MM-DD).")],
        to_date: Annotated[dt.date, QueryParameter(name="to", description="Last day (YYYY-MM-DD).")],
        format_: Annotated[Literal["csv", "jsonl"], QueryParameter(name="format")] = "csv",
    ) -> Stream:
        ctx.require_staff()
        exports.check_export_dates(from_date, to_date)
        name = f"ledger-{ctx.slug}-{from_date.isoformat()}-to-{to_date.isoformat()}"
        if format_ == "jsonl":
            return Stream(
                exports.ledger_export_json_lines(db, ctx.organisation_id, from_date, to_date),
                media_type=JSON_LINES,
                headers=csv.attachment(f"{name}.jsonl"),
            )
        return Stream(
            csv.stream(exports.ledger_export_rows(db, ctx.organisation_id, from_date, to_date)),
            media_type=csv.MEDIA_TYPE,
            headers=csv.attachment(f"{name}.csv"),
        )
