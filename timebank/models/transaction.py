import datetime as dt
import enum

from sqlalchemy import CheckConstraint, DateTime, Enum, ForeignKeyConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from timebank.models.base import BigId, id_field, utc_now


class TransactionKind(enum.StrEnum):
    # One giver, one receiver: member to member, or either side the agency account.
    EXCHANGE = "exchange"
    # One activity, many legs (a volunteer runs a session, several attendees each pay).
    GROUP = "group"
    DONATION = "donation"  # member -> pot
    GRANT = "grant"  # pot -> member
    OPENING_BALANCE = "opening_balance"  # imported from a paper or spreadsheet ledger
    REVERSAL = "reversal"


class Transaction(SQLModel, table=True):
    """A journal entry. Never updated or deleted; corrected by a reversal."""

    __tablename__ = "transactions"
    __table_args__ = (
        UniqueConstraint("organisation_id", "id"),
        UniqueConstraint("organisation_id", "idempotency_key"),
        ForeignKeyConstraint(["organisation_id", "category_id"], ["categories.organisation_id", "categories.id"]),
        ForeignKeyConstraint(["organisation_id", "reverses_id"], ["transactions.organisation_id", "transactions.id"]),
        CheckConstraint("(kind = 'reversal') = (reverses_id IS NOT NULL)", name="reversals_name_their_original"),
        Index("ix_transactions_organisation_id_occurred_on", "organisation_id", "occurred_on"),
    )

    id: int | None = id_field()
    organisation_id: int = Field(foreign_key="organisations.id", sa_type=BigId)
    kind: TransactionKind = Field(
        sa_type=Enum(TransactionKind, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])
    )
    # The organisation's local date the help was given; never in the future.
    occurred_on: dt.date
    recorded_at: dt.datetime = Field(default_factory=utc_now, sa_type=DateTime(timezone=True))
    # NULL only for entries the command line makes with no signed-in user (imports).
    recorded_by_user_id: int | None = Field(default=None, foreign_key="users.id", sa_type=BigId)
    description: str = Field(max_length=500)
    category_id: int | None = Field(default=None, sa_type=BigId)
    idempotency_key: str = Field(max_length=128)
    # SHA-256 of the canonical request: the same key with another request is a conflict.
    request_fingerprint: str = Field(max_length=64)
    # Unique: a transaction is reversed at most once.
    reverses_id: int | None = Field(default=None, sa_type=BigId, unique=True)


class Posting(SQLModel, table=True):
    """One leg of a transaction: signed minutes on one account (+ credit for giving)."""

    __tablename__ = "postings"
    __table_args__ = (
        CheckConstraint("minutes <> 0", name="minutes_not_zero"),
        # A lost update (two postings computed from the same account state) collides here.
        UniqueConstraint("account_id", "account_version"),
        ForeignKeyConstraint(
            ["organisation_id", "transaction_id"], ["transactions.organisation_id", "transactions.id"]
        ),
        ForeignKeyConstraint(["organisation_id", "account_id"], ["accounts.organisation_id", "accounts.id"]),
        Index("ix_postings_account_id_occurred_on", "account_id", "occurred_on"),
        Index("ix_postings_transaction_id", "transaction_id"),
    )

    id: int | None = id_field()
    organisation_id: int = Field(foreign_key="organisations.id", sa_type=BigId)
    transaction_id: int = Field(sa_type=BigId)
    account_id: int = Field(sa_type=BigId)
    minutes: int = Field(sa_type=BigId)
    # The account's balance and version right after this posting (in recording order).
    balance_after: int = Field(sa_type=BigId)
    account_version: int = Field(sa_type=BigId)
    # Copied from the transaction so statements and as-of balances read one index.
    occurred_on: dt.date
