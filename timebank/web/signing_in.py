"""The start page, signing in and out, staying signed in, and changing a password."""

import datetime as dt
import math
from typing import Annotated

from litestar import Request, get, post
from litestar.datastructures import Cookie
from litestar.di import Provide
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromQuery
from litestar.response import Redirect, Response, Template
from pydantic import BaseModel
from sqlalchemy import select

from timebank.api.dependencies import DatabaseDep, SettingsDep
from timebank.auth.endpoints import client_address
from timebank.auth.rate_limit import SignInThrottled
from timebank.auth.service import WrongCredentials, WrongCurrentPassword, authenticate, change_password
from timebank.config import Settings
from timebank.models import Member, Organisation
from timebank.web import sessions
from timebank.web.context import SignedInDep, find_signed_in, provide_signed_in_any_password
from timebank.web.responses import page, see_other

members = Member.__table__
organisations = Organisation.__table__


class SignInForm(BaseModel):
    username: str = ""
    password: str = ""


class ChangePasswordForm(BaseModel):
    current_password: str = ""
    new_password: str = ""


Form = Body(media_type=RequestEncodingType.URL_ENCODED)


def session_cookie(settings: Settings, value: str, expires_at: dt.datetime | None) -> Cookie:
    """The session cookie: HttpOnly, SameSite=Lax, Secure unless TIMEBANK_COOKIE_SECURE=false.

    No max-age: it is a browser-session cookie ("remember me" is not offered on shared computers).
    An empty value with max-age 0 deletes it.
    """
    return Cookie(
        key=sessions.COOKIE_NAME,
        value=value,
        path="/",
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        max_age=0 if expires_at is None else None,
    )


async def memberships_of(db: DatabaseDep, user_id: int) -> list[dict[str, str]]:
    async with db.autocommit() as conn:
        rows = (
            await conn.execute(
                select(organisations.c.slug, organisations.c.name)
                .select_from(members.join(organisations, organisations.c.id == members.c.organisation_id))
                .where(members.c.user_id == user_id, members.c.is_active.is_(True))
                .order_by(organisations.c.name)
            )
        ).all()
    return [{"slug": row.slug, "name": row.name} for row in rows]


@get("/", name="start")
async def start(
    request: Request, db: DatabaseDep, settings: SettingsDep, notice: FromQuery[str | None] = None
) -> Response:
    """Signed out: the welcome and the sign-in form. Signed in: on to the person's home."""
    user = await find_signed_in(request, db, settings)
    if user is None:
        timed_out = request.cookies.get(sessions.COOKIE_NAME) is not None
        notice = notice or ("timed_out" if timed_out else None)
        answer = page("pages/start.html", notice=notice, errors=[], username="", error_field=None)
        if timed_out:
            answer.cookies.append(session_cookie(settings, "", None))
        return answer
    if user.must_change_password:
        return see_other("/change-password")
    memberships = await memberships_of(db, user.user_id)
    if len(memberships) == 1:
        return see_other(f"/orgs/{memberships[0]['slug']}/")
    return page("pages/choose_organisation.html", user=user, memberships=memberships)


@post("/sign-in", name="sign-in")
async def sign_in(
    request: Request, data: Annotated[SignInForm, Form], db: DatabaseDep, settings: SettingsDep
) -> Response:
    def refused(kind: str, field: str, status_code: int, **values: object) -> Template:
        errors = [{"kind": kind, "href": f"#{field}", **values}]
        return page(
            "pages/start.html",
            status_code=status_code,
            notice=None,
            username=data.username,
            errors=errors,
            error_field=field,
        )

    if not data.username.strip():
        return refused("no_username", "username", 400)
    if not data.password:
        return refused("no_password", "password", 400)
    try:
        user = await authenticate(db, settings, data.username, data.password, client_address(request))
    except WrongCredentials:
        return refused("wrong_password", "password", 400)
    except SignInThrottled as throttled:
        # Said in whole minutes, rounded up: "Wait 15 minutes and try again".
        return refused("throttled", "password", 429, minutes=max(math.ceil(throttled.retry_after_seconds / 60), 1))
    new = await sessions.start_session(db, settings, user.user_id)
    # A session someone had before (on this browser) ends: a new id at every sign-in.
    old = request.cookies.get(sessions.COOKIE_NAME)
    if old:
        await sessions.end_session(db, sessions.hash_cookie(old))
    answer = see_other("/change-password" if user.must_change_password else "/")
    answer.cookies.append(session_cookie(settings, new.cookie_value, new.expires_at))
    return answer


@post("/sign-out", name="sign-out")
async def sign_out(request: Request, db: DatabaseDep, settings: SettingsDep) -> Redirect:
    """Ends the session on the server (not just in this browser), signed in or not."""
    value = request.cookies.get(sessions.COOKIE_NAME)
    if value:
        await sessions.end_session(db, sessions.hash_cookie(value))
    answer = see_other("/?notice=signed_out")
    answer.cookies.append(session_cookie(settings, "", None))
    return answer


@post(
    "/keep-alive",
    name="keep-alive",
    status_code=200,
    dependencies={"user": Provide(provide_signed_in_any_password)},
)
async def keep_alive(user: SignedInDep, db: DatabaseDep, settings: SettingsDep) -> dict[str, int]:
    """ "Stay signed in" (idle-timeout.js posts here in the background): the idle time starts again."""
    await sessions.touch_session(db, user.session_hash)
    return {"seconds_left": int(sessions.idle_timeout(settings).total_seconds())}


_ANY_PASSWORD = {"user": Provide(provide_signed_in_any_password)}


@get("/change-password", name="change-password", dependencies=_ANY_PASSWORD)
async def change_password_page(user: SignedInDep) -> Template:
    return page("pages/change_password.html", user=user, errors=[], field_errors={})


@post("/change-password", name="change-password-post", dependencies=_ANY_PASSWORD)
async def change_password_form(
    request: Request,
    data: Annotated[ChangePasswordForm, Form],
    user: SignedInDep,
    db: DatabaseDep,
    settings: SettingsDep,
) -> Response:
    def refused(kind: str, field: str, status_code: int = 400) -> Template:
        errors = [{"kind": kind, "href": f"#{field}"}]
        return page(
            "pages/change_password.html",
            user=user,
            status_code=status_code,
            errors=errors,
            field_errors={field: kind},
        )

    if not data.current_password:
        return refused("no_current_password", "current_password")
    try:
        await change_password(
            db,
            settings,
            user_id=user.user_id,
            username=user.username,
            current_password=data.current_password,
            new_password=data.new_password,
            client=client_address(request),
            keep_session_hash=user.session_hash,
        )
    except ValueError:
        return refused("new_password_too_short", "new_password")
    except WrongCurrentPassword:
        return refused("wrong_current_password", "current_password")
    except SignInThrottled:
        return refused("throttled", "current_password", 429)
    return see_other("/change-password/done")


@get("/change-password/done", name="password-changed", dependencies={"user": Provide(provide_signed_in_any_password)})
async def password_changed(user: SignedInDep) -> Template:
    return page("pages/password_changed.html", user=user)


ROUTES = [start, sign_in, sign_out, keep_alive, change_password_page, change_password_form, password_changed]
