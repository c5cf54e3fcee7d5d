"""Who is calling, and what they are in the organisation named in the path.

One query answers both (token -> user -> membership), so an authenticated,
organisation-scoped request costs a single round trip before its real work.
Every route re-reads the token and the user, so a revoked token or a deactivated
user loses access at the very next request; the two hottest routes (a balance,
logging an exchange) instead take the standing a worker remembers and have their
own statement confirm it (``OrgAccess``, auth/sign_in_cache.py), to the same effect
with no round trip of its own.
"""

import datetime as dt
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from litestar import Request
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotAuthorizedException, NotFoundException, PermissionDeniedException
from litestar.params import FromPath
from sqlalchemy import and_, bindparam, select

from timebank.auth.sign_in_cache import Remembered, SignInCache, SignInChanged, SignInCheck
from timebank.auth.tokens import hash_token
from timebank.db import Database, as_utc
from timebank.db.hot_path import HotStatement
from timebank.ledger.errors import LedgerError
from timebank.models import Account, ApiToken, Member, Organisation, Role, User

api_tokens = ApiToken.__table__
users = User.__table__
members = Member.__table__
accounts = Account.__table__
organisations = Organisation.__table__

STAFF_ROLES = frozenset({Role.STAFF, Role.COORDINATOR})


@dataclass(frozen=True, slots=True)
class Caller:
    user_id: int
    username: str
    is_site_admin: bool
    token_hash: str
    must_change_password: bool = False


@dataclass(frozen=True, slots=True)
class OrgContext:
    """The caller's standing in one organisation (they are an active member of it)."""

    caller: Caller
    organisation_id: int
    slug: str
    timezone: str
    member_id: int
    role: Role
    account_id: int

    @property
    def is_staff(self) -> bool:
        """Staff or coordinator: may act on any member of the organisation."""
        return self.role in STAFF_ROLES

    def require_staff(self) -> None:
        if not self.is_staff:
            raise PermissionDeniedException("only staff and coordinators may do this")

    def require_coordinator(self) -> None:
        if self.role is not Role.COORDINATOR:
            raise PermissionDeniedException("only a coordinator may do this")


def _bearer_token_hash(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthorizedException(
            "sign in first: send 'Authorization: Bearer <token>' (POST /api/v1/auth/token gives one)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return hash_token(token.strip())


# Built once: every authenticated request runs one of these, so it should not pay
# for building and hashing the SQL expression again each time.
_LIVE_TOKEN = and_(
    api_tokens.c.token_hash == bindparam("token_hash"),
    api_tokens.c.revoked_at.is_(None),
    api_tokens.c.expires_at > bindparam("now"),
    users.c.is_active.is_(True),
)
_CALLER = HotStatement(
    select(users.c.id, users.c.username, users.c.is_site_admin, users.c.must_change_password)
    .select_from(api_tokens.join(users, users.c.id == api_tokens.c.user_id))
    .where(_LIVE_TOKEN)
)
_CALLER_IN_ORGANISATION = HotStatement(
    select(
        users.c.id.label("user_id"),
        users.c.username,
        users.c.is_site_admin,
        users.c.must_change_password,
        organisations.c.id.label("organisation_id"),
        organisations.c.timezone,
        members.c.id.label("member_id"),
        members.c.role,
        accounts.c.id.label("account_id"),
        # For the worker's memory of this check (auth/sign_in_cache.py), read with it.
        api_tokens.c.expires_at,
        users.c.sign_in_version,
    )
    .select_from(
        api_tokens.join(users, users.c.id == api_tokens.c.user_id)
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
    .where(_LIVE_TOKEN)
)
_EXPIRED = "the token is invalid, expired or revoked; sign in again"
MUST_CHANGE_PASSWORD = (
    "your password is a temporary one: change it first with POST /api/v1/me/password; "
    "until then nothing else is allowed"
)


def _refuse_temporary_password(row: Mapping[str, Any]) -> None:
    if row["must_change_password"]:
        raise PermissionDeniedException(MUST_CHANGE_PASSWORD, extra={"must_change_password": True})


async def provide_caller_with_any_password(request: Request, db: NamedDependency[Database]) -> Caller:
    """The caller, even one whose password is temporary (changing it, signing out)."""
    token_hash = _bearer_token_hash(request)
    row = await _CALLER.first(db, {"token_hash": token_hash, "now": dt.datetime.now(dt.UTC)})
    if row is None:
        raise NotAuthorizedException(_EXPIRED, headers={"WWW-Authenticate": "Bearer"})
    return Caller(row["id"], row["username"], row["is_site_admin"], token_hash, row["must_change_password"])


async def provide_caller(request: Request, db: NamedDependency[Database]) -> Caller:
    caller = await provide_caller_with_any_password(request, db)
    _refuse_temporary_password({"must_change_password": caller.must_change_password})
    return caller


async def provide_org_context(request: Request, org: FromPath[str], db: NamedDependency[Database]) -> OrgContext:
    """The caller and their membership of ``org``; 404 if they are not an active member."""
    return await _check_org_context(db, sign_in_cache_of(request), _bearer_token_hash(request), org)


def sign_in_cache_of(request: Request) -> SignInCache:
    """This app's (this worker's) memory of token checks, made by ``create_app``."""
    return request.app.state.sign_in_cache  # type: ignore[no-any-return]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _check_org_context(db: Database, cache: SignInCache, token_hash: str, org: str) -> OrgContext:
    """The token checked in the database, and the standing it grants remembered for ``OrgAccess``."""
    now = _now()
    row = await _CALLER_IN_ORGANISATION.first(db, {"token_hash": token_hash, "now": now, "slug": org})
    if row is None:
        raise NotAuthorizedException(_EXPIRED, headers={"WWW-Authenticate": "Bearer"})
    _refuse_temporary_password(row)
    if row["member_id"] is None:
        # The same answer whether the organisation does not exist or is not theirs.
        raise NotFoundException(f"no organisation {org!r}")
    context = OrgContext(
        caller=Caller(row["user_id"], row["username"], row["is_site_admin"], token_hash),
        organisation_id=row["organisation_id"],
        slug=org,
        timezone=row["timezone"],
        member_id=row["member_id"],
        role=Role(row["role"]),
        account_id=row["account_id"],
    )
    cache.put(token_hash, org, Remembered(context, row["sign_in_version"], as_utc(row["expires_at"])))
    return context


T = TypeVar("T")
# The work a hot route does as the caller: given their standing, and the version its own
# statement must find (None when this request checked the token itself).
Work = Callable[[OrgContext, SignInCheck | None], Awaitable[T]]


@dataclass(frozen=True, slots=True)
class OrgAccess:
    """The caller's standing in ``org`` for a route whose statement confirms it (see ``run``)."""

    context: OrgContext
    check: SignInCheck | None  # None: checked by this request, nothing left to confirm
    db: Database
    cache: SignInCache

    async def run(self, work: Work[T]) -> T:
        """``work`` as the caller; with a remembered standing, only an answer its statement confirmed leaves.

        The statement found another version: the standing is checked afresh (which may refuse:
        401, 403, 404) and the work done again with it. Refused by a rule (403, 404, a ledger
        refusal) before confirming anything: the refusal is given only if a fresh check finds
        the same standing (a member just made staff is not refused as a member); otherwise
        the work is done again. Every refusal rolls its transaction back, so either way at
        most one attempt writes.
        """
        if self.check is None:
            return await work(self.context, None)
        try:
            return await work(self.context, self.check)
        except SignInChanged:
            return await work(await self._check_afresh(), None)
        except (HTTPException, LedgerError):
            fresh = await self._check_afresh()
            if fresh != self.context:
                return await work(fresh, None)
            raise

    async def _check_afresh(self) -> OrgContext:
        self.cache.forget(self.context.caller.token_hash, self.context.slug)
        return await _check_org_context(self.db, self.cache, self.context.caller.token_hash, self.context.slug)


async def provide_org_access(request: Request, org: FromPath[str], db: NamedDependency[Database]) -> OrgAccess:
    """The caller's standing in ``org``: remembered by this worker if it can be, else checked now."""
    token_hash = _bearer_token_hash(request)
    sign_in_cache = sign_in_cache_of(request)
    remembered = sign_in_cache.get(token_hash, org, _now())
    if remembered is None:
        return OrgAccess(await _check_org_context(db, sign_in_cache, token_hash, org), None, db, sign_in_cache)
    context = remembered.standing
    return OrgAccess(context, SignInCheck(context.caller.user_id, remembered.sign_in_version), db, sign_in_cache)
