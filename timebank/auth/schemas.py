import datetime as dt

from pydantic import BaseModel, ConfigDict, Field

from timebank.api.schemas import InputModel
from timebank.models import Role


class TokenRequest(InputModel):
    # Passwords are taken exactly as typed; only the username is normalised.
    model_config = ConfigDict(str_strip_whitespace=False)

    username: str = Field(min_length=1, max_length=150)
    password: str = Field(min_length=1, max_length=1024)


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: dt.datetime
    # True after a temporary password: only POST /api/v1/me/password is allowed until it is changed.
    must_change_password: bool = False


class PasswordChange(InputModel):
    model_config = ConfigDict(str_strip_whitespace=False)

    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class MyMembership(BaseModel):
    slug: str
    name: str
    role: Role
    member_id: int
    account_id: int


class Me(BaseModel):
    id: int
    username: str
    is_site_admin: bool
    organisations: list[MyMembership]
