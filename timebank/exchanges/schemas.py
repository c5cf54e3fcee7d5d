import datetime as dt
from collections.abc import Mapping

from pydantic import BaseModel, Field, model_validator

from timebank.api.schemas import AmountInput, CalendarDate, InputModel, WholeNumber, decode_cursor, encode_cursor
from timebank.ledger import PostedTransaction, minutes_to_hours
from timebank.ledger.posting import MAX_DESCRIPTION, MAX_LEGS
from timebank.ledger.reading import TransactionCursor
from timebank.ledger.visibility import legs_a_member_sees
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
    display_name: str = Field(description="Whose account: the member's name, or 'Agency account', 'Community pot'.")
    minutes: int
    hours: str
    balance_after: int | None = Field(
        description="The account's balance in minutes right after this posting. Always null in a member's view "
        "of another account's posting: a member never sees anyone else's balance."
    )


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
    postings: list[PostingPublic] = Field(
        description="Every leg, for staff and coordinators. A member sees their own leg in full and their "
        "counterpart's name and amount; of a group activity, only their own leg and the giving side "
        "(who ran it), never the other attendees."
    )

    @classmethod
    def of(
        cls, posted: PostedTransaction, labels: Mapping[int, str], member_account_id: int | None = None
    ) -> "TransactionPublic":
        """The transaction as its reader may see it: everything, or (``member_account_id`` given)
        as the owner of that account may see it."""
        postings = posted.postings
        if member_account_id is not None:
            visible = legs_a_member_sees(
                posted.kind, posted.reverses_kind, [(p.account_id, p.minutes) for p in postings], member_account_id
            )
            postings = tuple(p for p in postings if p.account_id in visible)
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
                    display_name=labels.get(p.account_id, ""),
                    minutes=p.minutes,
                    hours=minutes_to_hours(p.minutes),
                    balance_after=p.balance_after
                    if member_account_id is None or p.account_id == member_account_id
                    else None,
                )
                for p in postings
            ],
        )


class TransactionPage(BaseModel):
    items: list[TransactionPublic]
    next_cursor: str | None = Field(description="Pass as ?cursor= for the next page; null on the last page.")


def encode_transaction_cursor(posted: PostedTransaction) -> str:
    return encode_cursor(posted.occurred_on, posted.id)


def decode_transaction_cursor(cursor: str) -> TransactionCursor:
    return TransactionCursor(*decode_cursor(cursor))
