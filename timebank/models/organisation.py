import datetime as dt
from typing import Any

from sqlalchemy import JSON, CheckConstraint
from sqlmodel import Field, SQLModel

from timebank.models.base import BigId, created_at_field, id_field


class Organisation(SQLModel, table=True):
    """A day service (or any group) running its own time bank.

    Its ``id`` is the organisation key every other tenant table carries.
    """

    __tablename__ = "organisations"
    __table_args__ = (CheckConstraint("min_balance_minutes <= 0", name="min_balance_not_positive"),)

    id: int | None = id_field()
    slug: str = Field(max_length=63, unique=True)
    name: str = Field(max_length=200)
    timezone: str = Field(max_length=64, default="Europe/London")
    # The lowest balance a member account may reach, e.g. -1200 (20 hours of credit).
    min_balance_minutes: int = Field(default=-1200, sa_type=BigId)
    # Exchanges dated on or before this local date are refused (books closed for that period).
    books_closed_through: dt.date | None = None
    settings: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    created_at: dt.datetime = created_at_field()
