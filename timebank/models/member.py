import datetime as dt
import enum

from sqlalchemy import Enum, UniqueConstraint
from sqlmodel import Field, SQLModel

from timebank.models.base import BigId, created_at_field, id_field


class Role(enum.StrEnum):
    MEMBER = "member"
    STAFF = "staff"
    COORDINATOR = "coordinator"


class Member(SQLModel, table=True):
    """A person's membership of one organisation. Many members never sign in (no user)."""

    __tablename__ = "members"
    __table_args__ = (
        UniqueConstraint("organisation_id", "user_id"),
        # Target of the composite foreign key from accounts: same organisation, by construction.
        UniqueConstraint("organisation_id", "id"),
    )

    id: int | None = id_field()
    organisation_id: int = Field(foreign_key="organisations.id", sa_type=BigId, index=True)
    user_id: int | None = Field(default=None, foreign_key="users.id", sa_type=BigId)
    role: Role = Field(
        default=Role.MEMBER,
        sa_type=Enum(Role, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]),
    )
    display_name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=254)
    joined_on: dt.date
    is_active: bool = True
    created_at: dt.datetime = created_at_field()
