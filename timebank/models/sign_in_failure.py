import datetime as dt

from sqlalchemy import DateTime
from sqlmodel import Field, SQLModel


class SignInFailure(SQLModel, table=True):
    """Failed sign-ins counted per bucket ("user:<name>" or "client:<address>").

    In the database rather than in memory so that every worker process, and a
    restarted one, sees the same counts.
    """

    __tablename__ = "sign_in_failures"

    bucket: str = Field(primary_key=True, max_length=200)
    failures: int = 0
    window_started_at: dt.datetime = Field(sa_type=DateTime(timezone=True))
