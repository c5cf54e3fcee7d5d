"""Passwords are argon2id hashes; usernames are compared trimmed and case-folded."""

import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()  # argon2id with the library's current recommended cost: 64 MiB, 3 passes, 4 lanes
# One hash at a time per process. Each holds 64 MiB while it runs and its 4 lanes already
# keep a small machine's cores busy, so hashes side by side (a room signing in at once:
# up to six in the default thread pool) would add 64 MiB each to the worker's memory and
# finish no sooner overall. Queued here, the worker's peak stays one hash above its usual
# size (docs/performance.md, round four). A thread lock, not an asyncio one: the callers
# run these in threads (asyncio.to_thread), and it holds across event loops and threads.
_one_hash_at_a_time = threading.Lock()

MIN_PASSWORD_LENGTH = 8


def hash_password(password: str) -> str:
    """Blocks for tens of milliseconds (and waits for any other hash): call it in a thread."""
    with _one_hash_at_a_time:
        return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash:
        return False
    try:
        with _one_hash_at_a_time:
            return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def normalise_username(username: str) -> str:
    """One spelling per person: ' Alice ' and 'ALICE' are the same username."""
    return " ".join(username.split()).casefold()


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password must be at least {MIN_PASSWORD_LENGTH} characters long")
