import datetime as dt
import enum

from sqlalchemy import CheckConstraint, Enum, ForeignKeyConstraint, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from timebank.models.base import BigId, created_at_field, id_field


class AccountKind(enum.StrEnum):
    MEMBER = "member"
    # Hours members give to, or receive from, the service itself. No lower limit.
    AGENCY = "agency"
    # The community pot: donated hours, granted onward. Never below zero.
    POT = "pot"


class Account(SQLModel, table=True):
    """A time account. ``balance_minutes`` is always the sum of the account's postings."""

    __tablename__ = "accounts"
    __table_args__ = (
        # Target of the composite foreign key from postings: same organisation, by construction.
        UniqueConstraint("organisation_id", "id"),
        # Composite, like every foreign key between tenant tables: a distributed database
        # (Citus) can only enforce one whose rows live on the same node.
        ForeignKeyConstraint(["organisation_id", "member_id"], ["members.organisation_id", "members.id"]),
        CheckConstraint(
            "min_balance_minutes IS NULL OR balance_minutes >= min_balance_minutes",
            name="balance_not_below_limit",
        ),
        CheckConstraint("version >= 0", name="version_not_negative"),
        CheckConstraint("(kind = 'member') = (member_id IS NOT NULL)", name="member_accounts_have_a_member"),
        # One agency account and at most one pot per organisation.
        Index(
            "uq_accounts_organisation_id_kind_shared",
            "organisation_id",
            "kind",
            unique=True,
            sqlite_where=text("kind != 'member'"),
            postgresql_where=text("kind != 'member'"),
        ),
    )

    id: int | None = id_field()
    organisation_id: int = Field(foreign_key="organisations.id", sa_type=BigId)
    kind: AccountKind = Field(
        sa_type=Enum(AccountKind, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e])
    )
    member_id: int | None = Field(default=None, sa_type=BigId, unique=True)
    balance_minutes: int = Field(default=0, sa_type=BigId)
    # The floor the balance may not go below right now; NULL means no floor (agency).
    # For a member it is the organisation's minimum, or the balance itself if that is
    # already lower (a tightened limit never makes an existing balance illegal).
    min_balance_minutes: int | None = Field(default=None, sa_type=BigId)
    # Bumped by every posting; postings record it, unique per account, so a lost
    # update cannot go unnoticed.
    version: int = Field(default=0, sa_type=BigId)
    is_active: bool = True
    created_at: dt.datetime = created_at_field()
