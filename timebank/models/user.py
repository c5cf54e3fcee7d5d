import datetime as dt

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from timebank.models.base import BigId, created_at_field, id_field


class User(SQLModel, table=True):
    """A login identity. Global, not per organisation: one person may belong to several.

    This is the one tenant-free table besides tokens (see docs/architecture.md): on a
    distributed database it becomes a reference table.
    """

    __tablename__ = "users"

    id: int | None = id_field()
    # Stored normalised (trimmed, lower case) so sign-in ignores case and spacing.
    username: str = Field(max_length=150, unique=True)
    password_hash: str | None = Field(default=None, max_length=255)
    email: str | None = Field(default=None, max_length=254)
    is_active: bool = True
    is_site_admin: bool = False
    # A temporary password (given by staff, or at registration) must be changed at the next
    # sign-in; until then the pages ask for it and the API refuses all but POST /api/v1/me/password.
    must_change_password: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    created_at: dt.datetime = created_at_field()
    # Set at each successful sign-in, by the pages or the API (auth/service.py: authenticate);
    # NULL for someone who has never signed in.
    last_signed_in_at: dt.datetime | None = Field(default=None, sa_type=sa.DateTime(timezone=True))
    # Bumped by the database itself (migration 0012's triggers) whenever anything this user's
    # signed-in standing is read from changes: a worker's cached token check is used only
    # while this is unchanged (auth/sign_in_cache.py). Never set by the application.
    sign_in_version: int = Field(default=0, sa_type=BigId, sa_column_kwargs={"server_default": "0"})
