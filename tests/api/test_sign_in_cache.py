"""Each worker's memory of token checks (auth/sign_in_cache.py): ended on the very next request.

"Two workers" here are two apps on one database, each with its own memory, as two worker
processes of `timebank serve` are. Each test warms both, changes something the check reads
through one (or in the database directly), and asks the other: the answer must be what a
fresh check gives, with no lifetime to wait out. Every test runs on SQLite and PostgreSQL.
"""

import datetime as dt
import importlib.util
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar
from sqlalchemy import func, select, text, update

from tests.api.conftest import PASSWORD, ApiOrg, Person, client_for, make_app
from tests.conftest import today
from timebank.auth import context
from timebank.auth.service import give_temporary_password
from timebank.auth.sign_in_cache import Remembered, SignInCache, SignInChanged, SignInCheck
from timebank.db import Database
from timebank.ledger import PostedTransaction, post_exchange
from timebank.models import Transaction, User

_MIGRATION = next((Path(__file__).parents[2] / "migrations" / "versions").glob("*_0012_sign_in_versions.py"))
_spec = importlib.util.spec_from_file_location("sign_in_versions", _MIGRATION)
assert _spec is not None and _spec.loader is not None
sign_in_versions = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sign_in_versions)
# The columns migration 0012 watches, by table: what the token check reads.
WATCHED: dict[str, tuple[str, ...]] = sign_in_versions.WATCHED


@pytest.fixture
async def workers(db: Database) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    async with client_for(make_app(db)) as first, client_for(make_app(db)) as second:
        yield first, second


@pytest.fixture
def token_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict[str, Any]]]:
    """Every token check run in the database, by any app in this process."""
    seen: list[dict[str, Any]] = []
    checked = context._CALLER_IN_ORGANISATION.first

    async def counted(db: Database, parameters: dict[str, Any]) -> Any:
        seen.append(parameters)
        return await checked(db, parameters)

    monkeypatch.setattr(context._CALLER_IN_ORGANISATION, "first", counted)
    yield seen


async def balance(client: httpx.AsyncClient, org: ApiOrg, person: Person, account_id: int | None = None) -> int:
    answer = await client.get(org.url(f"/accounts/{account_id or person.account_id}"), headers=person.headers)
    return answer.status_code


def exchange(giver: Person, receiver: Person) -> dict[str, Any]:
    return {
        "giver_account_id": giver.account_id,
        "receiver_account_id": receiver.account_id,
        "hours": "0.5",
        "occurred_on": today().isoformat(),
        "description": "help with the garden",
    }


async def log(client: httpx.AsyncClient, org: ApiOrg, person: Person, key: str | None = None) -> int:
    # A member may log only help they received; staff log between any two members.
    giver, receiver = (org.other_member, person) if person is org.member else (org.member, org.other_member)
    body = exchange(giver, receiver)
    answer = await client.post(org.url("/exchanges"), json=body, headers=person.posting(key))
    return answer.status_code


async def edit_member(client: httpx.AsyncClient, org: ApiOrg, person: Person, changes: dict[str, Any]) -> None:
    """The coordinator changes ``person``'s membership through the API."""
    edited = await client.patch(org.url(f"/members/{person.member_id}"), json=changes, headers=org.coordinator.headers)
    assert edited.status_code == 200, edited.text


async def warm(workers: tuple[httpx.AsyncClient, ...], org: ApiOrg, person: Person) -> None:
    """Both workers remember ``person``: each has checked their token once."""
    for worker in workers:
        assert await balance(worker, org, person) == 200


async def transactions_keyed(db: Database, key: str) -> int:
    async with db.autocommit() as conn:
        return int(await conn.scalar(select(func.count()).where(Transaction.__table__.c.idempotency_key == key)) or 0)


async def test_a_remembered_standing_saves_the_token_check(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient], api_org: ApiOrg, token_checks: list[dict[str, Any]]
) -> None:
    first, _ = workers
    assert await balance(first, api_org, api_org.member) == 200
    assert await log(first, api_org, api_org.member) == 201
    assert await balance(first, api_org, api_org.member) == 200
    assert len(token_checks) == 1  # the first request checked; the next two were confirmed by their own statement


@pytest.mark.parametrize("route", ["balance", "log"])
async def test_a_sign_out_on_one_worker_ends_the_token_on_the_other(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient], api_org: ApiOrg, db: Database, route: str
) -> None:
    first, second = workers
    member = api_org.member
    await warm(workers, api_org, member)
    assert (await first.delete("/api/v1/auth/token", headers=member.headers)).status_code == 204
    key = uuid.uuid4().hex
    status = await balance(second, api_org, member) if route == "balance" else await log(second, api_org, member, key)
    assert status == 401
    assert await transactions_keyed(db, key) == 0  # the refused write wrote nothing


async def test_a_refused_write_claims_nothing_so_the_same_key_posts_once_afterwards(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient], api_org: ApiOrg, db: Database
) -> None:
    first, second = workers
    staff = api_org.staff
    await warm(workers, api_org, staff)
    assert (await first.delete("/api/v1/auth/token", headers=staff.headers)).status_code == 204
    key = uuid.uuid4().hex
    assert await log(second, api_org, staff, key) == 401
    signed_in = await first.post("/api/v1/auth/token", json={"username": staff.username, "password": PASSWORD})
    staff.token = signed_in.json()["access_token"]
    assert await log(second, api_org, staff, key) == 201  # created, not replayed: the refused try claimed nothing
    assert await log(second, api_org, staff, key) == 200  # and now it is a replay
    assert await transactions_keyed(db, key) == 1


async def test_deactivating_a_member_ends_their_standing_on_every_worker(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient], api_org: ApiOrg
) -> None:
    first, second = workers
    member = api_org.member
    await warm(workers, api_org, member)
    await edit_member(first, api_org, member, {"is_active": False})
    assert await balance(second, api_org, member) == 404  # the organisation is no longer theirs
    assert await log(second, api_org, member) == 404


async def test_a_demoted_staff_member_is_refused_as_a_member_at_once(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient], api_org: ApiOrg
) -> None:
    first, second = workers
    staff = api_org.staff
    await warm(workers, api_org, staff)
    assert await balance(second, api_org, staff, api_org.member.account_id) == 200  # staff read anyone's
    await edit_member(first, api_org, staff, {"role": "member"})
    assert await balance(second, api_org, staff, api_org.member.account_id) == 403
    assert await log(second, api_org, staff) == 403  # staff = logging between any two accounts


async def test_a_promoted_member_is_not_refused_by_a_remembered_role(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient], api_org: ApiOrg
) -> None:
    first, second = workers
    member = api_org.member
    await warm(workers, api_org, member)
    await edit_member(first, api_org, member, {"role": "staff"})
    # Refused by the remembered role (a member may not read another's account), then checked afresh.
    assert await balance(second, api_org, member, api_org.other_member.account_id) == 200


async def test_a_temporary_password_ends_the_old_token_everywhere(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient], api_org: ApiOrg, db: Database
) -> None:
    member = api_org.member
    await warm(workers, api_org, member)
    await give_temporary_password(db, member.user_id, "a new temporary password")  # what staff do on a page
    for worker in workers:
        assert await balance(worker, api_org, member) == 401


async def test_a_refusal_with_a_remembered_standing_is_the_refusal_a_fresh_check_gives(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient], api_org: ApiOrg, token_checks: list[dict[str, Any]]
) -> None:
    _, second = workers
    member = api_org.member
    await warm(workers, api_org, member)
    token_checks.clear()
    too_much = exchange(api_org.other_member, member) | {"hours": "50"}
    answer = await second.post(api_org.url("/exchanges"), json=too_much, headers=member.posting())
    assert answer.status_code == 409, answer.text
    assert "balance" in answer.json()["detail"]
    assert len(token_checks) == 1  # confirmed before the refusal was given


async def test_an_expired_token_is_refused_though_remembered(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient], api_org: ApiOrg, monkeypatch: pytest.MonkeyPatch
) -> None:
    member = api_org.member
    await warm(workers, api_org, member)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)  # the test tokens live one hour
    monkeypatch.setattr(context, "_now", lambda: later)
    for worker in workers:
        assert await balance(worker, api_org, member) == 401


async def test_a_version_moved_by_anything_else_is_checked_afresh_and_then_remembered(
    workers: tuple[httpx.AsyncClient, httpx.AsyncClient],
    api_org: ApiOrg,
    db: Database,
    token_checks: list[dict[str, Any]],
) -> None:
    _, second = workers
    member = api_org.member
    await warm(workers, api_org, member)
    async with db.transaction() as conn:  # a change no route makes: the database's triggers still see it
        await conn.execute(update(User).where(User.id == member.user_id).values(username=member.username))
    token_checks.clear()
    assert await balance(second, api_org, member) == 200
    assert await log(second, api_org, member) == 201
    assert await balance(second, api_org, member) == 200
    assert len(token_checks) == 1  # checked once after the change, then remembered again


# Every column the check reads, changed to the value it already has: the version must move
# all the same (a trigger cannot know whether the check would now answer differently).
_CHANGES = {
    "api_tokens.revoked_at": "UPDATE api_tokens SET revoked_at = revoked_at WHERE user_id = :user",
    "api_tokens.expires_at": "UPDATE api_tokens SET expires_at = expires_at WHERE user_id = :user",
    "api_tokens.token_hash": "UPDATE api_tokens SET token_hash = token_hash WHERE user_id = :user",
    "api_tokens.user_id": "UPDATE api_tokens SET user_id = user_id WHERE user_id = :user",
    "api_tokens deleted": "DELETE FROM api_tokens WHERE user_id = :user",
    "users.username": "UPDATE users SET username = username WHERE id = :user",
    "users.is_active": "UPDATE users SET is_active = is_active WHERE id = :user",
    "users.is_site_admin": "UPDATE users SET is_site_admin = is_site_admin WHERE id = :user",
    "users.must_change_password": "UPDATE users SET must_change_password = must_change_password WHERE id = :user",
    "members.role": "UPDATE members SET role = role WHERE user_id = :user",
    "members.is_active": "UPDATE members SET is_active = is_active WHERE user_id = :user",
    "members.user_id": "UPDATE members SET user_id = user_id WHERE user_id = :user",
    "members.organisation_id": "UPDATE members SET organisation_id = organisation_id WHERE user_id = :user",
    "organisations.slug": "UPDATE organisations SET slug = slug WHERE id = :org",
    "organisations.timezone": "UPDATE organisations SET timezone = timezone WHERE id = :org",
    "accounts.member_id": "UPDATE accounts SET member_id = member_id WHERE member_id = :member",
    "accounts.organisation_id": "UPDATE accounts SET organisation_id = organisation_id WHERE member_id = :member",
}


async def sign_in_version(db: Database, user_id: int) -> int:
    async with db.autocommit() as conn:
        return int(await conn.scalar(select(User.sign_in_version).where(User.id == user_id)))  # type: ignore[arg-type]


@pytest.mark.parametrize("change", list(_CHANGES))
async def test_every_column_the_check_reads_moves_the_version(api_org: ApiOrg, db: Database, change: str) -> None:
    table, _, column = change.partition(".")
    assert change.endswith("deleted") or column in WATCHED[table]
    member = api_org.member
    before = await sign_in_version(db, member.user_id)
    others = await sign_in_version(db, api_org.other_member.user_id)
    async with db.transaction() as conn:
        await conn.execute(
            text(_CHANGES[change]), {"user": member.user_id, "org": api_org.id, "member": member.member_id}
        )
    assert await sign_in_version(db, member.user_id) > before
    if not table.startswith("organisations"):  # an organisation's change concerns all its members
        assert await sign_in_version(db, api_org.other_member.user_id) == others


def test_the_changes_tried_cover_every_watched_column() -> None:
    tried = {change for change in _CHANGES if "." in change}
    assert tried == {f"{table}.{column}" for table, columns in WATCHED.items() for column in columns}


async def test_what_a_sign_in_or_a_posting_changes_moves_no_version(api_org: ApiOrg, db: Database) -> None:
    member = api_org.member
    before = await sign_in_version(db, member.user_id)
    async with client_for(make_app(db)) as client:
        signed_in = await client.post("/api/v1/auth/token", json={"username": member.username, "password": PASSWORD})
        assert signed_in.status_code == 200
        logged = await client.post(
            api_org.url("/exchanges"), json=exchange(api_org.other_member, member), headers=member.posting()
        )
        assert logged.status_code == 201
    assert await sign_in_version(db, member.user_id) == before  # so a busy day keeps its memory


class TestTheWritersRefuseAChangedVersion:
    """The ledger's own check, under the routes: nothing written, on either writer."""

    async def test_a_write_at_another_version_writes_nothing(self, api_org: ApiOrg, db: Database) -> None:
        staff = api_org.staff
        version = await sign_in_version(db, staff.user_id)
        key = uuid.uuid4().hex

        async def post_at(remembered_version: int) -> PostedTransaction:
            return await post_exchange(
                db,
                api_org.id,
                giver_account_id=api_org.member.account_id,
                receiver_account_id=api_org.other_member.account_id,
                minutes=30,
                occurred_on=today(),
                description="help",
                recorded_by=staff.user_id,
                idempotency_key=key,
                sign_in=SignInCheck(staff.user_id, remembered_version),
            )

        with pytest.raises(SignInChanged):
            await post_at(version - 1)
        assert await transactions_keyed(db, key) == 0
        assert (await post_at(version)).created


class TestTheBounds:
    def remembered(self, minutes: float = 60) -> Remembered:
        return Remembered(object(), 0, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes))

    def test_never_more_than_its_bound_the_least_recently_used_dropped_first(self) -> None:
        cache = SignInCache(3)
        now = dt.datetime.now(dt.UTC)
        for n in range(3):
            cache.put(f"token-{n}", "org", self.remembered())
        assert cache.get("token-0", "org", now) is not None  # used: now the most recent
        for n in range(3, 10):
            cache.put(f"token-{n}", "org", self.remembered())
            assert len(cache) <= 3
        assert [cache.get(f"token-{n}", "org", now) is not None for n in range(10)] == [False] * 7 + [True] * 3

    def test_one_token_in_two_organisations_is_two_entries(self) -> None:
        cache = SignInCache(10)
        cache.put("token", "riverside", self.remembered())
        cache.put("token", "hillside", self.remembered())
        assert len(cache) == 2
        cache.forget("token", "riverside")
        assert cache.get("token", "hillside", dt.datetime.now(dt.UTC)) is not None

    def test_an_expired_entry_is_dropped_when_asked_for(self) -> None:
        cache = SignInCache(10)
        cache.put("token", "org", self.remembered(minutes=-1))
        assert cache.get("token", "org", dt.datetime.now(dt.UTC)) is None
        assert len(cache) == 0

    def test_zero_remembers_nothing(self) -> None:
        cache = SignInCache(0)
        cache.put("token", "org", self.remembered())
        assert len(cache) == 0

    async def test_a_worker_holds_at_most_its_bound_and_still_answers_everyone(
        self, api_org: ApiOrg, db: Database, token_checks: list[dict[str, Any]]
    ) -> None:
        app: Litestar = make_app(db, sign_in_cache_entries=2)
        people = [api_org.member, api_org.other_member, api_org.staff]
        async with client_for(app) as worker:
            for _ in range(2):
                for person in people:
                    assert await balance(worker, api_org, person) == 200
            assert len(app.state.sign_in_cache) == 2
        assert len(token_checks) == 6  # three people through two places: every request checked
