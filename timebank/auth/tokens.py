"""Bearer tokens: random, shown once, stored only as SHA-256, expiring, revocable."""

import datetime as dt
import hashlib
import secrets

from sqlalchemy import insert, update

from timebank.db import Database
from timebank.models import ApiToken

api_tokens = ApiToken.__table__
TOKEN_PREFIX = "tb_"


def hash_token(token: str) -> str:
    # A fast hash is right here: the token is 256 random bits, not a guessable password.
    return hashlib.sha256(token.encode()).hexdigest()


async def issue_token(db: Database, user_id: int, ttl: dt.timedelta) -> tuple[str, dt.datetime]:
    """A new token for ``user_id`` and when it expires. The token itself is never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = dt.datetime.now(dt.UTC)
    expires_at = now + ttl
    async with db.transaction() as conn:
        await conn.execute(
            insert(api_tokens).values(
                user_id=user_id, token_hash=hash_token(token), created_at=now, expires_at=expires_at
            )
        )
    return token, expires_at


async def revoke_token(db: Database, token_hash: str) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            update(api_tokens)
            .where(api_tokens.c.token_hash == token_hash, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=dt.datetime.now(dt.UTC))
        )
