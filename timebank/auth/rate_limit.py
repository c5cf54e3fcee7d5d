"""Slowing down password guessing: failed sign-ins are counted per username and per client.

Only failures count, so a busy centre where many people sign in successfully from
one shared address is never blocked. Usernames are counted in their normalised
form, so changing case or spacing does not reset the count.
"""

import datetime as dt
import math

from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel.ext.asyncio.session import AsyncSession

from timebank.db import Database, as_utc
from timebank.models import SignInFailure

failures = SignInFailure.__table__


class SignInThrottled(Exception):
    status_code = 429  # a client error: answered, not logged with a traceback

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__("too many failed sign-ins")
        self.retry_after_seconds = retry_after_seconds


def buckets(username: str, client: str) -> dict[str, str]:
    return {"user": f"user:{username}"[:200], "client": f"client:{client}"[:200]}


async def check_not_throttled(
    db: Database, username: str, client: str, *, per_user: int, per_client: int, window: dt.timedelta
) -> None:
    """Raise ``SignInThrottled`` if either bucket has used up its failures in the current window."""
    keys = buckets(username, client)
    limits = {keys["user"]: per_user, keys["client"]: per_client}
    now = dt.datetime.now(dt.UTC)
    async with db.autocommit() as conn:
        rows = (
            await conn.execute(
                select(failures.c.bucket, failures.c.failures, failures.c.window_started_at).where(
                    failures.c.bucket.in_(list(limits))
                )
            )
        ).all()
    waits = []
    for row in rows:
        ends = as_utc(row.window_started_at) + window
        if row.failures >= limits[row.bucket] and ends > now:
            waits.append(math.ceil((ends - now).total_seconds()))
    if waits:
        raise SignInThrottled(max(waits))


async def record_failure(db: Database, username: str, client: str, *, window: dt.timedelta) -> None:
    now = dt.datetime.now(dt.UTC)
    window_expired = failures.c.window_started_at <= now - window
    async with db.transaction() as conn:
        dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
        for bucket in buckets(username, client).values():
            statement = dialect_insert(failures).values(bucket=bucket, failures=1, window_started_at=now)
            await conn.execute(
                statement.on_conflict_do_update(
                    index_elements=["bucket"],
                    set_={
                        "failures": case((window_expired, 1), else_=failures.c.failures + 1),
                        "window_started_at": case((window_expired, now), else_=failures.c.window_started_at),
                    },
                )
            )


async def clear_user_failures(db: Database, username: str) -> None:
    """A successful sign-in forgives that username's earlier failures (not the client's)."""
    async with db.transaction() as conn:
        await conn.execute(delete(failures).where(failures.c.bucket == buckets(username, "")["user"]))


async def clear_lockout(session: AsyncSession, username: str) -> bool:
    """A coordinator forgives a username's failures, so its owner can sign in at once; in the
    caller's transaction, which also writes the history row.

    Only the username's bucket: a client bucket counts every failure from one address
    (a centre's shared computers share one) without saying whose they were, so clearing
    it would also forgive someone else's guessing. The per-client limit is set well
    above the per-user one (config.py) so that one person's mistyping locks out only
    their own username. True if there was anything to clear.
    """
    cleared = await session.exec(delete(failures).where(failures.c.bucket == buckets(username, "")["user"]))
    return bool(cleared.rowcount)


async def locked_out_usernames(db: Database, usernames: list[str], *, per_user: int, window: dt.timedelta) -> set[str]:
    """Which of ``usernames`` have used up their failures in the current window (whatever
    the address, ``check_not_throttled`` refuses them)."""
    by_bucket = {buckets(name, "")["user"]: name for name in usernames}
    if not by_bucket:
        return set()
    now = dt.datetime.now(dt.UTC)
    async with db.autocommit() as conn:
        rows = (
            await conn.execute(
                select(failures.c.bucket, failures.c.failures, failures.c.window_started_at).where(
                    failures.c.bucket.in_(list(by_bucket))
                )
            )
        ).all()
    return {
        by_bucket[row.bucket]
        for row in rows
        if row.failures >= per_user and as_utc(row.window_started_at) + window > now
    }
