"""Behind a reverse proxy: forwarded headers are believed from TIMEBANK_TRUSTED_PROXIES only.

The middleware is specified on its own first (an ASGI app that records what it was
given), then through the real app: the sign-in limit keys on the real client address.
"""

import ipaddress
import itertools
import re
from dataclasses import dataclass, field

import httpx
import pytest
from sqlalchemy import select

from tests.api.conftest import ApiOrg, client_for, make_app
from tests.api.support import error
from timebank.config import Settings
from timebank.db import Database, create_database
from timebank.models import SignInFailure
from timebank.proxy import request_context_middleware

TOKEN = "/api/v1/auth/token"
GENERATED_ID = re.compile(r"[0-9a-f]{32}")
failures = SignInFailure.__table__
_addresses = itertools.count(1)


def networks(*texts: str) -> tuple:
    return tuple(ipaddress.ip_network(text) for text in texts)


@dataclass
class Seen:
    """What the app behind the middleware was given, and what the client was answered."""

    scope: dict = field(default_factory=dict)
    response_headers: list = field(default_factory=list)

    @property
    def client(self) -> str:
        return self.scope["client"][0]

    @property
    def request_id(self) -> str:
        (value,) = [v.decode() for k, v in self.response_headers if k == b"x-request-id"]
        return value


async def through_middleware(trusted: tuple, peer: str, headers: dict[str, str] | None = None) -> Seen:
    seen = Seen()

    async def inner(scope, receive, send) -> None:
        seen.scope = dict(scope)
        await send({"type": "http.response.start", "status": 204, "headers": [(b"x-inner", b"1")]})
        await send({"type": "http.response.body", "body": b""})

    async def send(message) -> None:
        if message["type"] == "http.response.start":
            seen.response_headers = list(message["headers"])

    scope = {
        "type": "http",
        "scheme": "http",
        "method": "GET",
        "path": "/health",
        "client": (peer, 50000),
        "headers": [(name.lower().encode(), value.encode()) for name, value in (headers or {}).items()],
    }
    await request_context_middleware(inner, trusted)(scope, None, send)  # type: ignore[arg-type]
    return seen


FORGED = {"X-Forwarded-For": "203.0.113.66", "X-Forwarded-Proto": "https", "X-Request-ID": "forged-id"}


class TestTheSetting:
    def test_is_a_comma_separated_list_of_addresses_and_networks_and_empty_by_default(self, monkeypatch) -> None:
        monkeypatch.delenv("TIMEBANK_TRUSTED_PROXIES", raising=False)
        assert Settings().trusted_proxies == ()
        monkeypatch.setenv("TIMEBANK_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8,::1")
        assert Settings().trusted_proxies == networks("127.0.0.1/32", "10.0.0.0/8", "::1/128")

    def test_refuses_something_that_is_not_an_address(self, monkeypatch) -> None:
        monkeypatch.setenv("TIMEBANK_TRUSTED_PROXIES", "127.0.0.1, proxy.example")
        with pytest.raises(ValueError, match="TIMEBANK_TRUSTED_PROXIES"):
            Settings()


class TestWithoutTrustedProxies:
    @pytest.mark.parametrize("peer", ["127.0.0.1", "10.1.2.3", "::1"])
    async def test_forwarded_headers_are_ignored_even_from_the_loopback(self, peer: str) -> None:
        seen = await through_middleware((), peer, FORGED)
        assert seen.client == peer
        assert seen.scope["scheme"] == "http"
        assert GENERATED_ID.fullmatch(seen.request_id)

    async def test_each_request_gets_its_own_id_on_the_response(self) -> None:
        first, second = [await through_middleware((), "10.1.2.3") for _ in range(2)]
        assert GENERATED_ID.fullmatch(first.request_id) and first.request_id != second.request_id
        assert (b"x-inner", b"1") in first.response_headers  # the app's own headers are kept


class TestFromATrustedProxy:
    TRUSTED = networks("10.0.0.0/8", "::1/128")

    async def test_the_client_is_the_forwarded_address(self) -> None:
        seen = await through_middleware(self.TRUSTED, "10.0.0.5", {"X-Forwarded-For": "203.0.113.7"})
        assert seen.scope["client"] == ("203.0.113.7", 0)

    @pytest.mark.parametrize(
        ("forwarded_for", "client"),
        [
            ("6.6.6.6, 203.0.113.7", "203.0.113.7"),  # the caller's own X-Forwarded-For, appended to by nginx
            ("203.0.113.7, 10.0.0.9", "203.0.113.7"),  # two proxies of ours
            ("10.0.0.8, 10.0.0.9", "10.0.0.8"),  # only proxies: the farthest
            ("203.0.113.7:4711", "203.0.113.7"),
            ("[2001:db8::7]:443", "2001:db8::7"),
            ("unknown", "10.0.0.5"),  # garbled by our proxy: the proxy itself
            ("203.0.113.7, garbage", "10.0.0.5"),
        ],
    )
    async def test_the_client_is_the_nearest_address_that_is_not_a_trusted_proxy(self, forwarded_for, client) -> None:
        seen = await through_middleware(self.TRUSTED, "10.0.0.5", {"X-Forwarded-For": forwarded_for})
        assert seen.client == client

    async def test_an_ipv6_proxy_and_a_dual_stack_view_of_an_ipv4_one_are_recognised(self) -> None:
        assert (await through_middleware(self.TRUSTED, "::1", FORGED)).client == "203.0.113.66"
        assert (await through_middleware(self.TRUSTED, "::ffff:10.0.0.5", FORGED)).client == "203.0.113.66"

    async def test_the_scheme_is_the_forwarded_one(self) -> None:
        assert (await through_middleware(self.TRUSTED, "10.0.0.5", FORGED)).scope["scheme"] == "https"
        odd = await through_middleware(self.TRUSTED, "10.0.0.5", {"X-Forwarded-Proto": "gopher"})
        assert odd.scope["scheme"] == "http"

    async def test_its_request_id_is_kept(self) -> None:
        seen = await through_middleware(self.TRUSTED, "10.0.0.5", {"X-Request-ID": "8f14e45fceea167a5a36dedd4bea2543"})
        assert seen.request_id == "8f14e45fceea167a5a36dedd4bea2543"

    @pytest.mark.parametrize("unsafe", ["two words", "line\nbreak", "x" * 129, 'quote"d', ""])
    async def test_a_request_id_that_could_garble_a_log_line_is_replaced(self, unsafe: str) -> None:
        seen = await through_middleware(self.TRUSTED, "10.0.0.5", {"X-Request-ID": unsafe})
        assert GENERATED_ID.fullmatch(seen.request_id)


class TestFromAnUntrustedPeer:
    async def test_a_forged_header_is_ignored_when_proxies_are_configured(self) -> None:
        seen = await through_middleware(networks("10.0.0.0/8"), "192.0.2.50", FORGED)
        assert seen.client == "192.0.2.50"
        assert seen.scope["scheme"] == "http"
        assert seen.request_id != "forged-id" and GENERATED_ID.fullmatch(seen.request_id)


# --- Through the app: the sign-in limit ------------------------------------------------------


def new_address(prefix: str = "198.18") -> str:
    number = next(_addresses)
    return f"{prefix}.{number // 256 % 256}.{number % 256}"


async def fail_sign_in(http: httpx.AsyncClient, api_org: ApiOrg, forwarded_for: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    return await http.post(TOKEN, json={"username": api_org.member.username, "password": "guess"}, headers=headers)


async def client_buckets(db: Database) -> set[str]:
    async with db.engine.connect() as conn:
        return set((await conn.scalars(select(failures.c.bucket).where(failures.c.bucket.like("client:%")))).all())


class TestTheSignInLimitBehindAProxy:
    """Two failures per client address, a hundred per username: only the client limit can bite."""

    LIMITS = {"sign_in_failures_per_client": 2, "sign_in_failures_per_user": 100}

    async def test_behind_a_trusted_proxy_it_keys_on_the_forwarded_address(self, db: Database, api_org: ApiOrg):
        proxy, guesser, neighbour = new_address("10.77"), new_address(), new_address()
        app = make_app(db, trusted_proxies=networks("10.77.0.0/16"), **self.LIMITS)
        async with client_for(app, proxy) as http:
            assert [(await fail_sign_in(http, api_org, guesser)).status_code for _ in range(2)] == [401, 401]
            error(await fail_sign_in(http, api_org, guesser), 429)
            # Someone else behind the same proxy is not locked out by the guesser's mistakes.
            assert (await fail_sign_in(http, api_org, neighbour)).status_code == 401
        buckets = await client_buckets(db)
        assert {f"client:{guesser}", f"client:{neighbour}"} <= buckets
        assert f"client:{proxy}" not in buckets

    async def test_without_trusted_proxies_everyone_behind_one_shares_its_address(self, db, api_org) -> None:
        proxy = new_address("10.78")
        app = make_app(db, **self.LIMITS)
        async with client_for(app, proxy) as http:
            for _ in range(2):
                assert (await fail_sign_in(http, api_org, new_address())).status_code == 401
            error(await fail_sign_in(http, api_org, new_address()), 429)  # a "different" person: the same address
        assert f"client:{proxy}" in await client_buckets(db)

    async def test_a_forged_header_from_an_untrusted_peer_is_ignored(self, db: Database, api_org: ApiOrg) -> None:
        proxy, attacker, victim = new_address("10.79"), new_address("192.0"), new_address()
        app = make_app(db, trusted_proxies=networks("10.79.0.0/16"), **self.LIMITS)
        async with client_for(app, attacker) as direct:
            for _ in range(2):
                assert (await fail_sign_in(direct, api_org, victim)).status_code == 401
            error(await fail_sign_in(direct, api_org, victim), 429)
        async with client_for(app, proxy) as via_proxy:  # the victim, through the real proxy, is not locked out
            assert (await fail_sign_in(via_proxy, api_org, victim)).status_code == 401
        buckets = await client_buckets(db)
        assert f"client:{attacker}" in buckets
        assert f"client:{proxy}" not in buckets


# --- Through the app: the request id in answers ----------------------------------------------


class TestTheRequestIdInAnswers:
    async def test_every_answer_carries_it_refusals_and_unknown_paths_included(self, client, api_org) -> None:
        answers = [
            await client.get("/health"),
            await client.get("/no/such/page"),
            await fail_sign_in(client, api_org),
            await client.post(TOKEN, content=b"x" * (65 * 1024), headers={"Content-Type": "application/json"}),
        ]
        assert [a.status_code for a in answers] == [200, 404, 401, 413]
        ids = [a.headers["x-request-id"] for a in answers]
        assert all(GENERATED_ID.fullmatch(i) for i in ids) and len(set(ids)) == len(ids)
        assert error(answers[2], 401)["extra"] == {}  # a client error's body keeps its own shape

    async def test_a_server_error_has_it_in_its_body_too(self, client, api_org, monkeypatch) -> None:
        async def broken(*_: object, **__: object) -> None:
            raise RuntimeError("a bug")

        monkeypatch.setattr("timebank.accounts.endpoints.get_account", broken)
        failed = await client.get(api_org.url(f"/accounts/{api_org.member.account_id}"), headers=api_org.staff.headers)
        assert error(failed, 500)["extra"] == {"request_id": failed.headers["x-request-id"]}

    async def test_an_unavailable_database_has_it_in_its_body_too(self) -> None:
        gone = create_database("postgresql://postgres@127.0.0.1:9/nowhere", timeout_seconds=1)
        try:
            async with client_for(make_app(gone, trusted_proxies=networks("10.80.0.0/16")), "10.80.0.1") as http:
                failed = await http.post(
                    TOKEN, json={"username": "a", "password": "b"}, headers={"X-Request-ID": "proxy-req-503"}
                )
        finally:
            await gone.dispose()
        assert error(failed, 503)["extra"] == {"request_id": "proxy-req-503"}
        assert failed.headers["x-request-id"] == "proxy-req-503"
