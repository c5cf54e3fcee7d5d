import datetime as dt

from sqlalchemy import CheckConstraint, DateTime, ForeignKeyConstraint, Index
from sqlmodel import Field, SQLModel

from timebank.models.base import BigId, id_field, utc_now


class HourlyRate(SQLModel, table=True):
    """The hourly value a coordinator puts on an hour of help, for the social-value estimate.

    Append-only: every change is a new row, so who set which rate and when is kept;
    the current rate is the newest row.
    """

    __tablename__ = "hourly_rates"
    __table_args__ = (
        CheckConstraint("amount_pence >= 0", name="amount_not_negative"),
        ForeignKeyConstraint(["organisation_id"], ["organisations.id"]),
        Index("ix_hourly_rates_organisation_id_id", "organisation_id", "id"),
    )

    id: int | None = id_field()
    organisation_id: int = Field(sa_type=BigId)
    # In the currency's minor unit (pence): money is never a float.
    amount_pence: int = Field(sa_type=BigId)
    currency: str = Field(default="GBP", max_length=3)
    # Where the figure comes from, in words (e.g. "the UK median hourly wage, ONS ASHE 2025").
    basis: str = Field(max_length=500)
    set_at: dt.datetime = Field(default_factory=utc_now, sa_type=DateTime(timezone=True))
    # The organisation's local date it was set on, as reports show it.
    set_on: dt.date
    set_by_user_id: int | None = Field(default=None, foreign_key="users.id", sa_type=BigId)
