import datetime as dt

from sqlalchemy import DateTime, ForeignKeyConstraint, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from timebank.models.base import BigId, id_field, utc_now


class CorrectionRequest(SQLModel, table=True):
    """A member's "this entry is wrong" about a transaction on their own account.

    Never updated or deleted (only erasure blanks its words); it changes nothing in the
    ledger by itself. Its answer is a row of ``correction_answers``: open until then.
    """

    __tablename__ = "correction_requests"
    __table_args__ = (
        # Target of the composite foreign key from correction_answers.
        UniqueConstraint("organisation_id", "id"),
        UniqueConstraint("organisation_id", "idempotency_key"),
        ForeignKeyConstraint(
            ["organisation_id", "transaction_id"], ["transactions.organisation_id", "transactions.id"]
        ),
        ForeignKeyConstraint(["organisation_id", "account_id"], ["accounts.organisation_id", "accounts.id"]),
        ForeignKeyConstraint(["organisation_id", "member_id"], ["members.organisation_id", "members.id"]),
        Index("ix_correction_requests_organisation_id_transaction_id", "organisation_id", "transaction_id"),
        Index("ix_correction_requests_organisation_id_created_at", "organisation_id", "created_at"),
    )

    id: int | None = id_field()
    organisation_id: int = Field(foreign_key="organisations.id", sa_type=BigId)
    transaction_id: int = Field(sa_type=BigId)
    # The asker's own account, which the entry has a posting on (checked when it is made).
    account_id: int = Field(sa_type=BigId)
    member_id: int = Field(sa_type=BigId)
    requested_by_user_id: int = Field(foreign_key="users.id", sa_type=BigId)
    what_is_wrong: str = Field(max_length=1000)
    what_it_should_be: str | None = Field(default=None, max_length=1000)
    created_at: dt.datetime = Field(default_factory=utc_now, sa_type=DateTime(timezone=True))
    idempotency_key: str = Field(max_length=128)
    # SHA-256 of the canonical request: the same key with another request is a conflict.
    request_fingerprint: str = Field(max_length=64)


class CorrectionAnswer(SQLModel, table=True):
    """Staff's or a coordinator's answer to a correction request: at most one each, never changed."""

    __tablename__ = "correction_answers"
    __table_args__ = (
        UniqueConstraint("organisation_id", "idempotency_key"),
        # A request is answered once; a second answer is refused (409).
        UniqueConstraint("organisation_id", "correction_id"),
        ForeignKeyConstraint(
            ["organisation_id", "correction_id"], ["correction_requests.organisation_id", "correction_requests.id"]
        ),
        ForeignKeyConstraint(["organisation_id", "reversal_id"], ["transactions.organisation_id", "transactions.id"]),
    )

    id: int | None = id_field()
    organisation_id: int = Field(foreign_key="organisations.id", sa_type=BigId)
    correction_id: int = Field(sa_type=BigId)
    answer: str = Field(max_length=1000)
    # The reversal of the entry when it had been reversed by the time of the answer.
    reversal_id: int | None = Field(default=None, sa_type=BigId)
    answered_by_user_id: int = Field(foreign_key="users.id", sa_type=BigId)
    answered_at: dt.datetime = Field(default_factory=utc_now, sa_type=DateTime(timezone=True))
    idempotency_key: str = Field(max_length=128)
    request_fingerprint: str = Field(max_length=64)
