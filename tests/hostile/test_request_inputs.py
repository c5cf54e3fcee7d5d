"""Hostile headers, paths and query strings: idempotency keys, cursors, ids and filters.

Whatever arrives, the answer is a 4xx in the one error shape or a normal answer, never a 500;
a refused write posts nothing.
"""

import base64
import datetime as dt
import sys
import unicodedata
import urllib.parse

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.api.conftest import ApiOrg
from tests.api.support import balance, exchange_body, posted
from tests.hostile.conftest import fuzz, not_a_server_error, refused
from timebank.control_characters import has_control_character

MAX_BIGINT = 2**63 - 1


def cursor_of(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# --- Idempotency keys ----------------------------------------------------------------------


def key_is_valid(key: bytes) -> bool:
    return 1 <= len(key) <= 128 and all(0x20 <= byte <= 0x7E for byte in key)


async def post_with_key(client: httpx.AsyncClient, api_org: ApiOrg, key: bytes | None) -> httpx.Response:
    """One minute from a member to the agency (no floor), with ``key`` sent as raw header bytes."""
    headers = [(b"authorization", api_org.staff.headers["Authorization"].encode())]
    if key is not None:
        headers.append((b"idempotency-key", key))
    body = exchange_body(api_org.member.account_id, api_org.org.agency_account_id, minutes=1)
    return await client.post(api_org.url("/exchanges"), json=body, headers=headers)


BAD_KEYS = [
    b"",
    b"k" * 129,
    "clé".encode(),
    "ключ".encode(),
    "\u2603".encode(),
    b"\xff\xfe",
    b"a\x00b",
    b"a\r\nX-Injected: yes",
    b"a\nSet-Cookie: session=stolen",
    b"a\tb",
    b"\x7f",
    b"\x1b[31mred",
]


class TestIdempotencyKeys:
    async def test_a_malformed_key_is_refused_with_400_and_posts_nothing(self, client, api_org) -> None:
        before = await balance(client, api_org, api_org.member.account_id)
        for key in [*BAD_KEYS, None]:
            response = await post_with_key(client, api_org, key)
            refused(response, 400)
            assert "x-injected" not in response.headers and "set-cookie" not in response.headers
        assert await balance(client, api_org, api_org.member.account_id) == before

    async def test_a_key_of_128_printable_characters_is_taken(self, client, api_org) -> None:
        key = bytes(range(0x20, 0x7F)) + b"k" * (128 - 95)
        assert (await post_with_key(client, api_org, key)).status_code == 201

    async def test_the_reversal_refuses_malformed_keys_too(self, client, api_org) -> None:
        original = await posted(client, api_org, api_org.member.account_id, api_org.other_member.account_id)
        url = api_org.url(f"/exchanges/{original['id']}/reversal")
        for key in BAD_KEYS:
            headers = [(b"authorization", api_org.coordinator.headers["Authorization"].encode())]
            response = await client.post(
                url, json={"reason": "Wrong member"}, headers=[*headers, (b"idempotency-key", key)]
            )
            refused(response, 400)
        assert (await client.get(api_org.url(f"/exchanges/{original['id']}"), headers=api_org.staff.headers)).json()[
            "reversed_by_id"
        ] is None

    @fuzz
    @given(key=st.one_of(st.binary(max_size=140), st.text(max_size=140).map(str.encode)))
    @example(key=b"k" * 128)
    @example(key=b"k" * 129)
    async def test_any_key_is_taken_only_if_it_is_1_to_128_printable_ascii_characters(
        self, client: httpx.AsyncClient, api_org: ApiOrg, key: bytes
    ) -> None:
        response = await post_with_key(client, api_org, key)
        if response.status_code in (200, 201):  # 200: the same key again, the same body
            assert key_is_valid(key), f"{key!r} was taken"
        else:
            refused(response, 400)
            assert not key_is_valid(key), f"{key!r} was refused: {response.text}"


# --- Pagination cursors --------------------------------------------------------------------

BAD_CURSORS = [
    "garbage",
    "!!!!",
    "====",
    "%00",
    "a" * 101,
    cursor_of(b"\xff\xfe\x00"),
    cursor_of("not a cursor"),
    cursor_of(":"),
    cursor_of("2026-01-01:"),
    cursor_of(":5"),
    cursor_of("2026-01-01:-1"),
    cursor_of("2026-01-01:+1"),
    cursor_of("2026-01-01:1.5"),
    cursor_of("2026-01-01:\u0661"),
    cursor_of("2026-01-01:\uff11"),
    cursor_of("2026-02-30:1"),
    cursor_of("0000-01-01:1"),
    cursor_of("10000-01-01:1"),
    cursor_of(f"2026-01-01:{MAX_BIGINT + 1}"),
    cursor_of(f"2026-01-01:{10**40}"),
    cursor_of(f"2026-01-01:{'9' * 60}"),
    cursor_of("2026-01-01T00:00:00:5"),
]


class TestCursors:
    async def list_page(self, client: httpx.AsyncClient, api_org: ApiOrg, cursor: str, **params: str) -> httpx.Response:
        query = urllib.parse.urlencode({"cursor": cursor, **params}, safe="%")
        return await client.get(api_org.url(f"/exchanges?{query}"), headers=api_org.staff.headers)

    @pytest.mark.parametrize("cursor", BAD_CURSORS)
    async def test_a_cursor_this_api_did_not_give_is_refused_with_400(self, client, shared_org, cursor) -> None:
        refused(await self.list_page(client, shared_org, cursor), 400)

    @pytest.mark.parametrize(
        "cursor",
        [cursor_of("0001-01-01:1"), cursor_of("9999-12-31:1"), cursor_of(f"2026-01-01:{MAX_BIGINT}")],
    )
    async def test_a_well_formed_cursor_at_the_edges_of_the_ranges_is_read(self, client, shared_org, cursor) -> None:
        response = await self.list_page(client, shared_org, cursor)
        assert response.status_code == 200, response.text
        assert response.json()["items"] == []

    async def test_the_cursors_it_gives_out_still_work(self, client, api_org) -> None:
        ids = [
            (await posted(client, api_org, api_org.member.account_id, api_org.other_member.account_id, minutes=1))["id"]
            for _ in range(3)
        ]
        first = (await client.get(api_org.url("/exchanges?limit=2"), headers=api_org.staff.headers)).json()
        second = (await self.list_page(client, api_org, first["next_cursor"], limit="2")).json()
        assert [item["id"] for item in first["items"] + second["items"]] == ids[::-1]
        assert second["next_cursor"] is None

    @fuzz
    @given(
        cursor=st.one_of(
            st.text(max_size=100),
            st.binary(max_size=70).map(cursor_of),
            st.builds(lambda day, ident: cursor_of(f"{day}:{ident}"), st.dates(), st.integers(-(2**70), 2**70)),
        )
    )
    async def test_no_cursor_is_a_server_error(self, client: httpx.AsyncClient, api_org: ApiOrg, cursor: str) -> None:
        response = await self.list_page(client, api_org, cursor)
        not_a_server_error(response)
        if response.status_code == 200:
            assert response.json()["items"] == []


# --- Ids in the path -----------------------------------------------------------------------

ID_ROUTES = [
    ("GET", "/exchanges/{id}"),
    ("POST", "/exchanges/{id}/reversal"),
    ("GET", "/accounts/{id}"),
    ("GET", "/accounts/{id}/statement"),
    ("GET", "/members/{id}"),
    ("PATCH", "/members/{id}"),
]
BODIES = {"POST": {"reason": "Hostile id"}, "PATCH": {"display_name": "Hostile id"}}


async def call(client: httpx.AsyncClient, api_org: ApiOrg, method: str, path: str) -> httpx.Response:
    headers = api_org.coordinator.posting() if method == "POST" else api_org.coordinator.headers
    return await client.request(method, api_org.url(path), json=BODIES.get(method), headers=headers)


class TestPathIds:
    @pytest.mark.parametrize(("method", "route"), ID_ROUTES)
    async def test_zero_negative_and_ids_beyond_64_bits_are_4xx(self, client, shared_org, method, route) -> None:
        ids = ["0", "-1", str(-MAX_BIGINT - 1), str(-MAX_BIGINT - 2), str(MAX_BIGINT), str(MAX_BIGINT + 1)]
        ids += [str(10**20), str(10**100), "9" * 1000, "1e3", "0x10", "1.5", "abc", "%00", "%20", "NaN"]
        statuses = {}
        for ident in ids:
            response = await call(client, shared_org, method, route.format(id=ident))
            statuses[ident] = response.status_code
            refused(response)
        assert statuses[str(MAX_BIGINT + 1)] == 400 and statuses[str(10**20)] == 400, statuses

    @fuzz
    @given(
        route=st.sampled_from(ID_ROUTES),
        ident=st.one_of(st.integers().map(str), st.text(min_size=1, max_size=30).map(urllib.parse.quote)),
    )
    async def test_no_id_is_a_server_error(
        self, client: httpx.AsyncClient, shared_org: ApiOrg, route: tuple[str, str], ident: str
    ) -> None:
        method, path = route
        not_a_server_error(await call(client, shared_org, method, path.format(id=ident)))


# --- Query strings -------------------------------------------------------------------------


class TestQueryParameters:
    @pytest.mark.parametrize(
        ("path", "query"),
        [
            ("/exchanges", "limit=0"),
            ("/exchanges", "limit=-1"),
            ("/exchanges", "limit=201"),
            ("/exchanges", f"limit={10**20}"),
            ("/exchanges", "limit=1.5"),
            ("/exchanges", "limit=abc"),
            ("/exchanges", "from=garbage"),
            ("/exchanges", "from=2026-02-30"),
            ("/exchanges", "to=0000-01-01"),
            ("/exchanges", "to=10000-01-01"),
            ("/exchanges", "from=2026-01-01T10:00:00"),
            ("/exchanges", f"account_id={10**20}"),
            ("/exchanges", f"account_id={MAX_BIGINT + 1}"),
            ("/exchanges", "account_id=0"),
            ("/exchanges", "account_id=-1"),
            ("/exchanges", f"category={'c' * 81}"),
            ("/members", f"q={'x' * 10_000}"),
            ("/members", "limit=0"),
            ("/members", f"limit={10**20}"),
            ("/members", "offset=-1"),
            ("/members", f"offset={10**20}"),
            ("/members", "active=maybe"),
            ("/accounts", "limit=0"),
            ("/accounts", f"offset={10**20}"),
            ("/accounts/{account}/statement", "from=garbage"),
            ("/accounts/{account}/statement", "from=2026-02-01&to=2026-01-01"),
            ("/accounts/{account}/statement", "to=2026-13-01"),
            ("/accounts/{account}/statement", "limit=0"),
            ("/accounts/{account}/statement", "cursor=%00"),
        ],
    )
    async def test_is_refused_with_400(self, client, shared_org, path, query) -> None:
        url = shared_org.url(path.format(account=shared_org.member.account_id)) + "?" + query
        refused(await client.get(url, headers=shared_org.coordinator.headers), 400)

    @pytest.mark.parametrize(
        ("path", "query"),
        [
            ("/exchanges", "from=0001-01-01&to=9999-12-31"),
            ("/exchanges", f"account_id={MAX_BIGINT}"),
            ("/members", "q=%25"),
            ("/members", "q=_"),
            ("/members", "q=%5C"),
            ("/members", "q=%27%3B%20DROP%20TABLE%20members%3B--"),
            ("/accounts/{account}/statement", "from=0001-01-01&to=0001-12-31"),
            ("/accounts/{account}/statement", "from=0001-01-01&to=9999-12-31"),
            ("/accounts/{account}/statement", "to=9999-12-31"),
            ("/accounts/{account}/statement", "from=9999-01-01&to=9999-12-31"),
        ],
    )
    async def test_is_answered_even_at_the_edges(self, client, shared_org, path, query) -> None:
        url = shared_org.url(path.format(account=shared_org.member.account_id)) + "?" + query
        response = await client.get(url, headers=shared_org.coordinator.headers)
        assert response.status_code == 200, response.text
        if path == "/members":  # wildcards and quotes are searched for literally
            assert response.json()["items"] == []

    @pytest.mark.parametrize(
        ("path", "name"),
        [
            ("/members", "q"),
            ("/exchanges", "category"),
            ("/exchanges", "cursor"),
            ("/accounts/{account}/statement", "cursor"),
            ("/accounts/{account}/statement", "from"),
        ],
    )
    @pytest.mark.parametrize(
        "character", ["%00", "%01", "%1B", "%7F", "%C2%85"], ids=["NUL", "SOH", "ESC", "DEL", "NEL"]
    )
    async def test_a_control_character_is_refused_with_a_400_naming_the_parameter(
        self, client, shared_org, path, name, character
    ) -> None:
        url = shared_org.url(path.format(account=shared_org.member.account_id)) + f"?{name}=a{character}b"
        body = refused(await client.get(url, headers=shared_org.coordinator.headers), 400)
        assert f"query parameter {name!r}" in body["detail"] and "control character" in body["detail"]
        assert body["extra"][0]["key"] == name

    @pytest.mark.parametrize("character", ["%09", "%0A", "%0D"], ids=["tab", "LF", "CR"])
    async def test_tabs_and_line_breaks_are_not_control_characters_here(self, client, shared_org, character) -> None:
        r = await client.get(shared_org.url(f"/members?q=a{character}b"), headers=shared_org.coordinator.headers)
        assert r.status_code == 200, r.text
        assert r.json()["items"] == []

    async def test_a_control_character_in_a_path_segment_is_refused_with_a_400(self, client, shared_org) -> None:
        r = await client.get(f"/api/v1/orgs/{shared_org.slug}%00x/members", headers=shared_org.coordinator.headers)
        body = refused(r, 400)
        assert "address" in body["detail"] and body["extra"][0]["key"] == "path"

    async def test_a_control_character_in_a_parameter_name_is_refused(self, client, shared_org) -> None:
        r = await client.get(shared_org.url("/members?q%00=x"), headers=shared_org.coordinator.headers)
        refused(r, 400)

    @pytest.mark.parametrize("field", ["display_name", "email"])
    async def test_a_control_character_in_a_json_text_field_is_refused(self, client, shared_org, field) -> None:
        body = {"display_name": "Ann Example", field: "ann\x00@example.org"}  # sent as \u0000
        refused(await client.post(shared_org.url("/members"), json=body, headers=shared_org.staff.headers), 400)

    async def test_a_control_character_in_a_category_list_is_refused(self, client, shared_org) -> None:
        body = {"categories": ["Garden\x00ing"]}
        refused(await client.patch(shared_org.url(""), json=body, headers=shared_org.coordinator.headers), 400)

    @fuzz
    @given(
        target=st.sampled_from(
            [
                ("/exchanges", "limit"),
                ("/exchanges", "from"),
                ("/exchanges", "to"),
                ("/exchanges", "account_id"),
                ("/exchanges", "category"),
                ("/members", "q"),
                ("/members", "active"),
                ("/members", "offset"),
                ("/accounts", "limit"),
                ("/accounts/{account}/statement", "from"),
                ("/accounts/{account}/statement", "to"),
            ]
        ),
        value=st.one_of(st.text(max_size=40), st.integers().map(str), st.dates().map(dt.date.isoformat)),
    )
    async def test_no_value_is_a_server_error(
        self, client: httpx.AsyncClient, shared_org: ApiOrg, target: tuple[str, str], value: str
    ) -> None:
        path, name = target
        url = (
            shared_org.url(path.format(account=shared_org.member.account_id))
            + "?"
            + urllib.parse.urlencode({name: value})
        )
        not_a_server_error(await client.get(url, headers=shared_org.coordinator.headers))


def test_control_characters_are_exactly_unicodes_less_tab_and_line_ends() -> None:
    """The refusal is one regular expression; it must mean Unicode's category Cc (less tab,
    line feed and carriage return) for every code point, no more and no less."""
    flagged = [chr(n) for n in range(sys.maxunicode + 1) if has_control_character(chr(n))]
    expected = [chr(n) for n in range(sys.maxunicode + 1) if unicodedata.category(chr(n)) == "Cc"]
    assert flagged == [ch for ch in expected if ch not in "\t\n\r"]
