"""Signing in and out of the pages, browser sessions on shared computers, temporary passwords.

Through the real app on the test's loop (httpx), on SQLite and PostgreSQL.
"""

import datetime as dt
import uuid

import pytest
from litestar import Litestar
from sqlalchemy import select, update

from tests.api.conftest import PASSWORD, ApiOrg, client_for, make_api_org, make_app
from tests.api.conftest import test_settings as settings_for_tests
from tests.web.support import Browser, browser, signed_in, visible_text
from timebank.auth.service import give_temporary_password
from timebank.db import Database, as_utc
from timebank.models import BrowserSession, Member, User
from timebank.web import sessions

users = User.__table__
members = Member.__table__
browser_sessions = BrowserSession.__table__


async def sign_in(page: Browser, username: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return await page.post("/sign-in", {"username": username, "password": password})


async def set_user(db: Database, user_id: int, **values: object) -> None:
    async with db.transaction() as conn:
        await conn.execute(update(users).where(users.c.id == user_id).values(**values))


async def session_row(db: Database, cookie_value: str):  # type: ignore[no-untyped-def]
    async with db.autocommit() as conn:
        return (
            await conn.execute(
                select(browser_sessions).where(browser_sessions.c.session_hash == sessions.hash_cookie(cookie_value))
            )
        ).one()


class TestSigningIn:
    async def test_signs_in_with_a_cookie_the_script_cannot_read_and_opens_the_home(
        self, app: Litestar, api_org: ApiOrg
    ) -> None:
        page = browser(app)
        answer = await sign_in(page, api_org.member.username)
        assert answer.status_code == 303 and answer.headers["location"] == "/"
        cookie = answer.headers["set-cookie"]
        assert cookie.startswith(f"{sessions.COOKIE_NAME}=")
        for attribute in ("HttpOnly", "SameSite=lax", "Secure", "Path=/"):
            assert attribute in cookie, cookie
        assert "Max-Age" not in cookie and "expires" not in cookie.lower(), "no 'remember me': a browser-session cookie"
        start = await page.get("/")
        assert start.status_code == 303 and start.headers["location"] == f"/orgs/{api_org.slug}/"
        home = await page.get(start.headers["location"])
        assert home.status_code == 200
        assert "You have 0 hours" in visible_text(home.text)
        assert "Sign out" in visible_text(home.text)

    async def test_stores_only_a_hash_of_the_cookie_and_gives_a_new_one_at_every_sign_in(
        self, app: Litestar, db: Database, api_org: ApiOrg
    ) -> None:
        page = browser(app)
        await sign_in(page, api_org.member.username)
        first = page.http.cookies[sessions.COOKIE_NAME]
        await sign_in(page, api_org.member.username)
        second = page.http.cookies[sessions.COOKIE_NAME]
        assert first != second
        old, new = await session_row(db, first), await session_row(db, second)
        assert old.revoked_at is not None, "the session this browser had before ends"
        assert new.revoked_at is None and new.session_hash != second

    async def test_a_wrong_password_says_so_and_keeps_the_username(self, app: Litestar, api_org: ApiOrg) -> None:
        answer = await sign_in(browser(app), api_org.member.username, "not the password")
        assert answer.status_code == 400
        text = visible_text(answer.text)
        assert "The username or password is not right" in text
        assert f'value="{api_org.member.username}"' in answer.text
        assert sessions.COOKIE_NAME not in answer.headers.get("set-cookie", "")

    async def test_too_many_attempts_say_when_to_try_again_with_the_apis_limit(
        self, db: Database, api_org: ApiOrg
    ) -> None:
        app = make_app(db, sign_in_failures_per_user=2, sign_in_window_minutes=15)
        page = browser(app)
        for _ in range(2):
            assert (await sign_in(page, api_org.member.username, "wrong")).status_code == 400
        throttled = await sign_in(page, api_org.member.username)
        assert throttled.status_code == 429
        assert "Wait 15 minutes and try again" in visible_text(throttled.text)
        # The same counter as the API's: the API refuses this username now too.
        async with client_for(app) as api:
            token = await api.post(
                "/api/v1/auth/token", json={"username": api_org.member.username, "password": PASSWORD}
            )
        assert token.status_code == 429

    async def test_a_deactivated_user_cannot_sign_in(self, app: Litestar, db: Database, api_org: ApiOrg) -> None:
        await set_user(db, api_org.other_member.user_id, is_active=False)
        answer = await sign_in(browser(app), api_org.other_member.username)
        assert answer.status_code == 400
        assert "The username or password is not right" in visible_text(answer.text)

    async def test_a_form_without_its_token_gets_the_expired_form_page(self, app: Litestar, api_org: ApiOrg) -> None:
        page = browser(app)
        await page.get("/")
        answer = await page.http.post("/sign-in", data={"username": api_org.member.username, "password": PASSWORD})
        assert answer.status_code == 403
        assert answer.headers["content-type"].startswith("text/html")
        assert "This form has expired" in visible_text(answer.text)


class TestSessions:
    async def test_signing_out_ends_the_session_on_the_server(
        self, app: Litestar, db: Database, api_org: ApiOrg
    ) -> None:
        page = await signed_in(app, db, api_org.member)
        assert (await page.get(f"/orgs/{api_org.slug}/")).status_code == 200
        out = await page.post("/sign-out")
        assert out.status_code == 303
        assert (await session_row(db, page.session_value)).revoked_at is not None  # type: ignore[arg-type]
        # Even a copy of the old cookie opens nothing now.
        again = await signed_in(app, db, None)
        again.http.cookies.set(sessions.COOKIE_NAME, page.session_value, domain="timebank.test")  # type: ignore[arg-type]
        assert (await again.get(f"/orgs/{api_org.slug}/")).status_code == 303

    async def test_an_idle_session_ends_and_the_start_page_says_why(
        self, app: Litestar, db: Database, api_org: ApiOrg
    ) -> None:
        page = await signed_in(app, db, api_org.member)
        async with db.transaction() as conn:
            await conn.execute(
                update(browser_sessions)
                .where(browser_sessions.c.session_hash == sessions.hash_cookie(page.session_value))  # type: ignore[arg-type]
                .values(last_seen_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=31))
            )
        assert (await page.get(f"/orgs/{api_org.slug}/")).status_code == 303
        start = await page.get("/")
        assert "You were signed out because you had not done anything for a while" in visible_text(start.text)

    async def test_stay_signed_in_starts_the_idle_time_again(
        self, app: Litestar, db: Database, api_org: ApiOrg
    ) -> None:
        page = await signed_in(app, db, api_org.member)
        earlier = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=20)
        async with db.transaction() as conn:
            await conn.execute(
                update(browser_sessions)
                .where(browser_sessions.c.session_hash == sessions.hash_cookie(page.session_value))  # type: ignore[arg-type]
                .values(last_seen_at=earlier)
            )
        answer = await page.post("/keep-alive")
        assert answer.status_code == 200 and answer.json() == {"seconds_left": 30 * 60}
        row = await session_row(db, page.session_value)  # type: ignore[arg-type]
        assert as_utc(row.last_seen_at) > earlier + dt.timedelta(minutes=19)

    async def test_deactivating_the_user_or_the_membership_ends_access_at_once(
        self, app: Litestar, db: Database, api_org: ApiOrg
    ) -> None:
        member, other = await signed_in(app, db, api_org.member), await signed_in(app, db, api_org.other_member)
        await set_user(db, api_org.member.user_id, is_active=False)
        assert (await member.get(f"/orgs/{api_org.slug}/")).status_code == 303
        async with db.transaction() as conn:
            await conn.execute(
                update(members).where(members.c.id == api_org.other_member.member_id).values(is_active=False)
            )
        closed = await other.get(f"/orgs/{api_org.slug}/")
        assert closed.status_code == 404 and "Page not found" in visible_text(closed.text)

    async def test_the_api_never_accepts_the_cookie_and_pages_never_accept_a_bearer_token(
        self, app: Litestar, db: Database, api_org: ApiOrg
    ) -> None:
        page = await signed_in(app, db, api_org.member)
        assert (await page.get("/api/v1/me")).status_code == 401
        bearer = browser(app)
        answer = await bearer.http.get(f"/orgs/{api_org.slug}/", headers=api_org.member.headers)
        assert answer.status_code == 303 and answer.headers["location"] == "/"

    async def test_pages_are_never_cached_and_errors_are_pages(
        self, app: Litestar, db: Database, api_org: ApiOrg
    ) -> None:
        page = await signed_in(app, db, api_org.member)
        home = await page.get(f"/orgs/{api_org.slug}/")
        assert home.headers["cache-control"] == "no-store"
        missing = await page.get(f"/orgs/{api_org.slug}/no-such-page")
        assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
        assert "Page not found" in visible_text(missing.text)
        api_missing = await page.get(f"/api/v1/orgs/{api_org.slug}/no-such-thing")
        assert api_missing.status_code == 404 and api_missing.json()["status_code"] == 404


class TestTemporaryPasswords:
    @pytest.fixture
    async def temporary(self, db: Database, api_org: ApiOrg) -> ApiOrg:
        await set_user(db, api_org.member.user_id, must_change_password=True)
        return api_org

    async def test_every_page_leads_to_change_your_password_until_it_is_changed(
        self, app: Litestar, temporary: ApiOrg
    ) -> None:
        page = browser(app)
        signing_in = await sign_in(page, temporary.member.username)
        assert signing_in.headers["location"] == "/change-password"
        for path in ("/", f"/orgs/{temporary.slug}/"):
            answer = await page.get(path)
            assert answer.status_code == 303 and answer.headers["location"] == "/change-password", path
        form = await page.get("/change-password")
        assert "You signed in with a temporary password" in visible_text(form.text)
        short = await page.post("/change-password", {"current_password": PASSWORD, "new_password": "short"})
        assert short.status_code == 400 and "at least 8 characters" in visible_text(short.text)
        new_password = f"new {uuid.uuid4().hex}"
        done = await page.post("/change-password", {"current_password": PASSWORD, "new_password": new_password})
        assert done.status_code == 303 and done.headers["location"] == "/change-password/done"
        assert (await page.get(f"/orgs/{temporary.slug}/")).status_code == 200

    async def test_a_temporary_password_given_ends_every_open_session_and_token(
        self, app: Litestar, db: Database, api_org: ApiOrg
    ) -> None:
        page = await signed_in(app, db, api_org.other_member)
        assert (await page.get(f"/orgs/{api_org.slug}/")).status_code == 200
        await give_temporary_password(db, api_org.other_member.user_id, "handed over in person")
        assert (await page.get(f"/orgs/{api_org.slug}/")).status_code == 303
        async with client_for(app) as api:
            assert (await api.get("/api/v1/me", headers=api_org.other_member.headers)).status_code == 401
        fresh = browser(app)
        signing_in = await sign_in(fresh, api_org.other_member.username, "handed over in person")
        assert signing_in.headers["location"] == "/change-password"
        with pytest.raises(ValueError):
            await give_temporary_password(db, api_org.other_member.user_id, "short")

    async def test_the_api_refuses_everything_but_changing_it(self, app: Litestar, temporary: ApiOrg) -> None:
        async with client_for(app) as api:
            token = await api.post(
                "/api/v1/auth/token", json={"username": temporary.member.username, "password": PASSWORD}
            )
            assert token.json()["must_change_password"] is True
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            for path in ("/api/v1/me", temporary.url(), temporary.url(f"/members/{temporary.member.member_id}")):
                refused = await api.get(path, headers=headers)
                assert refused.status_code == 403 and "temporary" in refused.json()["detail"], path
            wrong = await api.post(
                "/api/v1/me/password",
                json={"current_password": "wrong", "new_password": "a new password"},
                headers=headers,
            )
            assert wrong.status_code == 400
            changed = await api.post(
                "/api/v1/me/password",
                json={"current_password": PASSWORD, "new_password": "a new password"},
                headers=headers,
            )
            assert changed.status_code == 204, changed.text
            assert (await api.get("/api/v1/me", headers=headers)).status_code == 200
            # Other tokens of the user end with the change: the password was known to someone else.
            assert (await api.get("/api/v1/me", headers=temporary.member.headers)).status_code == 401


class TestOrganisations:
    async def test_someone_in_several_organisations_chooses_where_to_go(
        self, app: Litestar, db: Database, api_org: ApiOrg
    ) -> None:
        second = await make_api_org(db)
        async with db.transaction() as conn:
            await conn.execute(
                update(members).where(members.c.id == second.member.member_id).values(user_id=api_org.member.user_id)
            )
        page = await signed_in(app, db, api_org.member)
        chooser = await page.get("/")
        assert chooser.status_code == 200
        text = visible_text(chooser.text)
        assert "Choose where to go" in text
        assert f"Test centre {api_org.slug}" in text and f"Test centre {second.slug}" in text
        assert f'href="/orgs/{second.slug}/"' in chooser.text
        assert (await page.get(f"/orgs/{second.slug}/")).status_code == 200


class TestCookieSetting:
    @pytest.mark.parametrize(
        ("environment", "setting", "secure"),
        [("development", None, False), ("test", None, True), ("production", None, True), ("production", False, False)],
    )
    def test_cookies_are_secure_outside_development_unless_turned_off(
        self, environment: str, setting: bool | None, secure: bool
    ) -> None:
        settings = settings_for_tests(environment=environment, cookie_secure=setting)
        assert settings.secure_cookies is secure
