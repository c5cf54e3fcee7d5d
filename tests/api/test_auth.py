"""Sign-in, sign-out, bearer tokens and /me, through HTTP."""

import asyncio
import datetime as dt
import hashlib
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import httpx
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select, update

from tests.api.conftest import PASSWORD, ApiOrg, Person, add_site_admin, client_for, make_api_org, make_app
from tests.api.support import error, invalid
from tests.conftest import make_org
from timebank.auth import passwords
from timebank.auth import service as auth_service
from timebank.auth.passwords import verify_password
from timebank.auth.service import DUMMY_HASH, temporary_password_statements
from timebank.db import Database
from timebank.members.service import create_member
from timebank.models import ApiToken, Member, Role, SignInFailure, User

TOKEN = "/api/v1/auth/token"
ME = "/api/v1/me"
api_tokens = ApiToken.__table__
users = User.__table__
failures = SignInFailure.__table__

# The same argon2id, at the lowest cost: a real hash costs about half a second to check on
# a small machine, and the rate-limit tests check passwords dozens of times.
_cheap_hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(scope="module")
async def shared_org(db):
    """One organisation for the tests that only send refused requests."""
    return await make_api_org(db)


async def cheap_password(db: Database, person: Person) -> Person:
    async with db.transaction() as conn:
        await conn.execute(
            update(users).where(users.c.id == person.user_id).values(password_hash=_cheap_hasher.hash(PASSWORD))
        )
    return person


async def sign_in(http: httpx.AsyncClient, username: str, password: str = PASSWORD) -> httpx.Response:
    return await http.post(TOKEN, json={"username": username, "password": password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def set_user_active(db: Database, user_id: int, active: bool) -> None:
    async with db.transaction() as conn:
        await conn.execute(update(users).where(users.c.id == user_id).values(is_active=active))


class TestSignIn:
    async def test_gives_a_bearer_token_that_works(self, client, db, api_org):
        person = await cheap_password(db, api_org.member)
        before = dt.datetime.now(dt.UTC)
        r = await sign_in(client, person.username)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"access_token", "token_type", "expires_at", "must_change_password"}
        assert body["must_change_password"] is False
        assert body["token_type"] == "bearer"
        expires_at = dt.datetime.fromisoformat(body["expires_at"])
        # The default lifetime is 12 hours.
        assert before + dt.timedelta(hours=11.9) < expires_at < before + dt.timedelta(hours=12.1)
        me = await client.get(ME, headers=bearer(body["access_token"]))
        assert me.status_code == 200, me.text
        assert me.json()["username"] == person.username

    async def test_matches_the_username_whatever_its_case_and_spacing(self, client, db, api_org):
        person = await cheap_password(db, api_org.staff)
        r = await sign_in(client, f"  {person.username.upper()} ")
        assert r.status_code == 200, r.text

    async def test_takes_the_password_exactly_as_typed(self, client, db, api_org):
        person = await cheap_password(db, api_org.staff)
        assert (await sign_in(client, person.username, f" {PASSWORD}")).status_code == 401
        assert (await sign_in(client, person.username, PASSWORD.upper())).status_code == 401

    async def test_wrong_password_and_unknown_user_get_the_same_401(self, client, db, api_org):
        person = await cheap_password(db, api_org.member)
        wrong_password = await sign_in(client, person.username, "not the password")
        unknown_user = await sign_in(client, f"nobody-{person.username}", "not the password")
        assert error(wrong_password, 401) == error(unknown_user, 401)
        assert "wrong username or password" in wrong_password.json()["detail"]

    async def test_a_deactivated_user_cannot_sign_in_and_is_told_nothing_more(self, client, db, api_org):
        person = await cheap_password(db, api_org.member)
        wrong_password = await sign_in(client, person.username, "not the password")
        await set_user_active(db, person.user_id, False)
        refused = await sign_in(client, person.username)
        assert error(refused, 401) == wrong_password.json()

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "username"),
            ({"username": "someone"}, "password"),
            ({"username": "someone", "password": ""}, "password"),
            ({"username": "", "password": "secret"}, "username"),
            ({"username": "x" * 151, "password": "secret"}, "username"),
            ({"username": 42, "password": "secret"}, "username"),
            ({"username": "someone", "password": "secret", "remember_me": True}, "remember_me"),
            ({"username": "some\x00one", "password": "secret"}, None),
        ],
        ids=["empty", "no-password", "blank-password", "blank-username", "long-username", "number", "extra", "nul"],
    )
    async def test_refuses_a_malformed_request_with_400(self, client, body, field):
        invalid(await client.post(TOKEN, json=body), field)

    async def test_refuses_a_body_that_is_not_json_with_400(self, client):
        invalid(await client.post(TOKEN, content=b"{username", headers={"Content-Type": "application/json"}))


class TestSignInRateLimit:
    """Failed sign-ins are limited per username and per client; successes never count."""

    async def test_failures_for_one_username_are_limited_from_any_address(self, db, api_org):
        person = await cheap_password(db, api_org.member)
        app = make_app(db, sign_in_failures_per_user=3, sign_in_failures_per_client=100)
        async with client_for(app) as first, client_for(app) as second:
            for _ in range(3):
                assert (await sign_in(first, person.username, "guess")).status_code == 401
            throttled = await sign_in(second, person.username)  # the right password, elsewhere
        body = error(throttled, 429)
        retry_after = int(throttled.headers["Retry-After"])
        assert 0 < retry_after <= 15 * 60
        assert body["extra"] == {"retry_after_seconds": retry_after}
        assert "try again in" in body["detail"]

    async def test_changing_the_case_or_spacing_of_the_username_does_not_dodge_the_limit(self, db, api_org):
        person = await cheap_password(db, api_org.member)
        app = make_app(db, sign_in_failures_per_user=3, sign_in_failures_per_client=100)
        async with client_for(app) as http:
            for spelling in (person.username.upper(), f"  {person.username} ", person.username.title()):
                assert (await sign_in(http, spelling, "guess")).status_code == 401
            error(await sign_in(http, person.username), 429)

    async def test_failures_from_one_address_are_limited_whatever_the_username(self, db, api_org):
        people = [await cheap_password(db, p) for p in (api_org.member, api_org.other_member, api_org.staff)]
        app = make_app(db, sign_in_failures_per_user=100, sign_in_failures_per_client=3)
        async with client_for(app) as shared, client_for(app) as elsewhere:
            for person in people:
                assert (await sign_in(shared, person.username, "guess")).status_code == 401
            assert error(await sign_in(shared, people[0].username), 429)
            # Another address is not held back by this one's failures.
            assert (await sign_in(elsewhere, people[0].username)).status_code == 200

    async def test_many_successful_sign_ins_from_one_address_are_not_blocked(self, db, api_org):
        people = [await cheap_password(db, p) for p in (api_org.member, api_org.other_member, api_org.staff)]
        app = make_app(db, sign_in_failures_per_user=2, sign_in_failures_per_client=2)
        async with client_for(app) as shared:
            statuses = [(await sign_in(shared, person.username)).status_code for person in people * 3]
        assert statuses == [200] * 9

    async def test_a_successful_sign_in_forgives_the_usernames_earlier_failures(self, db, api_org):
        person = await cheap_password(db, api_org.member)
        app = make_app(db, sign_in_failures_per_user=3, sign_in_failures_per_client=100)
        async with client_for(app) as http:
            for _ in range(2):
                assert (await sign_in(http, person.username, "guess")).status_code == 401
            assert (await sign_in(http, person.username)).status_code == 200
            for _ in range(2):
                assert (await sign_in(http, person.username, "guess")).status_code == 401
            assert (await sign_in(http, person.username)).status_code == 200

    async def test_the_limit_lifts_when_its_window_has_passed(self, db, api_org):
        person = await cheap_password(db, api_org.member)
        app = make_app(db, sign_in_failures_per_user=2, sign_in_failures_per_client=100, sign_in_window_minutes=15)
        async with client_for(app) as http:
            for _ in range(2):
                await sign_in(http, person.username, "guess")
            error(await sign_in(http, person.username), 429)
            async with db.transaction() as conn:
                await conn.execute(
                    update(failures)
                    .where(failures.c.bucket == f"user:{person.username}")
                    .values(window_started_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16))
                )
            assert (await sign_in(http, person.username)).status_code == 200


class TestSignOut:
    async def test_revokes_the_token_in_use_and_only_that_one(self, client, db, api_org):
        person = await cheap_password(db, api_org.member)
        other = (await sign_in(client, person.username)).json()["access_token"]
        r = await client.delete(TOKEN, headers=person.headers)
        assert r.status_code == 204, r.text
        error(await client.get(ME, headers=person.headers), 401)
        error(await client.get(api_org.url(), headers=person.headers), 401)
        error(await client.delete(TOKEN, headers=person.headers), 401)
        assert (await client.get(ME, headers=bearer(other))).status_code == 200

    async def test_needs_a_token(self, client):
        error(await client.delete(TOKEN), 401)


class TestMe:
    async def test_lists_each_organisation_with_role_member_and_account(self, client, db, api_org):
        person = api_org.member
        elsewhere = await make_org(db)
        staff_there = await create_member(
            db, elsewhere.id, display_name="Also staff there", role=Role.STAFF, changed_by=None
        )
        async with db.transaction() as conn:
            await conn.execute(
                update(Member.__table__)
                .where(Member.__table__.c.id == staff_there.member.id)
                .values(user_id=person.user_id)
            )
        r = await client.get(ME, headers=person.headers)
        assert r.status_code == 200, r.text
        expected = sorted(
            [
                {
                    "slug": api_org.slug,
                    "name": f"Test centre {api_org.slug}",
                    "role": "member",
                    "member_id": person.member_id,
                    "account_id": person.account_id,
                },
                {
                    "slug": elsewhere.slug,
                    "name": f"Test centre {elsewhere.slug}",
                    "role": "staff",
                    "member_id": staff_there.member.id,
                    "account_id": staff_there.account.id,
                },
            ],
            key=lambda membership: membership["slug"],
        )
        assert r.json() == {
            "id": person.user_id,
            "username": person.username,
            "is_site_admin": False,
            "organisations": expected,
        }

    async def test_leaves_out_an_organisation_where_the_membership_was_deactivated(self, client, api_org):
        r = await client.patch(
            api_org.url(f"/members/{api_org.member.member_id}"),
            json={"is_active": False},
            headers=api_org.coordinator.headers,
        )
        assert r.status_code == 200, r.text
        me = await client.get(ME, headers=api_org.member.headers)
        assert me.status_code == 200
        assert me.json()["organisations"] == []
        error(await client.get(api_org.url(), headers=api_org.member.headers), 404)

    async def test_a_site_administrator_belongs_to_no_organisation(self, client, db):
        admin = await add_site_admin(db)
        r = await client.get(ME, headers=admin.headers)
        assert r.status_code == 200, r.text
        assert r.json()["is_site_admin"] is True
        assert r.json()["organisations"] == []


class TestBearerTokens:
    @pytest.mark.parametrize(
        "authorization",
        [None, "", "Bearer", "Bearer   ", "Basic dXNlcjpwYXNz", "Bearer not-a-token", "Token abc"],
    )
    async def test_a_request_without_a_valid_token_is_401_with_a_bearer_challenge(
        self, client, shared_org: ApiOrg, authorization
    ):
        headers = {} if authorization is None else {"Authorization": authorization}
        for url in (ME, shared_org.url(), shared_org.url("/members")):
            r = await client.get(url, headers=headers)
            error(r, 401)
            assert r.headers["WWW-Authenticate"] == "Bearer"

    async def test_an_expired_token_is_refused(self, client, db, api_org):
        person = api_org.member
        assert (await client.get(ME, headers=person.headers)).status_code == 200
        async with db.transaction() as conn:
            await conn.execute(
                update(api_tokens)
                .where(api_tokens.c.token_hash == hashlib.sha256(person.token.encode()).hexdigest())
                .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
            )
        body = error(await client.get(ME, headers=person.headers), 401)
        assert "expired" in body["detail"]
        error(await client.get(api_org.url(f"/accounts/{person.account_id}"), headers=person.headers), 401)

    async def test_a_deactivated_user_loses_access_at_the_next_request(self, client, db, api_org):
        person = api_org.staff
        assert (await client.get(api_org.url("/members"), headers=person.headers)).status_code == 200
        await set_user_active(db, person.user_id, False)
        error(await client.get(api_org.url("/members"), headers=person.headers), 401)
        error(await client.get(ME, headers=person.headers), 401)

    async def test_tokens_are_stored_only_as_a_hash(self, client, db, api_org):
        person = await cheap_password(db, api_org.member)
        token = (await sign_in(client, person.username)).json()["access_token"]
        async with db.engine.connect() as conn:
            rows = (await conn.execute(select(api_tokens))).all()
        stored = [str(value) for row in rows for value in row]
        assert not any(token in value for value in stored)
        assert hashlib.sha256(token.encode()).hexdigest() in stored


async def stored_hash(db: Database, user_id: int) -> str:
    async with db.autocommit() as conn:
        return await conn.scalar(select(users.c.password_hash).where(users.c.id == user_id))


class TestHashesOfOlderSettings:
    """A hash made with other cost settings (the 64 MiB ones before round nine of
    docs/performance.md, here the tests' cheap ones) is replaced at the next sign-in."""

    async def test_a_sign_in_replaces_it_with_one_of_todays_settings(self, client, db, api_org):
        person = await cheap_password(db, api_org.member)
        assert passwords.needs_rehash(await stored_hash(db, person.user_id))
        r = await sign_in(client, person.username)
        assert r.status_code == 200, r.text
        replaced = await stored_hash(db, person.user_id)
        assert not passwords.needs_rehash(replaced)
        assert verify_password(replaced, PASSWORD) and not verify_password(replaced, "another password")
        # The token of that sign-in works, and the next sign-in leaves the new hash alone.
        assert (await client.get(ME, headers=bearer(r.json()["access_token"]))).status_code == 200
        assert (await sign_in(client, person.username)).status_code == 200
        assert await stored_hash(db, person.user_id) == replaced

    async def test_a_password_reset_meanwhile_is_not_undone(self, client, db, api_org, monkeypatch):
        """Staff reset the password while the old one was being checked and rehashed: the
        sign-in (with the old password, checked first) must not write the old password back."""
        person = await cheap_password(db, api_org.member)
        loop = asyncio.get_running_loop()
        reset_hash = passwords._hasher.hash("the reset password")

        async def reset() -> None:
            async with db.transaction() as conn:
                for statement in temporary_password_statements(person.user_id, reset_hash, dt.datetime.now(dt.UTC)):
                    await conn.execute(statement)

        def hash_while_reset(password: str) -> str:  # runs in a thread, as the real one does
            asyncio.run_coroutine_threadsafe(reset(), loop).result(timeout=10)
            return passwords.hash_password(password)

        monkeypatch.setattr(auth_service, "hash_password", hash_while_reset)
        assert (await sign_in(client, person.username)).status_code == 200
        assert await stored_hash(db, person.user_id) == reset_hash

    async def test_a_wrong_password_changes_nothing(self, client, db, api_org):
        person = await cheap_password(db, api_org.member)
        before = await stored_hash(db, person.user_id)
        assert (await sign_in(client, person.username, "not the password")).status_code == 401
        assert await stored_hash(db, person.user_id) == before


def test_the_unknown_username_hash_costs_what_a_real_one_does() -> None:
    """An unknown username is verified against DUMMY_HASH so that it takes as long as a known
    one: the literal must carry the cost settings real hashes get today (a library upgrade
    that raised them would make unknown usernames answer faster, and so be told apart)."""
    assert not passwords._hasher.check_needs_rehash(DUMMY_HASH)
    assert not verify_password(DUMMY_HASH, "any password at all")


def test_passwords_are_hashed_and_checked_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each real hash holds 19 MiB while it runs: a room signing in at once must not hold
    that many times over. Eight threads checking and setting passwords meet one at a time."""
    running, most = 0, 0
    count = threading.Lock()

    def one_hash(*_: object) -> str:
        nonlocal running, most
        with count:
            running += 1
            most = max(most, running)
        time.sleep(0.02)  # long enough for the other threads to arrive while it runs
        with count:
            running -= 1
        return "$argon2id$fake"

    monkeypatch.setattr(passwords, "_hasher", SimpleNamespace(hash=one_hash, verify=lambda *_: True))
    with ThreadPoolExecutor(max_workers=8) as pool:
        checks = [pool.submit(verify_password, "$argon2id$stored", "password") for _ in range(4)]
        hashes = [pool.submit(passwords.hash_password, "new password") for _ in range(4)]
        assert all(check.result() for check in checks) and all(h.result() == "$argon2id$fake" for h in hashes)
    assert most == 1


_HASHES_FROM_EIGHT_THREADS = """
import re
from concurrent.futures import ThreadPoolExecutor
from timebank.auth.passwords import hash_password, verify_password

def rss_mb():
    return int(re.search(r"VmRSS:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) / 1024

stored = hash_password("a password")
before = rss_mb()
with ThreadPoolExecutor(max_workers=8) as pool:
    assert all(pool.map(lambda _: verify_password(stored, "a password"), range(16)))
print(rss_mb() - before)
"""


def test_the_memory_of_each_hash_is_given_back() -> None:
    """A room signing in at once runs its hashes in the thread pool's threads. Each hash's
    memory must go back to the system when it ends: with glibc's default thresholds, each
    thread kept its own and the worker stayed 100 MB or more larger for good."""
    grown_mb = float(
        subprocess.run(
            [sys.executable, "-c", _HASHES_FROM_EIGHT_THREADS], capture_output=True, text=True, timeout=120, check=True
        ).stdout
    )
    assert grown_mb < 19, f"the process kept {grown_mb:.0f} MB after 16 checks"
