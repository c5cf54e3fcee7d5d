"""The report as the API answers it. A closed month's report is stored in exactly this shape."""

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from timebank.api.schemas import Amount, InputModel


class Money(BaseModel):
    amount: str = Field(description='Two decimals, e.g. "12.50".', examples=["12.50"])
    currency: str = Field(examples=["GBP"])


class KindFigures(BaseModel):
    count: int
    minutes: int
    hours: str


class ByKind(BaseModel):
    person_to_person: KindFigures
    person_to_agency: KindFigures
    agency_to_person: KindFigures
    group: KindFigures
    pot_donation: KindFigures
    pot_grant: KindFigures
    reversal: KindFigures
    opening_balance: KindFigures


class MemberRef(BaseModel):
    member_id: int = Field(description="The member number (stable; shown instead of names when anonymised).")
    name: str


class NewMember(MemberRef):
    joined_on: dt.date


class DormantMember(MemberRef):
    last_active_on: dt.date


class RankedMember(MemberRef):
    minutes: int
    hours: str


class CategoryFigures(BaseModel):
    category_id: int | None = Field(description="null: exchanges recorded without a category.")
    category: str
    exchanges: int
    minutes: int = Field(description="Net: exchanges and group activities, less reversals of them.")
    hours: str


class MemberRow(MemberRef):
    account_id: int
    opening_balance: Amount
    given: Amount
    received: Amount
    other: Amount = Field(description="Pot donations and grants, opening balances, reversals (signed).")
    closing_balance: Amount


class TrendMonth(BaseModel):
    month: str
    minutes: int
    hours: str
    exchanges: int
    active_members: int


class TrialBalance(BaseModel):
    as_of: dt.date
    total: Amount
    held: bool = Field(description="True when the organisation's accounts sum to zero as of the period's end.")
    member_rows_held: bool = Field(
        description="True when every member row has opening + given - received + other = closing."
    )


class SocialValue(BaseModel):
    estimate: bool = True
    rate: Money | None = Field(description="The hourly value; null until a coordinator sets one.")
    basis: str
    set_on: dt.date | None
    value: Money | None


class Correction(BaseModel):
    transaction_id: int
    occurred_on: dt.date
    reverses_id: int
    reverses_occurred_on: dt.date
    reverses_kind: str
    minutes: int
    hours: str
    description: str


class MonthlyReport(BaseModel):
    """One month (``month``) or a range of whole months (``from`` and ``to``)."""

    model_config = ConfigDict(populate_by_name=True)

    month: str | None = Field(default=None, examples=["2026-10"])
    from_month: str | None = Field(default=None, alias="from", serialization_alias="from")
    to_month: str | None = Field(default=None, alias="to", serialization_alias="to")
    exchanges: int
    reversals: int
    hours_exchanged: Amount
    hours_exchanged_gross: Amount
    by_kind: ByKind
    active_members: int
    members_who_gave: int
    members_who_received: int
    new_members: list[NewMember]
    dormant_members: list[DormantMember]
    never_active: list[MemberRef]
    by_category: list[CategoryFigures]
    top_givers: list[RankedMember]
    top_receivers: list[RankedMember]
    members: list[MemberRow]
    corrections: list[Correction] = Field(
        description="Reversals dated in the period, each with the transaction it corrects "
        "(often from an earlier month)."
    )
    trend: list[TrendMonth]
    trial_balance: TrialBalance
    social_value: SocialValue
    definitions: dict[str, str]
    closed: bool


class HourlyRateInput(InputModel):
    amount: str = Field(
        pattern=r"^[0-9]{1,7}(\.[0-9]{1,2})?$", description='Per hour, e.g. "12.60".', examples=["12.60"]
    )
    currency: str = Field(default="GBP", pattern=r"^[A-Z]{3}$")
    basis: str = Field(
        min_length=1,
        max_length=500,
        description="Where the figure comes from, in words (shown with every report).",
        examples=["The UK National Living Wage from April 2026"],
    )


class HourlyRatePublic(BaseModel):
    id: int
    rate: Money
    basis: str
    set_on: dt.date
    set_at: dt.datetime
    set_by_user_id: int | None


class HourlyRateHistory(BaseModel):
    current: HourlyRatePublic | None
    history: list[HourlyRatePublic] = Field(description="Every rate ever set, newest first.")


class PeriodClosePublic(BaseModel):
    month: str
    closed_through: dt.date
    closed_at: dt.datetime
    closed_by_user_id: int | None
    books_closed_through: dt.date
