import datetime as dt

from sqlalchemy import DateTime
from sqlmodel import Field, SQLModel

from timebank.models.base import BigId, created_at_field, id_field


class BrowserSession(SQLModel, table=True):
    """A signed-in browser (the pages' cookie). Only the SHA-256 of the cookie value is stored.

    Tenant-free like users and tokens: one sign-in may open several organisations.
    Checked on every page request in the same query as the user and the membership
    (timebank/web/sessions.py), so revoking it, deactivating the user or resetting
    the password ends it at once on every worker.
    """

    __tablename__ = "browser_sessions"

    id: int | None = id_field()
    user_id: int = Field(foreign_key="users.id", sa_type=BigId, index=True)
    session_hash: str = Field(max_length=64, unique=True)
    created_at: dt.datetime = created_at_field()
    # Moved forward by page requests (at most once a minute) and by "Stay signed in".
    last_seen_at: dt.datetime = Field(sa_type=DateTime(timezone=True))
    # The longest a session lives, however active: a forgotten shared computer still closes.
    expires_at: dt.datetime = Field(sa_type=DateTime(timezone=True))
    revoked_at: dt.datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
