import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKeyConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from timebank.models.base import BigId, id_field, utc_now


class PeriodClose(SQLModel, table=True):
    """A closed month: its report as it stood at the close, who closed it and when.

    Never updated or deleted: there is no reopening (docs/architecture.md).
    """

    __tablename__ = "period_closes"
    __table_args__ = (
        UniqueConstraint("organisation_id", "month"),
        UniqueConstraint("organisation_id", "idempotency_key"),
        # Target of the composite foreign key from closed_balances.
        UniqueConstraint("organisation_id", "id"),
        ForeignKeyConstraint(["organisation_id"], ["organisations.id"]),
    )

    id: int | None = id_field()
    organisation_id: int = Field(sa_type=BigId)
    # The first day of the month closed.
    month: dt.date
    # Its last day: the organisation's books_closed_through from this close on.
    closed_through: dt.date
    closed_at: dt.datetime = Field(default_factory=utc_now, sa_type=DateTime(timezone=True))
    closed_by_user_id: int | None = Field(default=None, foreign_key="users.id", sa_type=BigId)
    idempotency_key: str = Field(max_length=128)
    # The month's headline figures, also in ``report``: the 12-month trend of later
    # reports and range reports read these instead of the month's postings.
    exchanges: int = Field(sa_type=BigId)
    minutes_exchanged: int = Field(sa_type=BigId)
    active_members: int = Field(sa_type=BigId)
    # Its social value at the rate it was closed with (pence); NULL when no rate was set.
    social_value_pence: int | None = Field(default=None, sa_type=BigId)
    # The monthly report exactly as served at the close (the JSON body, without "closed").
    report: dict[str, Any] = Field(sa_type=JSON)


class ClosedBalance(SQLModel, table=True):
    """An account's balance as of a closed month's last day (by occurred_on).

    The opening balances of every later report start from the newest of these, so
    reports do not slow down as history grows.
    """

    __tablename__ = "closed_balances"
    __table_args__ = (
        ForeignKeyConstraint(
            ["organisation_id", "period_close_id"], ["period_closes.organisation_id", "period_closes.id"]
        ),
        ForeignKeyConstraint(["organisation_id", "account_id"], ["accounts.organisation_id", "accounts.id"]),
        Index("ix_closed_balances_account_id", "account_id"),
    )

    period_close_id: int = Field(sa_type=BigId, primary_key=True)
    account_id: int = Field(sa_type=BigId, primary_key=True)
    organisation_id: int = Field(sa_type=BigId)
    balance_minutes: int = Field(sa_type=BigId)
    # The date of the account's last exchange or group activity up to the close (dormancy).
    last_active_on: dt.date | None = None
