import datetime as dt

from pydantic import BaseModel, Field

from timebank.api.schemas import Amount, amount
from timebank.ledger.reading import AccountView
from timebank.models import AccountKind, TransactionKind


class AccountPublic(BaseModel):
    id: int
    kind: AccountKind
    member_id: int | None
    display_name: str
    balance: Amount
    min_balance: Amount | None = Field(description="The lowest balance spending may reach; null: no limit.")
    is_active: bool

    @classmethod
    def of(cls, view: AccountView) -> "AccountPublic":
        return cls(
            id=view.id,
            kind=view.kind,
            member_id=view.member_id,
            display_name=view.display_name,
            balance=amount(view.balance_minutes),
            min_balance=amount(view.min_balance_minutes) if view.min_balance_minutes is not None else None,
            is_active=view.is_active,
        )


class AccountPage(BaseModel):
    items: list[AccountPublic]
    total: int
    limit: int
    offset: int


class StatementLine(BaseModel):
    transaction_id: int
    kind: TransactionKind
    occurred_on: dt.date
    recorded_at: dt.datetime
    description: str
    category: str | None
    counterparts: list[str] = Field(
        description="Who was on the other side (of a group activity: only who ran it, never the other attendees)."
    )
    minutes: int = Field(description="+ earned (gave help), - spent (received help).")
    hours: str
    running_balance: Amount


class StatementPublic(BaseModel):
    account_id: int
    from_date: dt.date = Field(alias="from", serialization_alias="from")
    to_date: dt.date = Field(alias="to", serialization_alias="to")
    opening_balance: Amount = Field(description="The balance before the whole period's first day.")
    entries: list[StatementLine] = Field(description="This page's entries, oldest first.")
    closing_balance: Amount = Field(description="The balance at the end of the whole period.")
    next_cursor: str | None = Field(
        default=None, description="Pass as ?cursor= (with the same from and to) for the next page; null on the last."
    )

    model_config = {"populate_by_name": True}
