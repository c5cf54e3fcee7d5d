"""The history of changes to people and settings (staff and coordinators read; nobody edits it)."""

from typing import Annotated

from litestar import Controller, Request, Response, get
from litestar.params import Parameter, QueryParameter

from timebank.api.dependencies import DatabaseDep, OrgContextDep
from timebank.api.schemas import error_responses
from timebank.history.schemas import ChangePage, ChangePublic
from timebank.history.service import ChangeKind, ChangeRow, csv_rows, list_changes
from timebank.reports import csv
from timebank.reports.endpoints import CSV_TOO, FormatParam, wants_csv


def change_public(row: ChangeRow) -> ChangePublic:
    return ChangePublic(
        id=row.id,
        changed_at=row.changed_at,
        by_user_id=row.actor_user_id,
        by=row.actor_name,
        kind=row.kind,
        member_id=row.member_id,
        member=row.member_name,
        transaction_id=row.transaction_id,
        before=row.before,
        after=row.after,
    )


class HistoryController(Controller):
    path = "/history"
    tags = ["history"]

    @get(
        "/",
        summary="Who changed what, newest first (staff, coordinators)",
        description="Every change to people and settings: registrations, edits, roles, deactivation, sign-ins "
        "given, password resets (only that one happened), settings, categories, hourly rates, reversals and "
        "month closes, each with who, when, and the changed fields before and after. Filter by `member_id` "
        "and `kind`. `?format=csv` (or `Accept: text/csv`) gives every matching row (no paging) as CSV, one "
        "line per changed field.",
        responses=error_responses(400, 401, 403, 404, 503),
        operation_class=CSV_TOO,
    )
    async def list_history(
        self,
        request: Request,
        ctx: OrgContextDep,
        db: DatabaseDep,
        member_id: Annotated[int | None, Parameter(ge=1, description="Only changes about this member.")] = None,
        kind: Annotated[ChangeKind | None, QueryParameter(description="Only changes of this kind.")] = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
        offset: Annotated[int, Parameter(ge=0, le=1_000_000)] = 0,
        format_: FormatParam = None,
    ) -> Response[ChangePage]:
        ctx.require_staff()
        if wants_csv(request, format_):
            rows, _ = await list_changes(db, ctx.organisation_id, member_id=member_id, kind=kind, limit=None)
            return csv.download(csv_rows(rows), f"history-{ctx.slug}.csv")
        rows, total = await list_changes(
            db, ctx.organisation_id, member_id=member_id, kind=kind, limit=limit, offset=offset
        )
        return Response(ChangePage(items=[change_public(row) for row in rows], total=total, limit=limit, offset=offset))
