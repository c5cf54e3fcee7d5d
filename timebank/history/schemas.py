import datetime as dt
from typing import Any

from pydantic import BaseModel, Field

from timebank.history.service import ChangeKind


class ChangePublic(BaseModel):
    id: int
    changed_at: dt.datetime = Field(description="When, in UTC.")
    by_user_id: int | None = Field(description="Who did it (a user id); null for the command line.")
    by: str | None = Field(description="Their name in this organisation when they did it.")
    kind: ChangeKind
    member_id: int | None = Field(description="The member it is about, if any.")
    member: str | None = Field(description="That member's name now.")
    transaction_id: int | None = Field(description="For a reversal: the transaction reversed.")
    before: Any = Field(description="The changed fields before (null when there was nothing before).")
    after: Any = Field(description="The changed fields after.")


class ChangePage(BaseModel):
    items: list[ChangePublic]
    total: int
    limit: int
    offset: int
