"""Slowing down password guessing: failed sign-ins are counted per username and per client.

Only failures count, so a busy centre where many people sign in successfully from
one shared address is never blocked. Usernames are counted in their normalised
form, so changing case or spacing does not reset the count.
"""

import datetime as dt
import math

from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from timebank.db import Database
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
        started = (
            row.window_started_at if row.window_started_at.tzinfo else row.window_started_at.replace(tzinfo=dt.UTC)
        )
        ends = started + window
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
