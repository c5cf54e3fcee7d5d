"""A browser-like client for page tests: cookies kept, the CSRF token added to every form."""

import re
from dataclasses import dataclass

import httpx
from litestar import Litestar

from tests.api.conftest import Person, client_for, test_settings
from timebank.db import Database
from timebank.web import CSRF_COOKIE, sessions


@dataclass
class Browser:
    http: httpx.AsyncClient
    session_value: str | None = None

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(path)

    async def post(self, path: str, form: dict[str, str] | None = None, **kwargs: object) -> httpx.Response:
        """POST a form as the browser would, with the token from the CSRF cookie (got first if needed)."""
        if CSRF_COOKIE not in self.http.cookies:
            await self.http.get("/")
        return await self.http.post(
            path, data={"_csrf_token": self.http.cookies[CSRF_COOKIE], **(form or {})}, **kwargs
        )

    async def aclose(self) -> None:
        await self.http.aclose()


def browser(app: Litestar) -> Browser:
    """A client on https (the cookies are Secure outside development) that follows no redirects."""
    http = client_for(app)
    http.base_url = httpx.URL("https://timebank.test")
    return Browser(http)


async def signed_in(app: Litestar, db: Database, person: Person | None) -> Browser:
    """A browser with a fresh session for ``person`` (None: signed out)."""
    page = browser(app)
    if person is not None:
        new = await sessions.start_session(db, test_settings(), person.user_id)
        page.http.cookies.set(sessions.COOKIE_NAME, new.cookie_value, domain="timebank.test")
        page.session_value = new.cookie_value
    return page


def visible_text(html: str) -> str:
    """The text of a page without its tags, scripts and styles, whitespace collapsed."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())
