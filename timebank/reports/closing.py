"""Closing a month: its report and every account's balance stored as they stood, for good.

The close runs in one transaction that first locks the organisation's row and then
every one of its accounts in id order, as the ledger locks them:

- a posting already past its first statement holds a key-share lock on the
  organisation's row (the foreign key of its transaction row), so the close waits
  for it to commit, and it is in the stored report;
- a later posting waits for the close (on that row, or on its accounts), then reads
  ``books_closed_through`` after its own locks, as both writers do, and is refused (409).

On SQLite every transaction begins IMMEDIATE, which serialises the close with every writer.
There is no reopening: ``books_closed_through`` only moves forward, and only here.
"""

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.db import Database, as_utc
from timebank.db.retry import run_in_transaction
from timebank.history.service import ChangeKind, record_change
from timebank.ledger import errors
from timebank.ledger.posting import check_idempotency_key
from timebank.models import Account, ClosedBalance, Organisation, PeriodClose, Transaction
from timebank.reports.service import Period, compute_report, month_end, month_label
from timebank.reports.stored_reports import without_personal_data

accounts = Account.__table__
organisations = Organisation.__table__
period_closes = PeriodClose.__table__
closed_balances = ClosedBalance.__table__
transactions = Transaction.__table__


@dataclass(frozen=True)
class ClosedMonth:
    month: dt.date
    closed_through: dt.date
    closed_at: dt.datetime
    closed_by_user_id: int | None
    # False when this is the first answer to a replayed Idempotency-Key.
    created: bool = True


async def close_month(
    db: Database, organisation_id: int, month: dt.date, *, closed_by: int | None, idempotency_key: str
) -> ClosedMonth:
    """Close ``month`` (its first day): store its report and balances; nothing may be dated in it again.

    Only a month that has ended, and only once every earlier month with activity is closed.
    """
    check_idempotency_key(idempotency_key)
    return await run_in_transaction(db, lambda conn: _close(conn, organisation_id, month, closed_by, idempotency_key))


async def _close(
    conn: AsyncConnection, organisation_id: int, month: dt.date, closed_by: int | None, key: str
) -> ClosedMonth:
    organisation = (
        await conn.execute(
            select(organisations.c.timezone, organisations.c.books_closed_through)
            .where(organisations.c.id == organisation_id)
            .with_for_update()
        )
    ).first()
    if organisation is None:
        raise errors.OrganisationNotFound(f"no organisation {organisation_id}")
    replay = await _by_key(conn, organisation_id, key)
    if replay is not None:
        if replay.month != month:
            raise errors.IdempotencyConflict(
                f"the idempotency key {key!r} was already used to close {month_label(replay.month)}; "
                "use a new key to close another month"
            )
        closed_at = as_utc(replay.closed_at)
        return ClosedMonth(replay.month, replay.closed_through, closed_at, replay.closed_by_user_id, False)
    label, last_day = month_label(month), month_end(month)
    closed_through = organisation.books_closed_through
    if closed_through is not None and last_day <= closed_through:
        raise errors.PeriodClosed(
            f"{label} is already closed (the books are closed up to {closed_through.isoformat()}); "
            "a closed month cannot be reopened. Correct a mistake with a reversal, dated in an open month",
            books_closed_through=closed_through.isoformat(),
        )
    today = dt.datetime.now(ZoneInfo(organisation.timezone)).date()
    if last_day >= today:
        raise errors.LedgerConflict(
            f"{label} has not ended yet; it can be closed from {(last_day + dt.timedelta(days=1)).isoformat()}"
        )
    earlier = select(transactions.c.occurred_on).where(
        transactions.c.organisation_id == organisation_id, transactions.c.occurred_on < month
    )
    if closed_through is not None:
        earlier = earlier.where(transactions.c.occurred_on > closed_through)
    first_open = await conn.scalar(earlier.order_by(transactions.c.occurred_on).limit(1))
    if first_open is not None:
        raise errors.LedgerConflict(
            f"close {month_label(first_open.replace(day=1))} first: months are closed in order, and it has "
            "entries that are not closed yet",
            month=month_label(first_open.replace(day=1)),
        )
    # Every account of the organisation, in id order as the ledger locks them: no posting
    # into this month can commit from here on.
    await conn.execute(
        select(accounts.c.id)
        .where(accounts.c.organisation_id == organisation_id)
        .order_by(accounts.c.id)
        .with_for_update()
    )
    await conn.execute(
        update(organisations).where(organisations.c.id == organisation_id).values(books_closed_through=last_day)
    )
    computed = await compute_report(conn, organisation_id, Period(month, month))
    report = computed.report
    closed_at = dt.datetime.now(dt.UTC)
    close_id = await conn.scalar(
        insert(period_closes)
        .values(
            organisation_id=organisation_id,
            month=month,
            closed_through=last_day,
            closed_at=closed_at,
            closed_by_user_id=closed_by,
            idempotency_key=key,
            exchanges=report.exchanges,
            minutes_exchanged=computed.minutes_exchanged,
            active_members=report.active_members,
            social_value_pence=computed.social_value_pence,
            report=without_personal_data(report.model_dump(mode="json", by_alias=True, exclude={"closed"})),
        )
        .returning(period_closes.c.id)
    )
    await conn.execute(
        insert(closed_balances),
        [
            {
                "period_close_id": close_id,
                "account_id": account_id,
                "organisation_id": organisation_id,
                "balance_minutes": balance,
                "last_active_on": last_active,
            }
            for account_id, (balance, last_active) in sorted(computed.closing_balances.items())
        ],
    )
    await record_change(
        conn,
        organisation_id,
        ChangeKind.MONTH_CLOSED,
        changed_by=closed_by,
        before={"books_closed_through": closed_through.isoformat() if closed_through else None},
        after={"month": label, "books_closed_through": last_day.isoformat()},
    )
    return ClosedMonth(month, last_day, closed_at, closed_by)


async def _by_key(conn: AsyncConnection, organisation_id: int, key: str):  # type: ignore[no-untyped-def]
    return (
        await conn.execute(
            select(
                period_closes.c.month,
                period_closes.c.closed_through,
                period_closes.c.closed_at,
                period_closes.c.closed_by_user_id,
            ).where(period_closes.c.organisation_id == organisation_id, period_closes.c.idempotency_key == key)
        )
    ).first()


async def first_open_day(conn: AsyncConnection, organisation_id: int) -> dt.date | None:
    """The first day entries may be dated on (the day after the last closed month), or None if none is closed."""
    closed_through = await conn.scalar(
        select(organisations.c.books_closed_through).where(organisations.c.id == organisation_id)
    )
    return closed_through + dt.timedelta(days=1) if closed_through is not None else None
