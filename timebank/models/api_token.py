import datetime as dt

from sqlalchemy import DateTime
from sqlmodel import Field, SQLModel

from timebank.models.base import BigId, created_at_field, id_field


class ApiToken(SQLModel, table=True):
    """A bearer token. Only its SHA-256 is stored: a leaked table signs nobody in.

    Tenant-free like users (a token is a login, which may span organisations).
    """

    __tablename__ = "api_tokens"

    id: int | None = id_field()
    user_id: int = Field(foreign_key="users.id", sa_type=BigId, index=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: dt.datetime = created_at_field()
    expires_at: dt.datetime = Field(sa_type=DateTime(timezone=True))
    revoked_at: dt.datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
