"""Sign-in and identity: /api/v1/auth/token and /api/v1/me."""

import datetime as dt

from litestar import Controller, Request, delete, get, post
from litestar.di import Provide
from litestar.exceptions import NotAuthorizedException, ValidationException
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from sqlalchemy import and_, select

from timebank.api.dependencies import CallerDep, DatabaseDep, SettingsDep
from timebank.api.schemas import error_responses
from timebank.auth.context import provide_caller, provide_caller_with_any_password
from timebank.auth.schemas import Me, MyMembership, PasswordChange, TokenRequest, TokenResponse
from timebank.auth.service import WrongCredentials, WrongCurrentPassword, authenticate, change_password
from timebank.auth.tokens import issue_token, revoke_token
from timebank.models import Account, Member, Organisation, Role

WRONG_CREDENTIALS = "wrong username or password"

members = Member.__table__
accounts = Account.__table__
organisations = Organisation.__table__


def client_address(request: Request) -> str:
    """What the sign-in rate limit counts per client."""
    return request.client.host if request.client else "unknown"


class AuthController(Controller):
    path = "/api/v1/auth"
    tags = ["sign-in"]

    @post(
        "/token",
        status_code=HTTP_200_OK,
        summary="Sign in: exchange a username and password for a bearer token",
        exclude_from_auth=True,
        security=[{}],  # public: this is how a token is obtained
        responses=error_responses(400, 401, 429, 503),
    )
    async def sign_in(
        self, request: Request, data: JSONBody[TokenRequest], db: DatabaseDep, settings: SettingsDep
    ) -> TokenResponse:
        try:
            user = await authenticate(db, settings, data.username, data.password, client_address(request))
        except WrongCredentials:
            raise NotAuthorizedException(WRONG_CREDENTIALS) from None
        token, expires_at = await issue_token(db, user.user_id, dt.timedelta(hours=settings.token_ttl_hours))
        return TokenResponse(access_token=token, expires_at=expires_at, must_change_password=user.must_change_password)

    @delete(
        "/token",
        status_code=HTTP_204_NO_CONTENT,
        summary="Sign out: revoke the token in use",
        # Signing out is allowed with a temporary password too.
        dependencies={"caller": Provide(provide_caller_with_any_password)},
        responses=error_responses(401, 503),
    )
    async def sign_out(self, caller: CallerDep, db: DatabaseDep) -> None:
        await revoke_token(db, caller.token_hash)


@get(
    "/api/v1/me",
    summary="The signed-in user and their organisations",
    tags=["sign-in"],
    dependencies={"caller": Provide(provide_caller)},
    responses=error_responses(401, 503),
)
async def me(caller: CallerDep, db: DatabaseDep) -> Me:
    async with db.autocommit() as conn:
        rows = (
            await conn.execute(
                select(
                    organisations.c.slug,
                    organisations.c.name,
                    members.c.role,
                    members.c.id.label("member_id"),
                    accounts.c.id.label("account_id"),
                )
                .select_from(
                    members.join(organisations, organisations.c.id == members.c.organisation_id).join(
                        accounts,
                        and_(
                            accounts.c.organisation_id == members.c.organisation_id,
                            accounts.c.member_id == members.c.id,
                        ),
                    )
                )
                .where(members.c.user_id == caller.user_id, members.c.is_active.is_(True))
                .order_by(organisations.c.slug)
            )
        ).all()
    return Me(
        id=caller.user_id,
        username=caller.username,
        is_site_admin=caller.is_site_admin,
        organisations=[
            MyMembership(slug=r.slug, name=r.name, role=Role(r.role), member_id=r.member_id, account_id=r.account_id)
            for r in rows
        ],
    )


@post(
    "/api/v1/me/password",
    status_code=HTTP_204_NO_CONTENT,
    summary="Change your password (the one thing allowed while a temporary password is in use)",
    description=(
        "Give the current password and a new one (at least 8 characters). Clears the need to change a "
        "temporary password, and signs out every other token and browser session of the user; the "
        "token in use stays valid. A wrong current password counts as a failed sign-in."
    ),
    tags=["sign-in"],
    dependencies={"caller": Provide(provide_caller_with_any_password)},
    responses=error_responses(400, 401, 429, 503),
)
async def change_my_password(
    request: Request, data: JSONBody[PasswordChange], caller: CallerDep, db: DatabaseDep, settings: SettingsDep
) -> None:
    try:
        await change_password(
            db,
            settings,
            user_id=caller.user_id,
            username=caller.username,
            current_password=data.current_password,
            new_password=data.new_password,
            client=client_address(request),
            keep_token_hash=caller.token_hash,
        )
    except ValueError as exc:
        raise ValidationException(str(exc), extra=[{"key": "new_password", "message": str(exc)}]) from None
    except WrongCurrentPassword:
        raise ValidationException(
            "the current password is wrong",
            extra=[{"key": "current_password", "message": "the current password is wrong"}],
        ) from None
