"""Who is signed in to the pages, and what they are in the organisation in the path.

Page handlers take ``user: SignedInDep`` (pages outside an organisation) or
``ctx: PageContextDep`` (pages under /orgs/{org}/). Both come from the session
cookie only: a page never accepts a bearer token, and the API never accepts this cookie.
"""

import datetime as dt
from dataclasses import dataclass

from litestar import Request
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, PermissionDeniedException
from litestar.params import FromPath

from timebank.auth.context import STAFF_ROLES
from timebank.auth.tokens import hash_token
from timebank.config import Settings
from timebank.db import Database, as_utc
from timebank.ledger.stepwise import today_in
from timebank.models import Role
from timebank.web import sessions


class SignInRequired(Exception):
    """No live session: the page answers with a redirect to the sign-in page."""

    def __init__(self, *, timed_out: bool) -> None:
        super().__init__("sign in first")
        self.timed_out = timed_out  # a cookie was sent, but its session has ended


class PasswordChangeRequired(Exception):
    """The user signed in with a temporary password: every page leads to "Change your password"."""


@dataclass(frozen=True, slots=True)
class SignedIn:
    user_id: int
    username: str
    is_site_admin: bool
    must_change_password: bool
    session_hash: str
    # When the session ends if nothing happens before (the idle-timeout warning counts down to it).
    idle_deadline: dt.datetime
    # How long before that the warning with "Stay signed in" appears.
    idle_warning_seconds: int


@dataclass(frozen=True, slots=True)
class PageContext:
    """The signed-in person as an active member of the organisation in the path."""

    user: SignedIn
    organisation_id: int
    slug: str
    organisation_name: str
    timezone: str
    member_id: int
    display_name: str
    role: Role
    account_id: int

    @property
    def is_staff(self) -> bool:
        return self.role in STAFF_ROLES

    def today(self) -> dt.date:
        """Today in the organisation's time zone: the date pages suggest and check against."""
        return today_in(self.timezone)

    @property
    def is_coordinator(self) -> bool:
        return self.role is Role.COORDINATOR

    def require_staff(self) -> None:
        if not self.is_staff:
            raise PermissionDeniedException("only staff and coordinators may see this page")

    def require_coordinator(self) -> None:
        if self.role is not Role.COORDINATOR:
            raise PermissionDeniedException("only a coordinator may see this page")


def session_hash_of(request: Request) -> str | None:
    value = request.cookies.get(sessions.COOKIE_NAME)
    return hash_token(value) if value else None


async def _signed_in(row, session_hash: str, db: Database, settings: Settings, now: dt.datetime) -> SignedIn:  # type: ignore[no-untyped-def]
    last_seen = as_utc(row["last_seen_at"])
    if now - last_seen >= sessions.TOUCH_INTERVAL:
        await sessions.touch_session(db, session_hash)
        last_seen = now
    return SignedIn(
        user_id=row["user_id"],
        username=row["username"],
        is_site_admin=row["is_site_admin"],
        must_change_password=row["must_change_password"],
        session_hash=session_hash,
        idle_deadline=last_seen + sessions.idle_timeout(settings),
        idle_warning_seconds=sessions.idle_warning_seconds(settings),
    )


async def find_signed_in(request: Request, db: Database, settings: Settings) -> SignedIn | None:
    """The signed-in user, or None (for pages that anyone may see, such as the start page)."""
    session_hash = session_hash_of(request)
    if session_hash is None:
        return None
    now = dt.datetime.now(dt.UTC)
    row = await sessions.SESSION_USER.first(db, sessions.session_parameters(session_hash, settings, now))
    return None if row is None else await _signed_in(row, session_hash, db, settings, now)


async def provide_signed_in_any_password(
    request: Request, db: NamedDependency[Database], settings: NamedDependency[Settings]
) -> SignedIn:
    """The signed-in user, even with a temporary password (for "Change your password" and "Sign out")."""
    user = await find_signed_in(request, db, settings)
    if user is None:
        raise SignInRequired(timed_out=session_hash_of(request) is not None)
    return user


async def provide_signed_in(
    request: Request, db: NamedDependency[Database], settings: NamedDependency[Settings]
) -> SignedIn:
    user = await provide_signed_in_any_password(request, db, settings)
    if user.must_change_password:
        raise PasswordChangeRequired
    return user


async def provide_page_context(
    request: Request, org: FromPath[str], db: NamedDependency[Database], settings: NamedDependency[Settings]
) -> PageContext:
    """The session, the user and the membership of ``org`` in one query; 404 if not an active member."""
    session_hash = session_hash_of(request)
    if session_hash is None:
        raise SignInRequired(timed_out=False)
    now = dt.datetime.now(dt.UTC)
    row = await sessions.SESSION_USER_IN_ORGANISATION.first(
        db, {**sessions.session_parameters(session_hash, settings, now), "slug": org}
    )
    if row is None:
        raise SignInRequired(timed_out=True)
    if row["must_change_password"]:
        raise PasswordChangeRequired
    if row["member_id"] is None:
        # The same page whether the organisation does not exist or is not theirs.
        raise NotFoundException("no such organisation")
    return PageContext(
        user=await _signed_in(row, session_hash, db, settings, now),
        organisation_id=row["organisation_id"],
        slug=org,
        organisation_name=row["organisation_name"],
        timezone=row["timezone"],
        member_id=row["member_id"],
        display_name=row["display_name"],
        role=Role(row["role"]),
        account_id=row["account_id"],
    )


SignedInDep = NamedDependency[SignedIn]
PageContextDep = NamedDependency[PageContext]
