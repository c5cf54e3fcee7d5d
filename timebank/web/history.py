"""The History page: who changed what about people and settings, and when (staff and
coordinators read it; nobody edits it). Everything comes from ``timebank.history.service``,
as the API's ``GET /history`` answers it; the CSV is the API's bytes."""

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from litestar import Response, get
from litestar.params import FromQuery
from litestar.response import Template

from timebank.api.dependencies import DatabaseDep
from timebank.history.service import ERASED, ChangeKind, ChangeRow, csv_rows, list_changes
from timebank.members.service import list_members
from timebank.reports import csv
from timebank.web.context import PageContextDep
from timebank.web.responses import page

PAGE_SIZE = 25
MAX_PAGE = 40_000
# Everyone of a day centre fits the person filter's list; far beyond that, the list is cut.
MAX_PEOPLE = 2_000
DATE_FIELDS = frozenset({"joined_on", "books_closed_through"})


@dataclass(frozen=True)
class ShownChange:
    """A history row as the page words it (templates/macros/history.html)."""

    row: ChangeRow
    when: dt.datetime  # in the organisation's time zone
    actor_erased: bool
    # The category a category row is about (None where erasure removed it).
    category: str | None
    # (field, before, after) of each changed field, or None when erasure removed them.
    fields: list[tuple[str, Any, Any]] | None


def _shown(row: ChangeRow, timezone: str) -> ShownChange:
    fields: list[tuple[str, Any, Any]] | None = []
    if ERASED in (row.before, row.after):
        fields = None
    else:
        before = row.before if isinstance(row.before, dict) else {}
        after = row.after if isinstance(row.after, dict) else {}
        for name in dict.fromkeys([*before, *after]):
            if row.before is None and after.get(name) is None:
                continue  # registered without it: nothing to say
            if row.before is not None and row.after is not None and before.get(name) == after.get(name):
                continue  # named for the record (a retired category's name), not changed
            fields.append((name, _readable(name, before.get(name)), _readable(name, after.get(name))))
    states = [state for state in (row.after, row.before) if isinstance(state, dict)]
    category = next((state["category"] for state in states if "category" in state), None)
    when = row.changed_at.astimezone(ZoneInfo(timezone))
    return ShownChange(row, when, row.actor_name == ERASED, category, fields)


def _readable(field: str, value: Any) -> Any:
    """Dates (stored as ISO text) as dates, so the page writes them as people do."""
    if field in DATE_FIELDS and isinstance(value, str):
        return dt.date.fromisoformat(value)
    return value


def _filters(member: str | None, kind: str | None) -> tuple[int | None, ChangeKind | None]:
    """The form's choices; "Everyone" and "Every kind" are empty, and anything else unknown means no filter."""
    chosen_kind = ChangeKind(kind) if kind in ChangeKind._value2member_map_ else None
    member = (member or "").strip()
    member_id = int(member) if member.isascii() and member.isdigit() and len(member) <= 18 else None
    return member_id or None, chosen_kind


def _query(member: int | None, kind: ChangeKind | None) -> str:
    parts = ([f"member={member}"] if member else []) + ([f"kind={kind.value}"] if kind else [])
    return "&".join(parts)


@get("/history", name="history")
async def history_page(
    ctx: PageContextDep,
    db: DatabaseDep,
    member: FromQuery[str | None] = None,
    kind: FromQuery[str | None] = None,
    page_number: FromQuery[int] = 1,
) -> Template:
    ctx.require_staff()
    member_id, chosen_kind = _filters(member, kind)
    page_number = min(max(page_number, 1), MAX_PAGE)
    rows, total = await list_changes(
        db,
        ctx.organisation_id,
        member_id=member_id,
        kind=chosen_kind,
        limit=PAGE_SIZE,
        offset=(page_number - 1) * PAGE_SIZE,
    )
    people, _ = await list_members(db, ctx.organisation_id, search=None, active=None, limit=MAX_PEOPLE, offset=0)
    query = _query(member_id, chosen_kind)
    return page(
        "pages/history.html",
        ctx=ctx,
        changes=[_shown(row, ctx.timezone) for row in rows],
        total=total,
        people=people,
        kinds=list(ChangeKind),
        member_id=member_id,
        kind=chosen_kind.value if chosen_kind else "",
        query=query,
        page_number=page_number,
        pages=max(math.ceil(total / PAGE_SIZE), 1),
    )


@get("/history/csv", name="history-csv")
async def history_csv(
    ctx: PageContextDep, db: DatabaseDep, member: FromQuery[str | None] = None, kind: FromQuery[str | None] = None
) -> Response[str]:
    """The history's CSV, the same bytes as the API's ``?format=csv``."""
    ctx.require_staff()
    member_id, chosen_kind = _filters(member, kind)
    rows, _ = await list_changes(db, ctx.organisation_id, member_id=member_id, kind=chosen_kind, limit=None)
    return csv.download(csv_rows(rows), f"history-{ctx.slug}.csv")


ROUTES = [history_page, history_csv]
