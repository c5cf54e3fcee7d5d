"""The hourly value of an hour of help, set by a coordinator; every change is kept."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select

from timebank.db import Database
from timebank.history.service import ChangeKind, record_change
from timebank.ledger import errors
from timebank.models import HourlyRate, Organisation

hourly_rates = HourlyRate.__table__
organisations = Organisation.__table__

MAX_RATE_PENCE = 100_000 * 100


@dataclass(frozen=True)
class RateChange:
    id: int
    amount_pence: int
    currency: str
    basis: str
    set_on: dt.date
    set_at: dt.datetime
    set_by_user_id: int | None


def pence_from_text(amount: str) -> int:
    """'12.5' -> 1250. Exact: the schema allows at most two decimals."""
    pence = Decimal(amount) * 100
    if pence != pence.to_integral_value() or not 0 <= pence <= MAX_RATE_PENCE:
        raise errors.InvalidEntry("the hourly value must be an amount such as 12.60, at most 100000.00")
    return int(pence)


async def set_hourly_rate(
    db: Database, organisation_id: int, *, amount_pence: int, currency: str, basis: str, set_by: int | None
) -> RateChange:
    """Record a new hourly value; the old ones stay in the history (closed months keep theirs)."""
    basis = " ".join(basis.split())
    if not basis:
        raise errors.InvalidEntry("say in words where the hourly value comes from (its basis)")
    async with db.transaction() as conn:
        timezone = await conn.scalar(select(organisations.c.timezone).where(organisations.c.id == organisation_id))
        if timezone is None:
            raise errors.OrganisationNotFound(f"no organisation {organisation_id}")
        previous = (
            await conn.execute(
                select(hourly_rates.c.amount_pence, hourly_rates.c.currency, hourly_rates.c.basis)
                .where(hourly_rates.c.organisation_id == organisation_id)
                .order_by(hourly_rates.c.id.desc())
                .limit(1)
            )
        ).first()
        set_at = dt.datetime.now(dt.UTC)
        set_on = set_at.astimezone(ZoneInfo(timezone)).date()
        new_id = await conn.scalar(
            insert(hourly_rates)
            .values(
                organisation_id=organisation_id,
                amount_pence=amount_pence,
                currency=currency,
                basis=basis,
                set_at=set_at,
                set_on=set_on,
                set_by_user_id=set_by,
            )
            .returning(hourly_rates.c.id)
        )
        await record_change(
            conn,
            organisation_id,
            ChangeKind.HOURLY_RATE_CHANGED,
            changed_by=set_by,
            before=dict(previous._mapping) if previous is not None else None,
            after={"amount_pence": amount_pence, "currency": currency, "basis": basis},
        )
    return RateChange(new_id, amount_pence, currency, basis, set_on, set_at, set_by)


async def rate_history(db: Database, organisation_id: int) -> list[RateChange]:
    """Every hourly value set, newest first."""
    async with db.autocommit() as conn:
        rows = await conn.execute(
            select(
                hourly_rates.c.id,
                hourly_rates.c.amount_pence,
                hourly_rates.c.currency,
                hourly_rates.c.basis,
                hourly_rates.c.set_on,
                hourly_rates.c.set_at,
                hourly_rates.c.set_by_user_id,
            )
            .where(hourly_rates.c.organisation_id == organisation_id)
            .order_by(hourly_rates.c.id.desc())
        )
        return [
            RateChange(
                *row[:5], row.set_at if row.set_at.tzinfo else row.set_at.replace(tzinfo=dt.UTC), row.set_by_user_id
            )
            for row in rows
        ]
