import base64
import binascii
import datetime as dt

from pydantic import BaseModel, Field, model_validator

from timebank.api.schemas import AmountInput, CalendarDate, InputModel, WholeNumber
from timebank.ledger import PostedTransaction, errors, minutes_to_hours
from timebank.ledger.posting import MAX_DESCRIPTION, MAX_LEGS
from timebank.ledger.reading import TransactionCursor
from timebank.models import TransactionKind

AccountId = WholeNumber


class Leg(AmountInput):
    account_id: AccountId


class ExchangeCreate(AmountInput):
    """One giver and one receiver with ``minutes`` or ``hours``; or a group activity with
    ``givers`` and ``receivers`` (each an account and an amount)."""

    giver_account_id: AccountId | None = None
    receiver_account_id: AccountId | None = None
    givers: list[Leg] | None = Field(default=None, min_length=1, max_length=MAX_LEGS)
    receivers: list[Leg] | None = Field(default=None, min_length=1, max_length=MAX_LEGS)
    occurred_on: CalendarDate = Field(description="The day the help was given, in the organisation's time zone.")
    description: str = Field(min_length=1, max_length=MAX_DESCRIPTION)
    category: str | None = Field(default=None, max_length=80)

    @model_validator(mode="after")
    def _one_shape(self) -> "ExchangeCreate":
        single = (self.giver_account_id, self.receiver_account_id, self.minutes, self.hours)
        group = (self.givers, self.receivers)
        if any(value is not None for value in group):
            if any(value is not None for value in single):
                raise ValueError(
                    "give either giver_account_id, receiver_account_id and an amount, or givers and receivers, not both"
                )
            if self.givers is None or self.receivers is None:
                raise ValueError("a group activity needs both givers and receivers")
        elif self.giver_account_id is None or self.receiver_account_id is None:
            raise ValueError("giver_account_id and receiver_account_id are required")
        return self

    @property
    def is_group(self) -> bool:
        return self.givers is not None


class ReversalCreate(InputModel):
    reason: str = Field(min_length=1, max_length=MAX_DESCRIPTION, examples=["Logged against the wrong member"])


class PostingPublic(BaseModel):
    account_id: int
    minutes: int
    hours: str
    balance_after: int = Field(description="The account's balance in minutes right after this posting.")


class TransactionPublic(BaseModel):
    id: int
    kind: TransactionKind
    occurred_on: dt.date
    recorded_at: dt.datetime
    recorded_by: int | None = Field(description="The user who recorded it.")
    description: str
    category: str | None
    reverses_id: int | None
    reversed_by_id: int | None
    postings: list[PostingPublic]

    @classmethod
    def of(cls, posted: PostedTransaction) -> "TransactionPublic":
        return cls(
            id=posted.id,
            kind=posted.kind,
            occurred_on=posted.occurred_on,
            recorded_at=posted.recorded_at,
            recorded_by=posted.recorded_by_user_id,
            description=posted.description,
            category=posted.category,
            reverses_id=posted.reverses_id,
            reversed_by_id=posted.reversed_by_id,
            postings=[
                PostingPublic(
                    account_id=p.account_id,
                    minutes=p.minutes,
                    hours=minutes_to_hours(p.minutes),
                    balance_after=p.balance_after,
                )
                for p in posted.postings
            ],
        )


class TransactionPage(BaseModel):
    items: list[TransactionPublic]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")


def encode_cursor(posted: PostedTransaction) -> str:
    raw = f"{posted.occurred_on.isoformat()}:{posted.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> TransactionCursor:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        day, _, ident = raw.partition(":")
        if not ident.isdigit() or not ident.isascii():
            raise ValueError
        return TransactionCursor(dt.date.fromisoformat(day), int(ident))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise errors.InvalidEntry("the cursor is not one this API gave out; start again without it") from None
