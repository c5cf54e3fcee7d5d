"""Security under attack: password storage and logs, security headers on every response,
the sign-in limit against Unicode spellings, oversized and deeply nested bodies.

Already specified in tests/api/test_auth.py, and not repeated here: tokens are stored only
as a hash, expire, and die with sign-out; a deactivated user loses access at the next request;
the sign-in limit ignores ASCII case and surrounding spaces.
"""

import re
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from argon2 import PasswordHasher
from litestar import Litestar
from sqlalchemy import select, update

from tests.api.conftest import PASSWORD, ApiOrg, add_person, client_for, make_app
from tests.api.support import exchange_body
from tests.conftest import make_org
from tests.hostile.conftest import refused, run_command
from timebank.db import Database, create_database
from timebank.models import Role, User
from timebank.security import CHART_CSP, NOT_PAGE_PREFIXES, is_chart

users = User.__table__
TOKEN = "/api/v1/auth/token"
_cheap_hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def secret(label: str) -> str:
    """A password no log line could contain by chance."""
    return f"{label}-{uuid.uuid4().hex}"


# --- Passwords -----------------------------------------------------------------------------


class TestPasswordStorage:
    async def test_a_password_given_through_the_api_is_stored_as_an_argon2id_hash_and_never_answered(
        self, client: httpx.AsyncClient, db: Database, api_org: ApiOrg
    ) -> None:
        password = secret("new-member")
        username = f"argon-{uuid.uuid4().hex[:8]}"
        body = {"display_name": "Hashed Member", "username": username, "password": password}
        created = await client.post(api_org.url("/members"), json=body, headers=api_org.staff.headers)
        assert created.status_code == 201, created.text
        async with db.engine.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.username == username))).one()
        assert row.password_hash.startswith("$argon2id$")
        assert PasswordHasher().verify(row.password_hash, password)
        assert not any(password in str(value) for value in row)
        read = await client.get(api_org.url(f"/members/{created.json()['id']}"), headers=api_org.staff.headers)
        for answer in (created, read):
            assert password not in answer.text and "$argon2" not in answer.text and "password" not in answer.text


class TestNothingSecretIsLogged:
    """A real ``timebank serve`` at DEBUG, everything it writes to stdout and stderr captured:
    no password, token, cookie, name or email address in it, and a request id on every request line."""

    async def test_no_password_or_token_reaches_the_log(self, db: Database, database_url: str, tmp_path: Path) -> None:
        from scripts.drills.live_server import ServerProcess

        org = await make_org(db)
        coordinator = await add_person(db, org, Role.COORDINATOR)
        coordinator_password = secret("coordinator")
        async with db.transaction() as conn:
            await conn.execute(
                update(users)
                .where(users.c.id == coordinator.user_id)
                .values(password_hash=_cheap_hasher.hash(coordinator_password))
            )
        metrics_token = secret("metrics-token")
        session_cookie = secret("cookie")
        secrets = [coordinator_password, metrics_token, session_cookie]
        with ServerProcess(
            database_url, tmp_path, log_level="DEBUG", sign_in_failures_per_user="2", metrics_token=metrics_token
        ) as server:
            server.start()
            cookies = {"session": session_cookie}
            async with httpx.AsyncClient(base_url=server.base_url, timeout=30, cookies=cookies) as http:

                async def sign_in(username: str, password: str, **extra: object) -> httpx.Response:
                    secrets.append(password)
                    return await http.post(TOKEN, json={"username": username, "password": password, **extra})

                signed_in = await sign_in(coordinator.username, coordinator_password)
                assert signed_in.status_code == 200, signed_in.text
                token = signed_in.json()["access_token"]
                secrets.append(token)
                headers = {"Authorization": f"Bearer {token}"}
                member_password = secret("member")
                # Personal data: a name and an email address that no log line could hold by chance.
                name, email = f"Ada {uuid.uuid4().hex}", f"ada-{uuid.uuid4().hex}@example.org"
                secrets += [member_password, name, email]
                username = f"logged-{uuid.uuid4().hex[:8]}"
                created = await http.post(
                    f"/api/v1/orgs/{org.slug}/members",
                    json={"display_name": name, "email": email, "username": username, "password": member_password},
                    headers=headers,
                )
                assert created.status_code == 201, created.text
                async with db.transaction() as conn:  # a cheaper hash: this test checks it a few times
                    await conn.execute(
                        update(users)
                        .where(users.c.username == username)
                        .values(password_hash=_cheap_hasher.hash(member_password))
                    )
                member_token = (await sign_in(username, member_password)).json()["access_token"]
                secrets.append(member_token)
                statuses = [
                    (await sign_in(username, secret("wrong"))).status_code,
                    (await sign_in(f"nobody-{username}", secret("unknown-user"))).status_code,
                    (await sign_in(username, secret("too-long") + "x" * 1024)).status_code,
                    (await sign_in(username, secret("extra-field"), remember_me=True)).status_code,
                    (await sign_in(username, secret("wrong-again"))).status_code,
                    (await sign_in(username, member_password)).status_code,  # throttled by now
                ]
                assert statuses == [401, 401, 400, 400, 401, 429]
                too_short = "Zq7#xK!"  # 7 characters: refused as too short
                secrets.append(too_short)
                refused_member = await http.post(
                    f"/api/v1/orgs/{org.slug}/members",
                    json={"display_name": "Short", "username": f"short-{username}", "password": too_short},
                    headers=headers,
                )
                assert refused_member.status_code == 400 and too_short not in refused_member.text
                taken_password = secret("taken")
                secrets.append(taken_password)
                taken = await http.post(
                    f"/api/v1/orgs/{org.slug}/members",
                    json={"display_name": "Again", "username": username.upper(), "password": taken_password},
                    headers=headers,
                )
                assert taken.status_code == 409
                assert (
                    await http.delete(TOKEN, headers={"Authorization": f"Bearer {member_token}"})
                ).status_code == 204
                assert (
                    await http.get("/api/v1/me", headers={"Authorization": f"Bearer {member_token}"})
                ).status_code == 401
                assert (
                    await http.get("/metrics", headers={"Authorization": f"Bearer {metrics_token}"})
                ).status_code == 200
                assert (
                    await http.get("/metrics", headers={"Authorization": f"Bearer {secret('guess')}"})
                ).status_code == 401
                members = await http.get(f"/api/v1/orgs/{org.slug}/members", headers=headers)
                assert name in members.text  # the answer has it; the log must not
        log = server.log_file.read_text(errors="replace")
        assert TOKEN in log and "/members" in log, "the request log is not where this test looks"
        leaked = [value for value in secrets if value in log]
        assert not leaked, f"secrets or personal data in the server's log: {leaked}"
        requests = [line for line in log.splitlines() if '"event":"request"' in line]
        assert len(requests) >= 15 and all('"request_id":"' in line for line in requests)

    @pytest.mark.usefixtures("cli_database")
    async def test_the_command_line_does_not_print_the_password_it_is_given(self, db: Database) -> None:
        password = secret("initial")
        slug = f"cli-{uuid.uuid4().hex[:8]}"
        done = await run_command(
            "org", "create", slug, "--name", "CLI centre", "--coordinator", f"coordinator-{slug}",
            env={"TIMEBANK_INITIAL_PASSWORD": password},
        )  # fmt: skip
        assert done.exit_code == 0, done.output
        assert slug in done.output
        assert password not in done.output
        async with db.engine.connect() as conn:
            stored = await conn.scalar(select(users.c.password_hash).where(users.c.username == f"coordinator-{slug}"))
        assert stored.startswith("$argon2id$") and password not in stored


# --- Security headers ----------------------------------------------------------------------

DOCS_PREFIXES = ("/schema", "/static/")


def check_security_headers(response: httpx.Response) -> None:
    """The headers every answer carries; the API's CSP forbids everything, the explorer's inline script."""
    where = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
    headers = response.headers
    for name, value in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
    ]:
        assert headers.get_list(name) == [value], f"{where}: {name} is {headers.get_list(name)}"
    (csp,) = headers.get_list("content-security-policy") or [None]
    assert csp, f"{where}: no Content-Security-Policy"
    directives = {d.split()[0]: d.split()[1:] for d in csp.split(";") if d.strip()}
    assert directives["default-src"] == ["'none'"], f"{where}: {csp}"
    assert directives["frame-ancestors"] == ["'none'"], f"{where}: {csp}"
    path = response.request.url.path
    if path.startswith(DOCS_PREFIXES):
        assert "'unsafe-inline'" not in directives.get("script-src", []), f"{where}: {csp}"
        assert "'unsafe-eval'" not in directives.get("script-src", []), f"{where}: {csp}"
    elif is_chart(path):
        # A report chart (an SVG shown by <img>): inline style, nothing else, not even a script.
        assert csp == CHART_CSP, f"{where}: {csp}"
        assert headers.get("cache-control") == "no-store", f"{where}: {headers.get('cache-control')}"
    elif not path.startswith(NOT_PAGE_PREFIXES):
        # A page: its own files only, forms post here, nothing inline, and never kept in a cache.
        assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp, f"{where}: {csp}"
        for directive in ("script-src", "style-src", "img-src", "form-action"):
            assert directives[directive] == ["'self'"], f"{where}: {csp}"
        assert headers.get("cache-control") == "no-store", f"{where}: {headers.get('cache-control')}"
    else:
        assert set(directives) == {"default-src", "frame-ancestors", "base-uri", "form-action"}, f"{where}: {csp}"


def path_values(api_org: ApiOrg, transaction_id: int) -> dict[str, str]:
    """A real value for each path parameter of the app (a new parameter must be added here)."""
    return {
        "org": api_org.slug,
        "member_id": str(api_org.member.member_id),
        "account_id": str(api_org.member.account_id),
        "transaction_id": str(transaction_id),
        # No such request: its routes answer not-found, with the same headers.
        "correction_id": "1000000",
        # A setting's form; posted without "confirmed", only its check step (nothing is saved).
        "change": "name",
        # A month long ago (closing it may be allowed or refused: these tests look only at the
        # headers of whatever answer comes back).
        "month": "2001-01",
        "file_path": "docs/swagger-init.js",
        "path": "openapi.json",
        "name": "trend.svg",
    }


def concrete_paths(app: Litestar, values: dict[str, str]) -> list[tuple[str, str]]:
    """(method, url) for every method of every route of the app."""
    calls = []
    for route in app.routes:
        path = route.path
        for name, definition in route.path_parameters.items():  # type: ignore[attr-defined]
            assert name in values, f"no example value for the path parameter {name!r} of {route.path}"
            path = path.replace("{" + definition.full + "}", values[name])
        calls += [(method, path) for method in sorted(route.methods)]  # type: ignore[attr-defined]
    return calls


class TestSecurityHeaders:
    async def test_every_route_and_method_answers_with_them_signed_in_or_not(
        self, app: Litestar, client: httpx.AsyncClient, db: Database, api_org: ApiOrg
    ) -> None:
        body = exchange_body(api_org.member.account_id, api_org.other_member.account_id, minutes=1)
        posted = await client.post(api_org.url("/exchanges"), json=body, headers=api_org.staff.posting())
        calls = concrete_paths(app, path_values(api_org, posted.json()["id"]))
        signing_out = await add_person(db, api_org.org, Role.MEMBER)  # DELETE /auth/token revokes its token
        seen = set()
        for method, path in calls:
            for person in (api_org.coordinator if method != "DELETE" else signing_out, None):
                headers = person.posting() if person else {}
                json_body = {} if method in ("POST", "PATCH") else None
                response = await client.request(method, path, json=json_body, headers=headers)
                check_security_headers(response)
                seen.add(response.status_code)
        assert len(calls) >= 30 and {200, 204, 400, 401} <= seen, (len(calls), seen)

    @pytest.mark.parametrize(
        ("method", "path", "status"),
        [
            ("GET", "/no/such/page", 404),
            ("GET", "/api/v1/orgs/no-such-org/members/1/nothing", 404),
            ("DELETE", "/health", 405),
            ("PUT", "/api/v1/auth/token", 405),
            ("GET", "/static/%2e%2e/app.py", 404),  # our own source, by path traversal
            ("GET", "/static/docs/..%2f..%2fconfig.py", 404),
            ("GET", "/static/%2fetc%2fpasswd", 404),
            ("GET", "/static/no-such-file.js", 404),
            ("GET", "/schema/no-such-renderer", 404),
            ("GET", "/api/v1/me", 401),
        ],
    )
    async def test_errors_answer_with_them(self, client, method, path, status) -> None:
        response = await client.request(method, path)
        assert response.status_code == status, response.text
        check_security_headers(response)

    async def test_a_bad_request_and_a_too_large_one_answer_with_them(self, client) -> None:
        bad = await client.post(TOKEN, content=b"{", headers={"Content-Type": "application/json"})
        large = await client.post(TOKEN, content=b"x" * (65 * 1024), headers={"Content-Type": "application/json"})
        for response, status in ((bad, 400), (large, 413)):
            refused(response, status)
            check_security_headers(response)

    async def test_a_throttled_sign_in_answers_with_them(self, db: Database, api_org: ApiOrg) -> None:
        app = make_app(db, sign_in_failures_per_user=100, sign_in_failures_per_client=1)
        async with client_for(app) as http:
            await http.post(TOKEN, json={"username": f"nobody-{uuid.uuid4().hex}", "password": "guess"})
            throttled = await http.post(TOKEN, json={"username": api_org.member.username, "password": PASSWORD})
        refused(throttled, 429)
        check_security_headers(throttled)

    async def test_an_unreachable_database_answers_with_them(self) -> None:
        gone = create_database("postgresql://postgres@127.0.0.1:9/nowhere", timeout_seconds=1)
        try:
            app = make_app(gone)
            async with client_for(app) as http:
                ready = await http.get("/ready")
                signing_in = await http.post(TOKEN, json={"username": "someone", "password": "whatever"})
        finally:
            await gone.dispose()
        for response in (ready, signing_in):
            assert response.status_code == 503, response.text
            check_security_headers(response)

    async def test_an_unexpected_failure_answers_with_them_and_no_detail(
        self, client: httpx.AsyncClient, api_org: ApiOrg, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        async def broken(*_: object, **__: object) -> None:
            raise RuntimeError("a bug, with internal detail /srv/secret/path")

        monkeypatch.setattr("timebank.accounts.endpoints.get_account", broken)
        response = await client.get(
            api_org.url(f"/accounts/{api_org.member.account_id}"), headers=api_org.staff.headers
        )
        assert response.status_code == 500
        assert "secret" not in response.text and "Traceback" not in response.text
        check_security_headers(response)

    async def test_the_api_explorer_runs_no_inline_script(self, client) -> None:
        page = await client.get("/schema/")
        assert page.status_code == 200
        check_security_headers(page)
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, flags=re.S | re.I)
        assert scripts and all("src=" in attrs and not inline.strip() for attrs, inline in scripts), scripts
        assert not re.search(r"\son[a-z]+\s*=", page.text, flags=re.I), "inline event handlers need 'unsafe-inline'"
        for attrs, _ in scripts:
            src = re.search(r'src="([^"]+)"', attrs)
            assert src and src.group(1).startswith("/static/"), attrs  # our own files, no CDN
            script = await client.get(src.group(1))
            assert script.status_code == 200
            check_security_headers(script)


# --- The sign-in limit ---------------------------------------------------------------------


RESPELLINGS: list[Callable[[str], str]] = [
    lambda name: f"\t{name.upper()}\n",
    lambda name: f"\u00a0{name.title()}\u00a0",  # no-break spaces
    lambda name: f"\u3000{name}\u2003",  # ideographic and em spaces
    lambda name: f" \r\n{name.swapcase()} ",
]


class TestSignInLimit:
    async def test_unicode_spaces_and_case_do_not_dodge_it(self, db: Database, api_org: ApiOrg) -> None:
        people = [api_org.coordinator, api_org.staff, api_org.member, api_org.other_member]
        async with db.transaction() as conn:
            cheap = _cheap_hasher.hash(PASSWORD)
            await conn.execute(
                update(users).where(users.c.id.in_([p.user_id for p in people])).values(password_hash=cheap)
            )
        app = make_app(db, sign_in_failures_per_user=2, sign_in_failures_per_client=100)
        for person, respell in zip(people, RESPELLINGS, strict=True):
            async with client_for(app) as first, client_for(app) as second:
                for http in (first, second):
                    guess = await http.post(TOKEN, json={"username": respell(person.username), "password": "guess"})
                    assert guess.status_code == 401, guess.text
                refused(await second.post(TOKEN, json={"username": person.username, "password": PASSWORD}), 429)


# --- Oversized and deeply nested bodies ----------------------------------------------------


async def chunks(size: int, chunk: int = 8192) -> AsyncIterator[bytes]:
    sent = 0
    while sent < size:
        yield b" " * min(chunk, size - sent)
        sent += chunk


class TestRequestBodies:
    async def test_a_body_over_the_limit_is_413_before_any_sign_in(self, client) -> None:
        body = b'{"username": "someone", "password": "' + b"p" * (64 * 1024) + b'"}'
        response = await client.post(TOKEN, content=body, headers={"Content-Type": "application/json"})
        refused(response, 413)

    async def test_a_streamed_body_without_a_length_is_cut_off_at_the_limit(self, client, api_org) -> None:
        headers = {**api_org.staff.posting(), "Content-Type": "application/json"}
        response = await client.post(api_org.url("/exchanges"), content=chunks(200 * 1024), headers=headers)
        assert "content-length" not in response.request.headers
        refused(response, 413)

    async def test_the_limit_is_the_setting(self, db: Database, api_org: ApiOrg) -> None:
        app = make_app(db, max_request_bytes=1024)
        body = exchange_body(api_org.member.account_id, api_org.other_member.account_id, description="d" * 400)
        async with client_for(app) as http:
            small = await http.post(api_org.url("/exchanges"), json=body, headers=api_org.staff.posting())
            body["description"] = "d" * 1100
            large = await http.post(api_org.url("/exchanges"), json=body, headers=api_org.staff.posting())
        assert small.status_code == 201, small.text
        refused(large, 413)

    async def test_a_body_just_under_the_default_limit_is_read(self, client, api_org) -> None:
        padding = 64 * 1024 - 200
        raw = b'{"display_name": "Padded"' + b" " * padding + b"}"
        assert len(raw) < 64 * 1024
        response = await client.post(
            api_org.url("/members"), content=raw, headers={**api_org.staff.headers, "Content-Type": "application/json"}
        )
        assert response.status_code == 201, response.text

    async def test_deep_nesting_is_400_never_500(self, client, shared_org) -> None:
        targets = [
            ("POST", TOKEN, {}),
            ("POST", shared_org.url("/exchanges"), shared_org.staff.posting()),
            ("POST", shared_org.url("/members"), shared_org.staff.headers),
            ("PATCH", shared_org.url(), shared_org.coordinator.headers),
        ]
        for depth in (64, 1_000, 10_000):  # all within the 64 KiB limit
            for raw in (
                b"[" * depth + b"]" * depth,
                b'{"a":' * depth + b"1" + b"}" * depth,
                b'{"display_name": ' + b"[" * depth + b"]" * depth + b"}",
            ):
                for method, url, headers in targets:
                    response = await client.request(
                        method, url, content=raw, headers={**headers, "Content-Type": "application/json"}
                    )
                    refused(response, 400)
