"""Each worker's memory of recent token checks, and the version that ends it.

A token check (auth/context.py) is a four-table join and a round trip of its own, as
costly for PostgreSQL as the balance read it guards. So each worker remembers the
standings it has checked, by token and organisation, together with the caller's
``users.sign_in_version`` read in the same statement. The database bumps that version
in the same transaction as anything the check reads changing: a token revoked, a
sign-out, a password reset, a role change, a deactivation (migration 0012's triggers).

A remembered standing is only provisional. The request's own statement reads the
version again (the balance read, ``timebank_post_as``, the SQLite writer's rules) and
the answer is released only if it is unchanged: otherwise the statement is refused or
its rows thrown away, and the request is checked afresh (``OrgAccess.run``). So a
revocation committed before a request's statement began ends that request, on every
worker, with no lifetime to wait out and no message to miss: the next request after a
sign-out is refused wherever it lands. Only the hot API routes (a balance, logging an
exchange) use it; every other route checks the token itself, as before.
"""

import datetime as dt
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import ScalarSelect, bindparam, select

from timebank.models import User

if TYPE_CHECKING:  # context.py imports this module
    from timebank.auth.context import OrgContext

users = User.__table__


class SignInChanged(Exception):
    """The caller's sign-in version moved since their standing was remembered: check it afresh."""


@dataclass(frozen=True, slots=True)
class SignInCheck:
    """What a statement must find for a remembered standing to hold: this user at this version."""

    user_id: int
    version: int

    def confirm(self, found: int | None) -> None:
        """Raise ``SignInChanged`` unless ``found`` (read by the work's own statement) is the version."""
        if found != self.version:
            raise SignInChanged


def sign_in_version_of_caller() -> ScalarSelect[Any]:
    """The version of the user passed as ``caller_user_id``, as a column of any statement (NULL if none)."""
    return select(users.c.sign_in_version).where(users.c.id == bindparam("caller_user_id")).scalar_subquery()


def caller_parameter(sign_in: SignInCheck | None) -> dict[str, int | None]:
    """``caller_user_id`` for a statement with ``sign_in_version_of_caller``: None reads nothing."""
    return {"caller_user_id": sign_in.user_id if sign_in is not None else None}


@dataclass(frozen=True, slots=True)
class Remembered:
    standing: "OrgContext"
    sign_in_version: int
    token_expires_at: dt.datetime


class SignInCache:
    """At most ``max_entries`` standings, least recently used dropped first; 0 remembers nothing.

    Per worker and per app (``create_app``), never shared: a worker restarted, or a second
    app in one process, starts empty. Asyncio runs one request's code at a time, so the
    dictionary needs no lock.
    """

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], Remembered] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token_hash: str, slug: str, now: dt.datetime) -> Remembered | None:
        key = (token_hash, slug)
        found = self._entries.get(key)
        if found is None:
            return None
        if found.token_expires_at <= now:  # an expired token is refused by the check itself
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return found

    def put(self, token_hash: str, slug: str, remembered: Remembered) -> None:
        if self.max_entries <= 0:
            return
        self._entries[(token_hash, slug)] = remembered
        self._entries.move_to_end((token_hash, slug))
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, token_hash: str, slug: str) -> None:
        self._entries.pop((token_hash, slug), None)
