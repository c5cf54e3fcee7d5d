"""Sign-in and identity: /api/v1/auth/token and /api/v1/me."""

import asyncio
import datetime as dt

from litestar import Controller, Request, delete, get, post
from litestar.di import Provide
from litestar.exceptions import NotAuthorizedException
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_204_NO_CONTENT
from sqlalchemy import and_, select

from timebank.api.dependencies import CallerDep, DatabaseDep, SettingsDep
from timebank.api.schemas import error_responses
from timebank.auth import rate_limit
from timebank.auth.context import provide_caller
from timebank.auth.passwords import hash_password, normalise_username, verify_password
from timebank.auth.schemas import Me, MyMembership, TokenRequest, TokenResponse
from timebank.auth.tokens import issue_token, revoke_token
from timebank.models import Account, Member, Organisation, Role, User

WRONG_CREDENTIALS = "wrong username or password"
# Verified against when the username is unknown, so both cases take the same time.
_DUMMY_HASH = hash_password("timing-equaliser-not-a-real-password")

users = User.__table__
members = Member.__table__
accounts = Account.__table__
organisations = Organisation.__table__


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
        username = normalise_username(data.username)
        client = request.client.host if request.client else "unknown"
        window = dt.timedelta(minutes=settings.sign_in_window_minutes)
        await rate_limit.check_not_throttled(
            db,
            username,
            client,
            per_user=settings.sign_in_failures_per_user,
            per_client=settings.sign_in_failures_per_client,
            window=window,
        )
        async with db.autocommit() as conn:
            user = (
                await conn.execute(
                    select(users.c.id, users.c.password_hash, users.c.is_active).where(users.c.username == username)
                )
            ).first()
        # argon2 takes tens of milliseconds of CPU: keep it off the event loop.
        valid = await asyncio.to_thread(verify_password, user.password_hash if user else _DUMMY_HASH, data.password)
        if not (user and valid and user.is_active):
            await rate_limit.record_failure(db, username, client, window=window)
            raise NotAuthorizedException(WRONG_CREDENTIALS)
        await rate_limit.clear_user_failures(db, username)
        token, expires_at = await issue_token(db, user.id, dt.timedelta(hours=settings.token_ttl_hours))
        return TokenResponse(access_token=token, expires_at=expires_at)

    @delete(
        "/token",
        status_code=HTTP_204_NO_CONTENT,
        summary="Sign out: revoke the token in use",
        dependencies={"caller": Provide(provide_caller)},
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
