"""Dates under attack: the far past and future, impossible days, datetimes and numbers
instead of dates, and organisations on either side of the date line.

A date is a calendar day written YYYY-MM-DD in the organisation's own time zone: anything
else is refused with a 400, never taken as some nearby day.
"""

import datetime as dt
import json
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.api.conftest import ApiOrg, Person, add_person
from tests.api.support import balance, exchange_body
from tests.conftest import make_org, today
from tests.hostile.conftest import fuzz, refused
from timebank.db import Database
from timebank.models import Role

NOT_DATES = [
    "2026-02-30", "2025-02-29", "2026-13-01", "2026-00-10", "2026-01-32", "0000-01-01", "10000-01-01",
    "+2026-01-01", "-2026-01-01", "2026-1-1", "20260101", "2026/01/01", "01/02/2026", "", " ", "yesterday",
    "today", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00+14:00", "2026-01-01T00:00", "2026-01-01 00:00",
    "2026-01-01T10:00:00", "2026-W01-1", "2026-001", "\u0662\u0660\u0662\u0666-01-01", 20260101, 0, 86400,
    1767225600, "1767225600", 1.5, True, None, [], ["2026-01-01"], {}, {"year": 2026},
]  # fmt: skip


async def post_dated(client: httpx.AsyncClient, api_org: ApiOrg, occurred_on: Any) -> httpx.Response:
    """One minute from a member to the agency (no floor), dated ``occurred_on`` (any JSON value)."""
    body = exchange_body(api_org.member.account_id, api_org.org.agency_account_id, minutes=1)
    body["occurred_on"] = occurred_on
    return await client.post(api_org.url("/exchanges"), json=body, headers=api_org.staff.posting())


class TestOccurredOn:
    async def test_anything_but_a_real_day_written_yyyy_mm_dd_is_refused(self, client, api_org) -> None:
        before = await balance(client, api_org, api_org.member.account_id)
        answers = {json.dumps(value): (await post_dated(client, api_org, value)).status_code for value in NOT_DATES}
        assert answers == dict.fromkeys(answers, 400)
        assert await balance(client, api_org, api_org.member.account_id) == before

    async def test_the_future_is_refused_up_to_the_last_day_of_9999(self, client, api_org) -> None:
        for day in (today() + dt.timedelta(days=1), dt.date(2100, 1, 1), dt.date.max):
            body = refused(await post_dated(client, api_org, day.isoformat()), 400)
            assert "future" in body["detail"]

    async def test_the_far_past_is_kept_exactly_and_read_back(self, client, api_org) -> None:
        response = await post_dated(client, api_org, "0001-01-01")
        if response.status_code != 201:  # refusing so old a date would be as good
            refused(response, 400)
            return
        entry = response.json()
        assert entry["occurred_on"] == "0001-01-01"
        newer = (await post_dated(client, api_org, "0001-01-02")).json()
        account = api_org.member.account_id
        statement = await client.get(
            api_org.url(f"/accounts/{account}/statement?from=0001-01-01&to=0001-12-31"), headers=api_org.staff.headers
        )
        assert statement.status_code == 200, statement.text
        assert [e["transaction_id"] for e in statement.json()["entries"]] == [entry["id"], newer["id"]]
        assert statement.json()["opening_balance"]["minutes"] == 0
        this_month = await client.get(api_org.url(f"/accounts/{account}/statement"), headers=api_org.staff.headers)
        assert this_month.json()["opening_balance"]["minutes"] == 2
        # A cursor that carries year 1 pages on from it.
        page = (await client.get(api_org.url("/exchanges?to=0001-12-31&limit=1"), headers=api_org.staff.headers)).json()
        assert [item["id"] for item in page["items"]] == [newer["id"]]
        rest = await client.get(
            api_org.url(f"/exchanges?to=0001-12-31&limit=1&cursor={page['next_cursor']}"),
            headers=api_org.staff.headers,
        )
        assert [item["id"] for item in rest.json()["items"]] == [entry["id"]]

    @fuzz
    @given(day=st.dates())
    @example(day=dt.date.min)
    @example(day=dt.date.max)
    async def test_any_day_is_taken_exactly_if_it_is_not_in_the_future(
        self, client: httpx.AsyncClient, api_org: ApiOrg, day: dt.date
    ) -> None:
        response = await post_dated(client, api_org, day.isoformat())
        if day > today():
            refused(response, 400)
        else:
            assert response.status_code == 201, response.text
            assert response.json()["occurred_on"] == day.isoformat()

    @fuzz
    @given(text=st.one_of(st.text(max_size=30), st.from_regex(r"\A\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2})?Z?)?\Z")))
    async def test_any_text_is_taken_only_as_the_day_it_writes(
        self, client: httpx.AsyncClient, api_org: ApiOrg, text: str
    ) -> None:
        response = await post_dated(client, api_org, text)
        if response.status_code == 201:
            assert dt.date.fromisoformat(text) <= today() and len(text) == 10 and text.isascii()
            assert response.json()["occurred_on"] == text
        else:
            refused(response, 400)


class TestOtherDates:
    @pytest.mark.parametrize("value", ["2026-01-01T00:00:00Z", 0, 1767225600, "2026-02-30", "01/02/2026"])
    async def test_joined_on_is_a_day_or_refused(self, client, shared_org, value) -> None:
        body = {"display_name": f"Joined {value}", "joined_on": value}
        response = await client.post(shared_org.url("/members"), json=body, headers=shared_org.staff.headers)
        refused(response, 400)

    @pytest.mark.parametrize("value", ["2026-01-01T00:00:00Z", 0, 1767225600, "2026-02-30", "tomorrow"])
    async def test_books_closed_through_is_a_day_or_refused(self, client, shared_org, value) -> None:
        body = {"books_closed_through": value}
        refused(await client.patch(shared_org.url(), json=body, headers=shared_org.coordinator.headers), 400)


# --- Either side of the date line ----------------------------------------------------------

KIRITIMATI = "Pacific/Kiritimati"  # UTC+14: the first to reach each new day
PAGO_PAGO = "Pacific/Pago_Pago"  # UTC-11: among the last


def local_today(timezone: str) -> dt.date:
    return dt.datetime.now(ZoneInfo(timezone)).date()


async def org_in(db: Database, timezone: str) -> tuple[ApiOrg, Person]:
    org = await make_org(db, timezone=timezone)
    people = [await add_person(db, org, role) for role in (Role.COORDINATOR, Role.STAFF, Role.MEMBER, Role.MEMBER)]
    return ApiOrg(org, *people), people[1]


async def post_on(client: httpx.AsyncClient, api_org: ApiOrg, day: dt.date) -> httpx.Response:
    body = exchange_body(api_org.member.account_id, api_org.other_member.account_id, occurred_on=day.isoformat())
    return await client.post(api_org.url("/exchanges"), json=body, headers=api_org.staff.posting())


class TestTimeZones:
    @pytest.mark.parametrize("timezone", [KIRITIMATI, PAGO_PAGO])
    async def test_an_organisation_takes_its_own_today_and_refuses_its_tomorrow(self, client, db, timezone) -> None:
        api_org, _ = await org_in(db, timezone)
        for _attempt in range(2):  # once more if its midnight passed between reading the date and posting
            day = local_today(timezone)
            accepted = await post_on(client, api_org, day)
            tomorrow = await post_on(client, api_org, day + dt.timedelta(days=1))
            if local_today(timezone) == day:
                break
        assert accepted.status_code == 201, accepted.text
        assert accepted.json()["occurred_on"] == day.isoformat()
        body = refused(tomorrow, 400)
        assert "future" in body["detail"] and timezone in body["detail"]

    async def test_one_day_is_today_on_one_side_of_the_date_line_and_the_future_on_the_other(self, client, db) -> None:
        kiritimati, _ = await org_in(db, KIRITIMATI)
        pago_pago, _ = await org_in(db, PAGO_PAGO)
        for _attempt in range(2):
            day = local_today(KIRITIMATI)
            # 25 hours apart: Kiritimati is always one or two days ahead of Pago Pago.
            assert 1 <= (day - local_today(PAGO_PAGO)).days <= 2
            in_kiritimati = await post_on(client, kiritimati, day)
            in_pago_pago = await post_on(client, pago_pago, day)
            if local_today(KIRITIMATI) == day:
                break
        assert in_kiritimati.status_code == 201, in_kiritimati.text
        refused(in_pago_pago, 400)

    @pytest.mark.parametrize("timezone", [KIRITIMATI, PAGO_PAGO])
    async def test_reversals_and_statements_use_the_organisations_today(self, client, db, timezone) -> None:
        api_org, _ = await org_in(db, timezone)
        original = await post_on(client, api_org, local_today(timezone) - dt.timedelta(days=3))
        assert original.status_code == 201, original.text
        reversal = await client.post(
            api_org.url(f"/exchanges/{original.json()['id']}/reversal"),
            json={"reason": "Logged twice"},
            headers=api_org.coordinator.posting(),
        )
        assert reversal.status_code == 201, reversal.text
        statement = await client.get(
            api_org.url(f"/accounts/{api_org.member.account_id}/statement"), headers=api_org.staff.headers
        )
        assert reversal.json()["occurred_on"] == statement.json()["to"] == local_today(timezone).isoformat()
