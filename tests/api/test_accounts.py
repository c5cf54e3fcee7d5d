"""Accounts through HTTP: balances and statements; members see their own, staff see everyone's."""

import pytest

from tests.api.conftest import client_for, make_api_org
from tests.api.support import days_ago, error, invalid, posted
from tests.conftest import make_org, today
from timebank.ledger.verify import verify_ledger


@pytest.fixture(scope="module")
async def shared_org(db):
    """One organisation for the tests that only send refused requests (each checked to change nothing)."""
    return await make_api_org(db)


async def read_account(client, api_org, account_id: int, by=None):
    return await client.get(api_org.url(f"/accounts/{account_id}"), headers=(by or api_org.staff).headers)


async def statement(client, api_org, account_id: int, query: str = "", by=None):
    return await client.get(
        api_org.url(f"/accounts/{account_id}/statement{query}"), headers=(by or api_org.member).headers
    )


class TestListAccounts:
    async def test_lists_the_agency_account_and_pot_first_then_members_by_name(self, client, api_org):
        await posted(client, api_org, api_org.member.account_id, api_org.org.agency_account_id, minutes=30)
        r = await client.get(api_org.url("/accounts"), headers=api_org.staff.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        assert (page["total"], page["limit"], page["offset"]) == (6, 100, 0)
        agency, pot, *people = page["items"]
        assert agency == {
            "id": api_org.org.agency_account_id,
            "kind": "agency",
            "member_id": None,
            "display_name": "Agency account",
            "balance": {"minutes": -30, "hours": "-0.50"},
            "min_balance": None,
            "is_active": True,
        }
        assert pot["kind"] == "pot"
        assert pot["display_name"] == "Community pot"
        assert pot["min_balance"] == {"minutes": 0, "hours": "0.00"}
        names = [account["display_name"] for account in people]
        assert names == sorted(names) and "Member Self" in names
        assert {account["kind"] for account in people} == {"member"}

    async def test_pages_through_every_account(self, client, api_org):
        everything = (await client.get(api_org.url("/accounts"), headers=api_org.staff.headers)).json()["items"]
        pages = [
            (await client.get(api_org.url(f"/accounts?limit=4&offset={offset}"), headers=api_org.staff.headers)).json()
            for offset in (0, 4)
        ]
        assert [item for page in pages for item in page["items"]] == everything
        assert all(page["total"] == 6 for page in pages)

    @pytest.mark.parametrize("query", ["?limit=0", "?limit=501", "?offset=-1", "?offset=first"])
    async def test_refuses_bad_paging_with_400(self, client, shared_org, query):
        invalid(await client.get(shared_org.url(f"/accounts{query}"), headers=shared_org.staff.headers))


class TestReadAccount:
    async def test_the_owner_reads_their_account_and_balance(self, client, api_org):
        me = api_org.member
        await posted(client, api_org, me.account_id, api_org.other_member.account_id, hours="1.5")
        r = await read_account(client, api_org, me.account_id, by=me)
        assert r.status_code == 200, r.text
        assert r.json() == {
            "id": me.account_id,
            "kind": "member",
            "member_id": me.member_id,
            "display_name": "Member Self",
            "balance": {"minutes": 90, "hours": "1.50"},
            "min_balance": {"minutes": -120, "hours": "-2.00"},
            "is_active": True,
        }
        other = await read_account(client, api_org, api_org.other_member.account_id)
        assert other.json()["balance"] == {"minutes": -90, "hours": "-1.50"}

    async def test_the_agency_account_has_no_minimum_and_the_pot_a_minimum_of_zero(self, client, api_org):
        agency = (await read_account(client, api_org, api_org.org.agency_account_id)).json()
        pot = (await read_account(client, api_org, api_org.org.pot_account_id)).json()
        assert (agency["kind"], agency["member_id"], agency["min_balance"]) == ("agency", None, None)
        assert (pot["kind"], pot["member_id"], pot["min_balance"]) == ("pot", None, {"minutes": 0, "hours": "0.00"})

    @pytest.mark.parametrize("suffix", ["", "/statement"])
    async def test_an_account_of_another_organisation_looks_like_one_that_does_not_exist(
        self, client, db, shared_org, suffix
    ):
        elsewhere = await make_org(db)
        answers = []
        for account_id in (elsewhere.agency_account_id, 10**12):
            r = await client.get(
                shared_org.url(f"/accounts/{account_id}{suffix}"), headers=shared_org.coordinator.headers
            )
            answers.append(error(r, 404)["detail"].replace(str(account_id), "<id>"))
        assert answers[0] == answers[1]

    @pytest.mark.parametrize("account_id", [0, -1, 2**63 - 1, 2**63, 10**30])
    async def test_an_id_no_account_can_have_is_refused_without_error(self, client, shared_org, account_id):
        for suffix in ("", "/statement"):
            r = await client.get(shared_org.url(f"/accounts/{account_id}{suffix}"), headers=shared_org.staff.headers)
            assert r.status_code in (400, 404), r.text
            error(r, r.status_code)


class TestStatement:
    @pytest.fixture(scope="class")
    @classmethod
    async def history(cls, app, db):
        """An organisation and the transactions on Member Self's account: -1.00 on day -40,
        then +1.50, +0.25 and a group's -0.50 on days -20, -10 and -5. The tests only read them."""
        async with client_for(app) as client:
            return await cls.record_history(client, db)

    @staticmethod
    async def record_history(client, db):
        api_org = await make_api_org(db)
        me, other, staff = api_org.member.account_id, api_org.other_member.account_id, api_org.staff.account_id
        agency = api_org.org.agency_account_id
        transactions = [
            await posted(client, api_org, other, me, minutes=60, occurred_on=days_ago(40).isoformat()),
            await posted(client, api_org, me, other, minutes=90, occurred_on=days_ago(20).isoformat()),
            await posted(
                client, api_org, me, agency, minutes=15, occurred_on=days_ago(10).isoformat(), category="Events"
            ),
        ]
        group = {
            "givers": [{"account_id": staff, "minutes": 60}],
            "receivers": [{"account_id": me, "minutes": 30}, {"account_id": other, "minutes": 30}],
            "occurred_on": days_ago(5).isoformat(),
            "description": "Cooking class",
            "category": "Cooking",
        }
        r = await client.post(api_org.url("/exchanges"), json=group, headers=api_org.staff.posting())
        assert r.status_code == 201, r.text
        return api_org, [*transactions, r.json()]

    async def test_gives_opening_balance_entries_with_running_balance_and_closing_balance(self, client, db, history):
        api_org, (first, second, third, group) = history
        staff_name = api_org.staff.display_name
        query = f"?from={days_ago(25).isoformat()}&to={days_ago(5).isoformat()}"
        r = await statement(client, api_org, api_org.member.account_id, query)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["account_id"] == api_org.member.account_id
        assert (body["from"], body["to"]) == (days_ago(25).isoformat(), days_ago(5).isoformat())
        assert body["opening_balance"] == {"minutes": -60, "hours": "-1.00"}
        lines = [
            (
                e["transaction_id"],
                e["kind"],
                e["occurred_on"],
                e["description"],
                e["category"],
                e["counterparts"],
                e["minutes"],
                e["hours"],
                e["running_balance"],
            )
            for e in body["entries"]
        ]
        assert lines == [
            (
                second["id"], "exchange", days_ago(20).isoformat(), "Help with the shopping", None,
                ["Member Other"], 90, "1.50", {"minutes": 30, "hours": "0.50"},
            ),
            (
                third["id"], "exchange", days_ago(10).isoformat(), "Help with the shopping", "Events",
                ["Agency account"], 15, "0.25", {"minutes": 45, "hours": "0.75"},
            ),
            (
                group["id"], "group", days_ago(5).isoformat(), "Cooking class", "Cooking",
                [staff_name], -30, "-0.50", {"minutes": 15, "hours": "0.25"},  # who ran it; no other attendee
            ),
        ]  # fmt: skip
        assert all(entry["recorded_at"].endswith("Z") for entry in body["entries"])
        assert body["closing_balance"] == {"minutes": 15, "hours": "0.25"}
        assert first["id"] not in [entry["transaction_id"] for entry in body["entries"]]
        assert await verify_ledger(db) == []

    async def test_includes_both_days_at_the_edges_of_the_period(self, client, history):
        api_org, _ = history
        day = days_ago(20).isoformat()
        body = (await statement(client, api_org, api_org.member.account_id, f"?from={day}&to={day}")).json()
        assert [entry["occurred_on"] for entry in body["entries"]] == [day]
        assert (body["opening_balance"]["minutes"], body["closing_balance"]["minutes"]) == (-60, 30)

    async def test_covers_this_month_so_far_by_default(self, client, api_org):
        await posted(client, api_org, api_org.member.account_id, api_org.other_member.account_id, minutes=20)
        body = (await statement(client, api_org, api_org.member.account_id)).json()
        assert (body["from"], body["to"]) == (today().replace(day=1).isoformat(), today().isoformat())
        assert [entry["minutes"] for entry in body["entries"]] == [20]

    async def test_a_period_with_no_entries_opens_and_closes_at_the_same_balance(self, client, history):
        api_org, _ = history
        query = f"?from={days_ago(4).isoformat()}&to={today().isoformat()}"
        body = (await statement(client, api_org, api_org.member.account_id, query)).json()
        assert body["entries"] == []
        assert body["opening_balance"] == body["closing_balance"] == {"minutes": 15, "hours": "0.25"}

    async def test_staff_read_the_agency_accounts_statement(self, client, history):
        api_org, _ = history
        agency = api_org.org.agency_account_id
        r = await statement(client, api_org, agency, f"?from={days_ago(40).isoformat()}", by=api_org.staff)
        assert r.status_code == 200, r.text
        assert [(e["counterparts"], e["minutes"]) for e in r.json()["entries"]] == [(["Member Self"], -15)]

    @pytest.mark.parametrize(
        "query",
        [
            f"?from={today().isoformat()}&to={days_ago(1).isoformat()}",
            "?from=2025-02-30",
            "?to=yesterday",
            "?limit=0",
            "?limit=501",
            "?cursor=not-a-cursor",
        ],
        ids=["from-after-to", "no-such-day", "not-a-date", "no-entries-per-page", "too-many-per-page", "bad-cursor"],
    )
    async def test_refuses_a_bad_period_with_400(self, client, shared_org, query):
        invalid(await statement(client, shared_org, shared_org.member.account_id, query))


class TestStatementPages:
    """Any period may be asked for; long ones are answered a page at a time."""

    @pytest.fixture(scope="class")
    @classmethod
    async def long_history(cls, app, db):
        """Member Self with 23 entries over the last 60 days, several on the same day."""
        async with client_for(app) as client:
            api_org = await make_api_org(db, min_balance_minutes=-100 * 60)
            me, other = api_org.member.account_id, api_org.other_member.account_id
            for n in range(23):
                giver, receiver = (me, other) if n % 3 else (other, me)
                await posted(
                    client, api_org, giver, receiver, minutes=5 + n, occurred_on=days_ago(60 - 2 * (n // 2)).isoformat()
                )
            return api_org

    @staticmethod
    async def pages(client, api_org, query: str, limit: int) -> list[dict]:
        found, cursor = [], None
        while True:
            suffix = f"&cursor={cursor}" if cursor else ""
            r = await statement(client, api_org, api_org.member.account_id, f"{query}&limit={limit}{suffix}")
            assert r.status_code == 200, r.text
            found.append(r.json())
            cursor = r.json()["next_cursor"]
            if cursor is None:
                return found

    @pytest.mark.parametrize("limit", [1, 4, 7, 22, 23])
    async def test_read_page_by_page_it_equals_the_statement_read_at_once(self, client, long_history, limit):
        query = f"?from={days_ago(70).isoformat()}&to={days_ago(1).isoformat()}"
        whole = (await statement(client, long_history, long_history.member.account_id, f"{query}&limit=500")).json()
        pages = await self.pages(client, long_history, query, limit)

        assert len(whole["entries"]) == 23 and whole["next_cursor"] is None
        assert [e for page in pages for e in page["entries"]] == whole["entries"]
        assert [len(page["entries"]) for page in pages[:-1]] == [limit] * (len(pages) - 1)
        for page in pages:
            assert (page["opening_balance"], page["closing_balance"]) == (
                whole["opening_balance"],
                whole["closing_balance"],
            )
        assert whole["entries"][-1]["running_balance"] == whole["closing_balance"]

    async def test_a_period_from_long_before_the_first_entry_is_answered(self, client, long_history):
        r = await statement(client, long_history, long_history.member.account_id, "?from=2000-01-01&limit=500")
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["opening_balance"]["minutes"] == 0
        assert len(body["entries"]) == 23
        assert body["closing_balance"] == body["entries"][-1]["running_balance"]

    async def test_a_member_pages_through_their_own_statement(self, client, long_history):
        pages = await self.pages(client, long_history, f"?from={days_ago(70).isoformat()}", 10)
        assert [len(page["entries"]) for page in pages] == [10, 10, 3]
