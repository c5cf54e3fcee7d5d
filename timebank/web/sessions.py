"""Browser sessions: an opaque random cookie naming a session stored only as its SHA-256.

Every page request checks the session, the user and (on organisation pages) the
membership in ONE query, like the API's token check (auth/context.py), so signing
out, deactivating the user or a password reset ends it at once on every worker.
A session ends when it is revoked, after ``session_idle_minutes`` without a page
request or "Stay signed in", or ``session_max_hours`` after sign-in.
"""

import datetime as dt
import secrets
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, insert, select, update

from timebank.auth.tokens import hash_token
from timebank.config import Settings
from timebank.db import Database
from timebank.db.hot_path import HotStatement
from timebank.models import Account, BrowserSession, Member, Organisation, User

COOKIE_NAME = "timebank_session"
# Page requests move last_seen_at forward at most this often: most requests stay a single read.
TOUCH_INTERVAL = dt.timedelta(seconds=60)

browser_sessions = BrowserSession.__table__
users = User.__table__
members = Member.__table__
accounts = Account.__table__
organisations = Organisation.__table__


@dataclass(frozen=True, slots=True)
class NewSession:
    cookie_value: str
    expires_at: dt.datetime


def idle_timeout(settings: Settings) -> dt.timedelta:
    return dt.timedelta(minutes=settings.session_idle_minutes)


def idle_warning_seconds(settings: Settings) -> int:
    """The warning comes 3 minutes before the end, or half-way for a timeout shorter than 6 minutes."""
    return int(min(180.0, idle_timeout(settings).total_seconds() / 2))


async def start_session(db: Database, settings: Settings, user_id: int) -> NewSession:
    """A new session (a new id at every sign-in: a cookie planted before sign-in is worth nothing)."""
    value = secrets.token_urlsafe(32)
    now = dt.datetime.now(dt.UTC)
    expires_at = now + dt.timedelta(hours=settings.session_max_hours)
    async with db.transaction() as conn:
        await conn.execute(
            insert(browser_sessions).values(
                user_id=user_id, session_hash=hash_token(value), created_at=now, last_seen_at=now, expires_at=expires_at
            )
        )
    return NewSession(value, expires_at)


async def end_session(db: Database, session_hash: str) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            update(browser_sessions)
            .where(browser_sessions.c.session_hash == session_hash, browser_sessions.c.revoked_at.is_(None))
            .values(revoked_at=dt.datetime.now(dt.UTC))
        )


async def touch_session(db: Database, session_hash: str) -> None:
    """The person is still here: the idle timeout starts again from now."""
    async with db.transaction() as conn:
        await conn.execute(
            update(browser_sessions)
            .where(browser_sessions.c.session_hash == session_hash, browser_sessions.c.revoked_at.is_(None))
            .values(last_seen_at=dt.datetime.now(dt.UTC))
        )


_LIVE_SESSION = and_(
    browser_sessions.c.session_hash == bindparam("session_hash"),
    browser_sessions.c.revoked_at.is_(None),
    browser_sessions.c.expires_at > bindparam("now"),
    browser_sessions.c.last_seen_at > bindparam("idle_since"),
    users.c.is_active.is_(True),
)
_SESSION_COLUMNS = (
    users.c.id.label("user_id"),
    users.c.username,
    users.c.is_site_admin,
    users.c.must_change_password,
    browser_sessions.c.last_seen_at,
)
SESSION_USER = HotStatement(
    select(*_SESSION_COLUMNS)
    .select_from(browser_sessions.join(users, users.c.id == browser_sessions.c.user_id))
    .where(_LIVE_SESSION)
)
# Mirrors auth/context.py's _CALLER_IN_ORGANISATION: the membership columns are NULL when the
# organisation does not exist or the user is no active member of it (both answered 404).
SESSION_USER_IN_ORGANISATION = HotStatement(
    select(
        *_SESSION_COLUMNS,
        organisations.c.id.label("organisation_id"),
        organisations.c.name.label("organisation_name"),
        organisations.c.timezone,
        members.c.id.label("member_id"),
        members.c.display_name,
        members.c.role,
        accounts.c.id.label("account_id"),
    )
    .select_from(
        browser_sessions.join(users, users.c.id == browser_sessions.c.user_id)
        .outerjoin(organisations, organisations.c.slug == bindparam("slug"))
        .outerjoin(
            members,
            and_(
                members.c.user_id == users.c.id,
                members.c.organisation_id == organisations.c.id,
                members.c.is_active.is_(True),
            ),
        )
        .outerjoin(
            accounts,
            and_(accounts.c.organisation_id == members.c.organisation_id, accounts.c.member_id == members.c.id),
        )
    )
    .where(_LIVE_SESSION)
)


def session_parameters(session_hash: str, settings: Settings, now: dt.datetime) -> dict:
    return {"session_hash": session_hash, "now": now, "idle_since": now - idle_timeout(settings)}


def hash_cookie(value: str) -> str:
    return hash_token(value)
