"""What goes out as files: the report as CSV, a member's statement as CSV, the ledger export.

Statements and exports are streamed from one database snapshot, so a ten-year export
never sits in memory and still shows the ledger as it was at one moment.
"""

import datetime as dt
import json
from collections.abc import AsyncIterator, Iterator, Sequence

from litestar.response import Stream
from sqlalchemy import select

from timebank.db import Database, as_utc
from timebank.db.snapshot import read_snapshot
from timebank.ledger import errors
from timebank.ledger.amounts import minutes_to_hours
from timebank.ledger.entries import StatementEntry
from timebank.ledger.reading import account_label, stream_statement
from timebank.models import Account, AccountKind, Category, Member, Posting, Transaction
from timebank.reports import csv, schemas
from timebank.reports.csv import Cell, hours

accounts = Account.__table__
members = Member.__table__
transactions = Transaction.__table__
postings = Posting.__table__
categories = Category.__table__

EXPORT_CHUNK = 2000


# --------------------------------------------------------------------------- the report


def report_rows(report: schemas.MonthlyReport) -> Iterator[Sequence[Cell]]:
    """The summary (figure, value), a blank line, then the per-member table."""
    yield ("figure", "value")
    if report.month is not None:
        yield ("month", report.month)
    else:
        yield ("from", report.from_month)
        yield ("to", report.to_month)
    yield ("closed", report.closed)
    yield ("exchanges", report.exchanges)
    yield ("reversals", report.reversals)
    yield ("hours_exchanged", hours(report.hours_exchanged.minutes))
    yield ("hours_exchanged_gross", hours(report.hours_exchanged_gross.minutes))
    for kind, figures in report.by_kind:
        yield (f"by_kind.{kind}.count", figures.count)
        yield (f"by_kind.{kind}.hours", hours(figures.minutes))
    yield ("active_members", report.active_members)
    yield ("members_who_gave", report.members_who_gave)
    yield ("members_who_received", report.members_who_received)
    yield ("new_members", len(report.new_members))
    yield ("dormant_members", len(report.dormant_members))
    yield ("never_active", len(report.never_active))
    for category in report.by_category:
        yield (f"by_category.{category.category}.exchanges", category.exchanges)
        yield (f"by_category.{category.category}.hours", hours(category.minutes))
    yield ("trial_balance.total_hours", hours(report.trial_balance.total.minutes))
    yield ("trial_balance.held", report.trial_balance.held)
    value = report.social_value
    yield ("social_value.rate", value.rate.amount if value.rate else None)
    yield ("social_value.value", value.value.amount if value.value else None)
    yield ("social_value.currency", (value.value or value.rate).currency if (value.value or value.rate) else None)
    yield ("social_value.basis", value.basis)
    yield ()
    yield (
        "member_number",
        "name",
        "opening_balance_hours",
        "given_hours",
        "received_hours",
        "other_hours",
        "closing_balance_hours",
    )
    for row in report.members:
        yield (
            row.member_id,
            row.name,
            hours(row.opening_balance.minutes),
            hours(row.given.minutes),
            hours(row.received.minutes),
            hours(row.other.minutes),
            hours(row.closing_balance.minutes),
        )


# --------------------------------------------------------------------------- statements

STATEMENT_COLUMNS = (
    "transaction_id",
    "occurred_on",
    "recorded_at",
    "kind",
    "description",
    "category",
    "counterparts",
    "hours",
    "running_balance_hours",
)


async def statement_rows(
    db: Database, organisation_id: int, account_id: int, start: dt.date, end: dt.date
) -> AsyncIterator[Sequence[Cell]]:
    """A member's statement as CSV rows: the opening balance, every entry, the closing balance."""
    entries = stream_statement(db, organisation_id, account_id, start, end)
    opening = await anext(entries)
    assert isinstance(opening, int)
    yield STATEMENT_COLUMNS
    yield (None, start, None, "opening_balance", "Balance brought forward", None, None, None, hours(opening))
    closing = opening
    async for entry in entries:
        assert isinstance(entry, StatementEntry)
        closing = entry.running_balance
        yield (
            entry.transaction_id,
            entry.occurred_on,
            entry.recorded_at,
            entry.kind.value,
            entry.description,
            entry.category,
            "; ".join(entry.counterparts),
            hours(entry.minutes),
            hours(entry.running_balance),
        )
    yield (None, end, None, "closing_balance", "Balance carried forward", None, None, None, hours(closing))


async def statement_csv(
    db: Database, organisation_id: int, slug: str, account_id: int, start: dt.date, end: dt.date
) -> Stream:
    """The statement CSV as an answer, streamed (the API's ``?format=csv`` and the statement page's link)."""
    rows = statement_rows(db, organisation_id, account_id, start, end)
    header = await anext(rows)  # checks the account before the answer starts

    async def all_rows() -> AsyncIterator[Sequence[Cell]]:
        yield header
        async for row in rows:
            yield row

    name = f"statement-{slug}-account-{account_id}-{start.isoformat()}-to-{end.isoformat()}.csv"
    return Stream(
        csv.stream(all_rows()),
        media_type=csv.MEDIA_TYPE,
        # Explicit: a handler's own media type (JSON, from its annotation) would win otherwise.
        headers={"Content-Type": f"{csv.MEDIA_TYPE}; charset=utf-8", **csv.attachment(name)},
    )


# --------------------------------------------------------------------------- the ledger export

EXPORT_COLUMNS = (
    "transaction_id",
    "kind",
    "occurred_on",
    "recorded_at",
    "recorded_by_user_id",
    "description",
    "category_id",
    "category",
    "reverses_id",
    "posting_id",
    "account_id",
    "account_kind",
    "member_id",
    "account_name",
    "minutes",
    "hours",
)


def check_export_dates(start: dt.date, end: dt.date) -> None:
    if start > end:
        raise errors.InvalidEntry(f"'from' ({start}) is after 'to' ({end})")


async def _export_postings(db: Database, organisation_id: int, start: dt.date, end: dt.date) -> AsyncIterator[dict]:
    """Every posting of every transaction dated ``start``..``end``, in (date, transaction, posting) order."""
    query = (
        select(
            transactions.c.id.label("transaction_id"),
            transactions.c.kind,
            transactions.c.occurred_on,
            transactions.c.recorded_at,
            transactions.c.recorded_by_user_id,
            transactions.c.description,
            transactions.c.category_id,
            categories.c.name.label("category"),
            transactions.c.reverses_id,
            postings.c.id.label("posting_id"),
            postings.c.account_id,
            accounts.c.kind.label("account_kind"),
            accounts.c.member_id,
            members.c.display_name,
            postings.c.minutes,
        )
        .select_from(
            transactions.join(postings, postings.c.transaction_id == transactions.c.id)
            .join(accounts, accounts.c.id == postings.c.account_id)
            .outerjoin(members, members.c.id == accounts.c.member_id)
            .outerjoin(categories, categories.c.id == transactions.c.category_id)
        )
        .where(transactions.c.organisation_id == organisation_id, transactions.c.occurred_on.between(start, end))
        .order_by(transactions.c.occurred_on, transactions.c.id, postings.c.id)
        .execution_options(yield_per=EXPORT_CHUNK)
    )
    async with read_snapshot(db) as conn:
        result = await conn.stream(query)
        async for chunk in result.mappings().partitions(EXPORT_CHUNK):
            for row in chunk:
                yield {
                    **row,
                    "recorded_at": as_utc(row["recorded_at"]),
                    "account_name": account_label(AccountKind(row["account_kind"]), row["display_name"]),
                }


async def ledger_export_rows(
    db: Database, organisation_id: int, start: dt.date, end: dt.date
) -> AsyncIterator[Sequence[Cell]]:
    """The export as CSV rows: one per posting, with its transaction's columns."""
    check_export_dates(start, end)
    yield EXPORT_COLUMNS
    async for row in _export_postings(db, organisation_id, start, end):
        yield (*(row[column] for column in EXPORT_COLUMNS[:-1]), hours(row["minutes"]))


async def ledger_export_json_lines(
    db: Database, organisation_id: int, start: dt.date, end: dt.date
) -> AsyncIterator[bytes]:
    """The export as JSON lines: one transaction per line, with its postings."""
    check_export_dates(start, end)
    current: dict | None = None
    batch: list[str] = []
    async for row in _export_postings(db, organisation_id, start, end):
        if current is None or current["id"] != row["transaction_id"]:
            if current is not None:
                batch.append(json.dumps(current, separators=(",", ":")) + "\n")
                if len(batch) >= 500:
                    yield "".join(batch).encode()
                    batch = []
            current = {
                "id": row["transaction_id"],
                "kind": row["kind"],
                "occurred_on": row["occurred_on"].isoformat(),
                "recorded_at": row["recorded_at"].isoformat().replace("+00:00", "Z"),
                "recorded_by_user_id": row["recorded_by_user_id"],
                "description": row["description"],
                "category_id": row["category_id"],
                "category": row["category"],
                "reverses_id": row["reverses_id"],
                "postings": [],
            }
        current["postings"].append(
            {
                "posting_id": row["posting_id"],
                "account_id": row["account_id"],
                "account_kind": row["account_kind"],
                "member_id": row["member_id"],
                "account_name": row["account_name"],
                "minutes": row["minutes"],
                "hours": minutes_to_hours(row["minutes"]),
            }
        )
    if current is not None:
        batch.append(json.dumps(current, separators=(",", ":")) + "\n")
    if batch:
        yield "".join(batch).encode()
