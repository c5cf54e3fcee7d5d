"""Passwords are argon2id hashes; usernames are compared trimmed and case-folded."""

import ctypes
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# argon2id with OWASP's memory cost (19 MiB) and the work of the library's default, which
# held 64 MiB: 10 passes over 19 MiB are the work of its 3 over 64 MiB (about 0.1 s of CPU
# here, either way), so a guess on ordinary processors costs what it did. What it gives up
# is some memory-hardness against hardware built for guessing, for a worker that stays
# under 150 MB while someone signs in (docs/performance.md, round nine; OWASP's Password
# Storage Cheat Sheet holds 19 MiB with 2 passes enough). 2 lanes: two cores' worth,
# as small machines have. Hashes made with other settings still verify, and a sign-in
# replaces them (``needs_rehash``).
_hasher = PasswordHasher(memory_cost=19 * 1024, time_cost=10, parallelism=2)
# One hash at a time per process. Each holds its 19 MiB while it runs and its lanes
# already keep a small machine's cores busy, so hashes side by side (a room signing in at
# once: up to six in the default thread pool) would add 19 MiB each to the worker's
# memory and finish no sooner overall. Queued here, the worker's peak stays one hash
# above its usual size (docs/performance.md, round four). A thread lock, not an asyncio
# one: the callers run these in threads (asyncio.to_thread), and it holds across event
# loops and threads.
_one_hash_at_a_time = threading.Lock()

MIN_PASSWORD_LENGTH = 8

_M_MMAP_THRESHOLD = -3  # glibc's mallopt() parameter


def _give_large_blocks_back_to_the_system() -> None:
    """Have glibc map every block of 1 MiB or more on its own and unmap it when freed.

    By default glibc raises that threshold to the size of the largest block freed so
    far (up to 32 MiB). After the first hash was freed, each later hash's 19 MiB came
    from the heap of the thread that ran it and stayed there: eight sign-ins from the
    thread pool left the worker 100 MB larger for good (docs/performance.md, round
    nine). A fixed threshold also turns that adjustment off. Python's own small objects
    are not affected (its allocator maps 1 MiB arenas itself).
    """
    # The process's own symbols, libc's among them: ctypes.util.find_library("c") would
    # run ldconfig in a subprocess, 24 ms of every worker's start.
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is not None:  # glibc and musl; macOS has none and needs none
        mallopt(_M_MMAP_THRESHOLD, 1024 * 1024)


_give_large_blocks_back_to_the_system()


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


def needs_rehash(password_hash: str) -> bool:
    """Whether a stored hash was made with other settings than today's (the sign-in then
    replaces it, while it has the password in hand)."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return False


def normalise_username(username: str) -> str:
    """One spelling per person: ' Alice ' and 'ALICE' are the same username."""
    return " ".join(username.split()).casefold()


def check_new_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"a password must be at least {MIN_PASSWORD_LENGTH} characters long")
