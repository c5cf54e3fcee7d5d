import datetime as dt
from typing import Any

from pydantic import BaseModel, Field, StrictInt, field_validator

from timebank.api.schemas import Amount, HoursText, InputModel, WholeNumber
from timebank.ledger import errors
from timebank.ledger.amounts import hours_to_minutes
from timebank.models import category_key
from timebank.orgs.service import LOWEST_MIN_BALANCE

MinBalanceMinutes = StrictInt


def _min_balance_from_hours(value: object) -> int:
    try:
        minutes = hours_to_minutes(value)
    except errors.InvalidEntry as exc:
        raise ValueError(exc.message) from None
    if minutes > 0:
        raise ValueError("the minimum balance must be zero or negative, e.g. -20")
    if minutes < -10_000 * 60:
        raise ValueError("the minimum balance may be at most 10,000 hours below zero")
    return minutes


class _MinBalanceInput(InputModel):
    min_balance_minutes: WholeNumber | None = Field(default=None, le=0, ge=LOWEST_MIN_BALANCE)
    min_balance_hours: HoursText | None = None

    @field_validator("min_balance_hours", mode="before")
    @classmethod
    def _check_hours(cls, value: object) -> object:
        if value is not None:
            _min_balance_from_hours(value)
        return value

    def min_balance(self) -> int | None:
        """The minimum balance in minutes, if one was given (in either unit, not both)."""
        if self.min_balance_minutes is not None and self.min_balance_hours is not None:
            raise errors.InvalidEntry("give the minimum balance as min_balance_minutes or min_balance_hours, not both")
        if self.min_balance_hours is not None:
            return _min_balance_from_hours(self.min_balance_hours)
        return self.min_balance_minutes


class FirstCoordinatorInput(InputModel):
    display_name: str = Field(min_length=1, max_length=200)
    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=8, max_length=1024)


class OrganisationCreate(_MinBalanceInput):
    slug: str = Field(min_length=1, max_length=63, examples=["holy-cross"])
    name: str = Field(min_length=1, max_length=200)
    timezone: str = Field(default="Europe/London", max_length=64)
    first_coordinator: FirstCoordinatorInput | None = None


CategoryName = str


class OrganisationUpdate(_MinBalanceInput):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = Field(default=None, max_length=64)
    categories: list[CategoryName] | None = Field(
        default=None,
        max_length=100,
        description="The full list of categories in use. Names left out are retired (kept on old entries).",
    )
    books_closed_through: Any = Field(
        default=None,
        description="Refused: the books close only by closing a month (POST /periods/{YYYY-MM}/close).",
    )

    @field_validator("categories")
    @classmethod
    def _check_categories(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        names = [" ".join(name.split()) for name in value]
        for name in names:
            if not 1 <= len(name) <= 80:
                raise ValueError("each category name must be 1 to 80 characters")
        if len({category_key(name) for name in names}) != len(names):
            raise ValueError("category names must be different from each other")
        return names


class OrganisationPublic(BaseModel):
    id: int
    slug: str
    name: str
    timezone: str
    min_balance: Amount
    books_closed_through: dt.date | None
    categories: list[str]
    agency_account_id: int
    pot_account_id: int
