import datetime as dt

from pydantic import BaseModel, EmailStr, Field

from timebank.api.schemas import Amount, CalendarDate, InputModel
from timebank.models import Role

DisplayName = str


class MemberCreate(InputModel):
    display_name: str = Field(min_length=1, max_length=200, examples=["Alice Murray"])
    username: str | None = Field(
        default=None, min_length=1, max_length=150, description="Only for members who will sign in."
    )
    password: str | None = Field(default=None, min_length=8, max_length=1024)
    email: EmailStr | None = None
    role: Role = Role.MEMBER
    joined_on: CalendarDate | None = None


class MemberUpdate(InputModel):
    display_name: str | None = Field(default=None, min_length=1, max_length=200)
    email: EmailStr | None = None
    role: Role | None = Field(default=None, description="Coordinators only.")
    is_active: bool | None = Field(
        default=None, description="false deactivates: the account and its history stay, new exchanges are refused."
    )


class MemberPublic(BaseModel):
    id: int
    display_name: str
    email: str | None
    role: Role
    username: str | None
    joined_on: dt.date
    is_active: bool
    account_id: int
    balance: Amount


class MemberPage(BaseModel):
    items: list[MemberPublic]
    total: int
    limit: int
    offset: int
