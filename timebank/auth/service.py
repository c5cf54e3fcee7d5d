"""Signing in and changing a password: one implementation for the API and the pages.

Both go through ``authenticate``, so the same rate limit (auth/rate_limit.py), the
same wording and the same timing hold whichever door a person uses.
"""

import asyncio
import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update

from timebank.auth import rate_limit
from timebank.auth.passwords import (
    check_new_password,
    hash_password,
    needs_rehash,
    normalise_username,
    verify_password,
)
from timebank.config import Settings
from timebank.db import Database
from timebank.models import ApiToken, BrowserSession, User

users = User.__table__
api_tokens = ApiToken.__table__
browser_sessions = BrowserSession.__table__

# Verified against when the username is unknown, so both cases take the same time. A
# literal, not hashed at import (that cost every worker 0.15 s of its start); made with
# today's cost settings, which tests/api/test_auth.py holds it to (check_needs_rehash).
DUMMY_HASH = "$argon2id$v=19$m=19456,t=10,p=2$llcEEIojzGy4pEoId3xnsg$FAuwO42sSYwIuI+DgH0qbmRDzyzmYyL5/fv5XQS7h18"


class WrongCredentials(Exception):
    """The username and password do not match an active user (which of the three is not said)."""


class WrongCurrentPassword(Exception):
    """Changing a password: the current one given is not right."""


@dataclass(frozen=True, slots=True)
class Authenticated:
    user_id: int
    username: str
    must_change_password: bool


def _limits(settings: Settings) -> dict:
    return {
        "per_user": settings.sign_in_failures_per_user,
        "per_client": settings.sign_in_failures_per_client,
        "window": dt.timedelta(minutes=settings.sign_in_window_minutes),
    }


async def authenticate(db: Database, settings: Settings, username: str, password: str, client: str) -> Authenticated:
    """Sign in: the active user with this username and password, whose last sign-in is now.

    Raises ``SignInThrottled`` when the username or the client has used up its failures,
    ``WrongCredentials`` otherwise (counted as a failure). A success forgives the
    username's earlier failures.
    """
    user, stored_hash = await _check_password(db, settings, username, password, client)
    # A hash made with older settings is replaced now, while the password is in hand.
    new_hash = await asyncio.to_thread(hash_password, password) if needs_rehash(stored_hash) else None
    async with db.transaction() as conn:
        await conn.execute(
            update(users).where(users.c.id == user.user_id).values(last_signed_in_at=dt.datetime.now(dt.UTC))
        )
        if new_hash is not None:
            # Only the hash just checked: a password changed meanwhile (a reset) stays changed.
            await conn.execute(
                update(users)
                .where(users.c.id == user.user_id, users.c.password_hash == stored_hash)
                .values(password_hash=new_hash)
            )
    return user


async def _check_password(
    db: Database, settings: Settings, username: str, password: str, client: str
) -> tuple[Authenticated, str]:
    """``authenticate`` without counting as a sign-in (changing a password asks for the current one).

    Returns the user and the stored hash the password matched.
    """
    username = normalise_username(username)
    limits = _limits(settings)
    await rate_limit.check_not_throttled(db, username, client, **limits)
    async with db.autocommit() as conn:
        user = (
            await conn.execute(
                select(users.c.id, users.c.password_hash, users.c.is_active, users.c.must_change_password).where(
                    users.c.username == username
                )
            )
        ).first()
    # argon2 takes tens of milliseconds of CPU: keep it off the event loop.
    valid = await asyncio.to_thread(verify_password, user.password_hash if user else DUMMY_HASH, password)
    if not (user and valid and user.is_active):
        await rate_limit.record_failure(db, username, client, window=limits["window"])
        raise WrongCredentials
    await rate_limit.clear_user_failures(db, username)
    return Authenticated(user.id, username, user.must_change_password), user.password_hash


async def change_password(
    db: Database,
    settings: Settings,
    *,
    user_id: int,
    username: str,
    current_password: str,
    new_password: str,
    client: str,
    keep_token_hash: str | None = None,
    keep_session_hash: str | None = None,
) -> None:
    """Check the current password (rate-limited like a sign-in), store the new one, clear
    ``must_change_password``, and end every other token and browser session of the user.

    Raises ``ValueError`` for a new password that is too short, ``WrongCurrentPassword``
    or ``SignInThrottled``.
    """
    check_new_password(new_password)
    try:
        await _check_password(db, settings, username, current_password, client)
    except WrongCredentials:
        raise WrongCurrentPassword from None
    new_hash = await asyncio.to_thread(hash_password, new_password)
    now = dt.datetime.now(dt.UTC)
    async with db.transaction() as conn:
        await conn.execute(
            update(users).where(users.c.id == user_id).values(password_hash=new_hash, must_change_password=False)
        )
        await conn.execute(
            update(api_tokens)
            .where(
                api_tokens.c.user_id == user_id,
                api_tokens.c.revoked_at.is_(None),
                api_tokens.c.token_hash != (keep_token_hash or ""),
            )
            .values(revoked_at=now)
        )
        await conn.execute(
            update(browser_sessions)
            .where(
                browser_sessions.c.user_id == user_id,
                browser_sessions.c.revoked_at.is_(None),
                browser_sessions.c.session_hash != (keep_session_hash or ""),
            )
            .values(revoked_at=now)
        )


async def give_temporary_password(db: Database, user_id: int, password: str) -> None:
    """Set a password someone else chose (staff resetting it, or a new sign-in): it must be
    changed at the next sign-in, and every open session and token of the user ends now.

    Raises ``ValueError`` for a password that is too short. Who may do this is the caller's
    rule (see issue 9: staff only for plain members of their own organisation).
    """
    check_new_password(password)
    new_hash = await asyncio.to_thread(hash_password, password)
    async with db.transaction() as conn:
        for statement in temporary_password_statements(user_id, new_hash, dt.datetime.now(dt.UTC)):
            await conn.execute(statement)


def temporary_password_statements(user_id: int, new_hash: str, now: dt.datetime) -> list:
    """The statements that set a temporary password (by its hash) and end every open session
    and token of the user; run in the caller's transaction (with its history row)."""
    return [
        update(users).where(users.c.id == user_id).values(password_hash=new_hash, must_change_password=True),
        *end_everything_of(user_id, now),
    ]


def end_everything_of(user_id: int, now: dt.datetime) -> list:
    """The statements that end every open browser session and API token of a user (for a
    password someone else set); run in the caller's transaction."""
    return [
        update(api_tokens)
        .where(api_tokens.c.user_id == user_id, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=now),
        end_browser_sessions_of(user_id, now),
    ]


def end_browser_sessions_of(user_id: int, now: dt.datetime):  # type: ignore[no-untyped-def]
    """The statement that ends every open browser session of a user (a deactivated member
    on a shared computer is signed out); run in the caller's transaction."""
    return (
        update(browser_sessions)
        .where(browser_sessions.c.user_id == user_id, browser_sessions.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
