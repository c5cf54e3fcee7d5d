import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKeyConstraint, Index
from sqlmodel import Field, SQLModel

from timebank.models.base import BigId, id_field, utc_now


class Change(SQLModel, table=True):
    """One change to people or settings, for the organisation's history: who, when, what
    before and after. Written in the same database transaction as the change itself.

    Append-only like the ledger: the database refuses UPDATE and DELETE (migration 0011),
    except erasure replacing personal data by a marker (docs/architecture.md, "History").
    """

    __tablename__ = "changes"
    __table_args__ = (
        ForeignKeyConstraint(["organisation_id"], ["organisations.id"]),
        ForeignKeyConstraint(["organisation_id", "member_id"], ["members.organisation_id", "members.id"]),
        ForeignKeyConstraint(
            ["organisation_id", "transaction_id"], ["transactions.organisation_id", "transactions.id"]
        ),
        ForeignKeyConstraint(["actor_user_id"], ["users.id"]),
        # Newest first, by organisation, optionally by member: the history page's queries.
        Index("ix_changes_organisation_id_id", "organisation_id", "id"),
        Index("ix_changes_organisation_id_member_id_id", "organisation_id", "member_id", "id"),
    )

    id: int | None = id_field()
    organisation_id: int = Field(sa_type=BigId)
    changed_at: dt.datetime = Field(default_factory=utc_now, sa_type=DateTime(timezone=True))
    # Who did it; NULL for the command line (imports, organisation creation by an operator).
    actor_user_id: int | None = Field(default=None, sa_type=BigId)
    # Their name in this organisation when they did it (names change; the history should not).
    actor_name: str | None = Field(default=None, max_length=200)
    # One of timebank.history.service.ChangeKind.
    kind: str = Field(max_length=40)
    # The member it is about, if any.
    member_id: int | None = Field(default=None, sa_type=BigId)
    # For a reversal: the transaction reversed.
    transaction_id: int | None = Field(default=None, sa_type=BigId)
    # What the changed fields were before and are after; never a password or its hash.
    before_state: dict[str, Any] | None = Field(default=None, sa_type=JSON)
    after_state: dict[str, Any] | None = Field(default=None, sa_type=JSON)
