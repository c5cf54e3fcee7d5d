"""Exchanges through HTTP: logging help, group activities, idempotent writes, listing and reversals."""

import base64
import datetime as dt
import uuid

import pytest

from tests.api.conftest import client_for, make_api_org
from tests.api.support import balance, days_ago, error, exchange_body, invalid, post_exchange, posted
from tests.conftest import today
from tests.ledger.support import unchanged
from timebank.ledger.verify import verify_ledger


def group_body(givers, receivers, **overrides) -> dict:
    """A group activity today; ``givers`` and ``receivers`` are (account id, minutes) pairs."""
    return {
        "givers": [{"account_id": account, "minutes": minutes} for account, minutes in givers],
        "receivers": [{"account_id": account, "minutes": minutes} for account, minutes in receivers],
        "occurred_on": today().isoformat(),
        "description": "Cooking class",
        **overrides,
    }


async def reverse(client, api_org, transaction_id: int, reason: str = "Logged against the wrong member", key=None):
    return await client.post(
        api_org.url(f"/exchanges/{transaction_id}/reversal"),
        json={"reason": reason},
        headers=api_org.coordinator.posting(key),
    )


def postings(transaction: dict) -> list[tuple[int, int]]:
    return [(p["account_id"], p["minutes"]) for p in transaction["postings"]]


@pytest.fixture(scope="module")
async def shared_org(db):
    """One organisation for the tests that need no particular balances: refusals (each checked
    with ``unchanged``) and help members give the agency, whose account has no floor."""
    return await make_api_org(db)


class TestPostExchange:
    async def test_staff_log_help_given_between_two_members(self, client, api_org):
        giver, receiver = api_org.member.account_id, api_org.other_member.account_id
        r = await post_exchange(client, api_org, giver, receiver, hours="1.50", category="Gardening")
        assert r.status_code == 201, r.text
        transaction = r.json()
        recorded_at = dt.datetime.fromisoformat(transaction["recorded_at"])
        assert abs(dt.datetime.now(dt.UTC) - recorded_at) < dt.timedelta(minutes=1)
        assert transaction == {
            "id": transaction["id"],
            "kind": "exchange",
            "occurred_on": today().isoformat(),
            "recorded_at": transaction["recorded_at"],
            "recorded_by": api_org.staff.user_id,
            "description": "Help with the shopping",
            "category": "Gardening",
            "reverses_id": None,
            "reversed_by_id": None,
            "postings": [
                {
                    "account_id": giver,
                    "display_name": "Member Self",
                    "minutes": 90,
                    "hours": "1.50",
                    "balance_after": 90,
                },
                {
                    "account_id": receiver,
                    "display_name": "Member Other",
                    "minutes": -90,
                    "hours": "-1.50",
                    "balance_after": -90,
                },
            ],
        }
        assert "Idempotent-Replayed" not in r.headers
        assert (await balance(client, api_org, giver), await balance(client, api_org, receiver)) == (90, -90)

    @pytest.mark.parametrize(
        ("amount", "minutes"),
        [
            ({"minutes": 90}, 90),
            ({"hours": 1.5}, 90),
            ({"hours": "1.5"}, 90),
            ({"hours": "1.50"}, 90),
            ({"hours": 2}, 120),
            ({"hours": "0.25"}, 15),
            ({"hours": "0.05"}, 3),
            ({"hours": " 1.75 "}, 105),
            ({"minutes": 1}, 1),
        ],
        ids=lambda value: str(value),
    )
    async def test_takes_the_amount_in_minutes_or_hours_exactly(self, client, shared_org, amount, minutes):
        giver, receiver = shared_org.member.account_id, shared_org.org.agency_account_id
        transaction = await posted(client, shared_org, giver, receiver, **{"minutes": None, **amount})
        assert postings(transaction) == [(giver, minutes), (receiver, -minutes)]

    async def test_a_member_records_help_they_received(self, client, api_org):
        me, helper = api_org.member, api_org.other_member
        transaction = await posted(client, api_org, helper.account_id, me.account_id, minutes=30, by=me)
        assert transaction["recorded_by"] == me.user_id
        assert postings(transaction) == [(helper.account_id, 30), (me.account_id, -30)]

    @pytest.mark.parametrize("case", ["help they gave", "help between others", "help the agency received"])
    async def test_a_member_may_not_record_anything_but_help_they_received(self, client, shared_org, case):
        me, other, staff = shared_org.member.account_id, shared_org.other_member.account_id, shared_org.staff.account_id
        giver, receiver = {
            "help they gave": (me, other),
            "help between others": (staff, other),
            "help the agency received": (me, shared_org.org.agency_account_id),
        }[case]
        async with unchanged(shared_org.org):
            body = error(await post_exchange(client, shared_org, giver, receiver, by=shared_org.member), 403)
        assert "receiver must be your own account" in body["detail"]

    async def test_staff_log_service_hours_for_and_from_the_agency(self, client, api_org):
        member, agency = api_org.member.account_id, api_org.org.agency_account_id
        await posted(client, api_org, member, agency, minutes=120)
        await posted(client, api_org, agency, member, minutes=30)
        assert (await balance(client, api_org, member), await balance(client, api_org, agency)) == (90, -90)

    async def test_the_community_pot_takes_no_part_in_an_exchange(self, client, shared_org):
        member, pot = shared_org.member.account_id, shared_org.org.pot_account_id
        async with unchanged(shared_org.org):
            for giver, receiver in ((member, pot), (pot, member)):
                assert "pot account" in invalid(await post_exchange(client, shared_org, giver, receiver))["detail"]

    async def test_refuses_to_take_a_member_below_the_minimum_balance(self, client, api_org):
        giver, receiver = api_org.member.account_id, api_org.other_member.account_id
        await posted(client, api_org, giver, receiver, minutes=30)
        async with unchanged(api_org.org):
            body = error(await post_exchange(client, api_org, giver, receiver, minutes=91), 409)
        assert "-0.50" in body["detail"] and "-2.00" in body["detail"]
        assert body["extra"] == {
            "account_id": receiver,
            "balance_minutes": -30,
            "min_balance_minutes": -120,
            "requested_minutes": 91,
        }
        await posted(client, api_org, giver, receiver, minutes=90)  # exactly down to the minimum
        assert await balance(client, api_org, receiver) == -120

    async def test_an_account_of_another_organisation_is_refused_like_an_unknown_one(self, client, db, api_org):
        elsewhere = await make_api_org(db)
        mine = api_org.member.account_id
        answers = []
        async with unchanged(api_org.org, elsewhere.org):
            for foreign in (elsewhere.member.account_id, 10**12):
                for giver, receiver in ((mine, foreign), (foreign, mine)):
                    body = invalid(await post_exchange(client, api_org, giver, receiver))
                    assert body["extra"] == {"account_id": foreign}
                    answers.append(body["detail"].replace(str(foreign), "<id>"))
        assert len(set(answers)) == 1

    @pytest.mark.parametrize("typed", ["gardening", " GARDENING ", "Gardening"])
    async def test_matches_a_category_whatever_its_case_and_answers_the_organisations_spelling(
        self, client, api_org, typed
    ):
        giver, receiver = api_org.member.account_id, api_org.other_member.account_id
        r = await post_exchange(client, api_org, giver, receiver, category=typed)
        assert r.status_code == 201, r.text
        assert r.json()["category"] == "Gardening"

    async def test_a_retry_with_the_category_spelled_otherwise_is_a_replay(self, client, api_org):
        giver, receiver, key = api_org.member.account_id, api_org.other_member.account_id, "category-retry"
        first = await post_exchange(client, api_org, giver, receiver, key=key, category="Gardening")
        again = await post_exchange(client, api_org, giver, receiver, key=key, category="gardening")
        assert (first.status_code, again.status_code) == (201, 200), again.text
        assert again.headers["Idempotent-Replayed"] == "true" and again.json() == first.json()
        assert await balance(client, api_org, giver) == 60

    async def test_lists_by_category_whatever_its_case(self, client, api_org):
        giver, receiver = api_org.member.account_id, api_org.other_member.account_id
        gardening = await posted(client, api_org, giver, receiver, category="Gardening")
        await posted(client, api_org, giver, receiver, category="Cooking")
        r = await client.get(api_org.url("/exchanges?category=GARDENING"), headers=api_org.staff.headers)
        assert [t["id"] for t in r.json()["items"]] == [gardening["id"]]

    @pytest.mark.parametrize("category", ["Knitting", "gardenin"])
    async def test_refuses_a_category_the_organisation_does_not_have(self, client, shared_org, category):
        async with unchanged(shared_org.org):
            body = invalid(
                await post_exchange(
                    client,
                    shared_org,
                    shared_org.member.account_id,
                    shared_org.other_member.account_id,
                    category=category,
                )
            )
        assert "category" in body["detail"]

    async def test_refuses_a_date_in_the_future(self, client, shared_org):
        tomorrow = (today() + dt.timedelta(days=1)).isoformat()
        async with unchanged(shared_org.org):
            r = await post_exchange(
                client,
                shared_org,
                shared_org.member.account_id,
                shared_org.other_member.account_id,
                occurred_on=tomorrow,
            )
        assert "future" in invalid(r)["detail"]

    async def test_accepts_a_date_in_the_past(self, client, api_org):
        day = days_ago(400).isoformat()
        transaction = await posted(
            client, api_org, api_org.member.account_id, api_org.other_member.account_id, occurred_on=day
        )
        assert transaction["occurred_on"] == day

    async def test_the_giver_and_receiver_must_be_different_accounts(self, client, shared_org):
        async with unchanged(shared_org.org):
            invalid(await post_exchange(client, shared_org, shared_org.member.account_id, shared_org.member.account_id))

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"minutes": None}, "minutes"),
            ({"hours": "1.00", "minutes": 60}, "hours"),
            ({"minutes": 0}, "minutes"),
            ({"minutes": -30}, "minutes"),
            ({"minutes": 600_001}, "minutes"),
            ({"minutes": 10**30}, "minutes"),
            ({"minutes": 30.5}, "minutes"),
            ({"minutes": 30.0}, "minutes"),
            ({"minutes": "30"}, "minutes"),
            ({"minutes": True}, "minutes"),
            ({"minutes": [30]}, "minutes"),
            ({"hours": 1.333}, "hours"),
            ({"hours": "1.333"}, "hours"),
            ({"hours": "1.33"}, "hours"),
            ({"hours": "-1"}, "hours"),
            ({"hours": "0"}, "hours"),
            ({"hours": 0}, "hours"),
            ({"hours": "one"}, "hours"),
            ({"hours": "1e2"}, "hours"),
            ({"hours": "NaN"}, "hours"),
            ({"hours": "Infinity"}, "hours"),
            ({"hours": 1e300}, "hours"),
            ({"hours": "10000.01"}, "hours"),
            ({"hours": "99999999999"}, "hours"),
            ({"hours": True}, "hours"),
            ({"hours": "\u0661"}, "hours"),  # an Arabic-Indic digit one
            ({"giver_account_id": None}, "giver_account_id"),
            ({"receiver_account_id": None}, "receiver_account_id"),
            ({"giver_account_id": "1"}, "giver_account_id"),
            ({"giver_account_id": 1.0}, "giver_account_id"),
            ({"giver_account_id": True}, "giver_account_id"),
            ({"giver_account_id": -1}, "-1"),
            ({"giver_account_id": 2**63}, None),
            ({"giver_account_id": 2**70}, None),
            ({"occurred_on": None}, "occurred_on"),
            ({"occurred_on": "2025-02-30"}, "occurred_on"),
            ({"occurred_on": "27/11/2025"}, "occurred_on"),
            ({"occurred_on": "yesterday"}, "occurred_on"),
            ({"occurred_on": 20251127}, "occurred_on"),
            ({"description": None}, "description"),
            ({"description": ""}, "description"),
            ({"description": "   "}, "description"),
            ({"description": "x" * 501}, "description"),
            ({"description": 42}, "description"),
            ({"description": "tea\x00and cake"}, "description"),
            ({"category": 5}, "category"),
            ({"category": "x" * 81}, "category"),
            ({"recorded_by": 1}, "recorded_by"),
            ({"givers": [], "receivers": []}, None),
        ],
        ids=lambda value: repr(value)[:40],
    )
    async def test_refuses_a_malformed_or_invalid_request_with_400(self, client, shared_org, changes, field):
        body = exchange_body(shared_org.member.account_id, shared_org.other_member.account_id, **changes)
        if changes == {"minutes": None}:
            body.pop("minutes", None)
        async with unchanged(shared_org.org):
            r = await client.post(shared_org.url("/exchanges"), json=body, headers=shared_org.staff.posting())
        invalid(r, field)

    @pytest.mark.parametrize(
        "raw",
        [b"", b"{", b"[]", b"null", b'"exchange"', b"42", b'{"minutes": 1e999999}', b"\xff\xfe", b"[" * 100_000],
        ids=["empty", "truncated", "array", "null", "string", "number", "huge-exponent", "not-utf8", "deep"],
    )
    async def test_refuses_a_body_that_is_not_a_json_object_with_400(self, client, shared_org, raw):
        headers = {**shared_org.staff.posting(), "Content-Type": "application/json"}
        async with unchanged(shared_org.org):
            r = await client.post(shared_org.url("/exchanges"), content=raw, headers=headers)
        if len(raw) > 64 * 1024:
            error(r, 413)  # larger than any request this API takes
        else:
            invalid(r)


class TestIdempotencyKey:
    async def test_is_required(self, client, shared_org):
        body = exchange_body(shared_org.member.account_id, shared_org.other_member.account_id)
        async with unchanged(shared_org.org):
            r = await client.post(shared_org.url("/exchanges"), json=body, headers=shared_org.staff.headers)
        assert "Idempotency-Key" in invalid(r)["detail"]

    @pytest.mark.parametrize("key", ["", "k" * 129, "tab\there", "del\x7f", b"caf\xe9"], ids=repr)
    async def test_must_be_1_to_128_printable_ascii_characters(self, client, shared_org, key):
        body = exchange_body(shared_org.member.account_id, shared_org.other_member.account_id)
        headers = {**shared_org.staff.headers, "Idempotency-Key": key}
        async with unchanged(shared_org.org):
            invalid(await client.post(shared_org.url("/exchanges"), json=body, headers=headers))

    @pytest.mark.parametrize("key", ["k" * 128, "a key with spaces ~!", "0"])
    async def test_any_printable_key_up_to_128_characters_is_accepted(self, client, shared_org, key):
        await posted(client, shared_org, shared_org.member.account_id, shared_org.org.agency_account_id, key=key)

    async def test_replaying_a_request_returns_the_original_and_posts_nothing(self, client, api_org):
        giver, receiver, key = api_org.member.account_id, api_org.other_member.account_id, uuid.uuid4().hex
        original = await posted(client, api_org, giver, receiver, minutes=90, key=key)
        async with unchanged(api_org.org):
            for amount in ({"minutes": 90}, {"hours": "1.5"}):  # the same request, in other words
                replay = await post_exchange(client, api_org, giver, receiver, key=key, **amount)
                assert replay.status_code == 200, replay.text
                assert replay.headers["Idempotent-Replayed"] == "true"
                assert replay.json() == original

    @pytest.mark.parametrize(
        "changes",
        [{"minutes": 91}, {"description": "Something else"}, {"category": "Cooking"}, {"swap": True}],
        ids=str,
    )
    async def test_the_same_key_for_a_different_request_is_409(self, client, api_org, changes):
        giver, receiver, key = api_org.member.account_id, api_org.other_member.account_id, uuid.uuid4().hex
        original = await posted(client, api_org, giver, receiver, key=key)
        if changes == {"swap": True}:
            giver, receiver, changes = receiver, giver, {}
        async with unchanged(api_org.org):
            body = error(await post_exchange(client, api_org, giver, receiver, key=key, **changes), 409)
        assert key in body["detail"]
        assert body["extra"] == {"transaction_id": original["id"]}

    async def test_the_same_key_and_request_from_someone_else_is_409(self, client, api_org):
        giver, receiver, key = api_org.member.account_id, api_org.other_member.account_id, uuid.uuid4().hex
        await posted(client, api_org, giver, receiver, key=key, by=api_org.staff)
        async with unchanged(api_org.org):
            error(await post_exchange(client, api_org, giver, receiver, key=key, by=api_org.coordinator), 409)

    async def test_each_organisation_has_its_own_keys(self, client, db, api_org):
        elsewhere = await make_api_org(db)
        key = uuid.uuid4().hex
        for centre in (api_org, elsewhere):
            await posted(client, centre, centre.member.account_id, centre.other_member.account_id, key=key)

    async def test_a_refused_request_does_not_use_up_its_key(self, client, api_org):
        giver, receiver, key = api_org.member.account_id, api_org.other_member.account_id, uuid.uuid4().hex
        error(await post_exchange(client, api_org, giver, receiver, minutes=121, key=key), 409)
        await posted(client, api_org, giver, receiver, minutes=120, key=key)


class TestGroupActivity:
    async def test_staff_log_one_activity_with_many_legs(self, client, db, api_org):
        staff, coordinator = api_org.staff.account_id, api_org.coordinator.account_id
        me, other = api_org.member.account_id, api_org.other_member.account_id
        body = group_body([(staff, 60)], [(me, 45), (other, 45)], category="Cooking")
        body["givers"].append({"account_id": coordinator, "hours": "0.5"})
        r = await client.post(api_org.url("/exchanges"), json=body, headers=api_org.staff.posting())
        assert r.status_code == 201, r.text
        transaction = r.json()
        assert (transaction["kind"], transaction["category"]) == ("group", "Cooking")
        assert sorted(postings(transaction)) == sorted([(staff, 60), (coordinator, 30), (me, -45), (other, -45)])
        assert [await balance(client, api_org, a) for a in (staff, coordinator, me, other)] == [60, 30, -45, -45]
        assert await verify_ledger(db) == []

    async def test_both_sides_must_total_the_same(self, client, api_org):
        body = group_body([(api_org.staff.account_id, 60)], [(api_org.member.account_id, 45)])
        async with unchanged(api_org.org):
            r = await client.post(api_org.url("/exchanges"), json=body, headers=api_org.staff.posting())
        refusal = invalid(r)
        assert "1.00" in refusal["detail"] and "0.75" in refusal["detail"]
        assert refusal["extra"] == {"givers_minutes": 60, "receivers_minutes": 45}

    async def test_one_leg_below_the_minimum_refuses_the_whole_activity(self, client, api_org):
        body = group_body(
            [(api_org.staff.account_id, 151)], [(api_org.member.account_id, 30), (api_org.other_member.account_id, 121)]
        )
        async with unchanged(api_org.org):
            r = await client.post(api_org.url("/exchanges"), json=body, headers=api_org.staff.posting())
        assert error(r, 409)["extra"]["account_id"] == api_org.other_member.account_id

    async def test_replaying_an_activity_returns_the_original(self, client, api_org):
        body = group_body([(api_org.staff.account_id, 30)], [(api_org.member.account_id, 30)])
        headers = api_org.staff.posting()
        first = await client.post(api_org.url("/exchanges"), json=body, headers=headers)
        assert first.status_code == 201, first.text
        async with unchanged(api_org.org):
            again = await client.post(api_org.url("/exchanges"), json=body, headers=headers)
        assert again.status_code == 200
        assert again.json() == first.json()

    @pytest.mark.parametrize(
        "case",
        [
            "no givers",
            "no receivers",
            "givers only",
            "an account twice",
            "a leg without an amount",
            "a leg with both amounts",
            "a leg of zero",
            "a leg with an unknown field",
            "single and group fields mixed",
            "too many legs",
            "a leg of 1.333 hours",
        ],
    )
    async def test_refuses_a_malformed_activity_with_400(self, client, shared_org, case):
        staff, me, other = shared_org.staff.account_id, shared_org.member.account_id, shared_org.other_member.account_id
        body = group_body([(staff, 60)], [(me, 30), (other, 30)])
        if case == "no givers":
            body["givers"] = []
        elif case == "no receivers":
            body["receivers"] = []
        elif case == "givers only":
            del body["receivers"]
        elif case == "an account twice":
            body["receivers"] = [{"account_id": me, "minutes": 30}, {"account_id": me, "minutes": 30}]
        elif case == "a leg without an amount":
            del body["givers"][0]["minutes"]
        elif case == "a leg with both amounts":
            body["givers"][0]["hours"] = "1"
        elif case == "a leg of zero":
            body["receivers"][0]["minutes"] = 0
        elif case == "a leg with an unknown field":
            body["givers"][0]["note"] = "thanks"
        elif case == "single and group fields mixed":
            body["giver_account_id"] = staff
        elif case == "too many legs":
            body["receivers"] = [{"account_id": me, "minutes": 1}] * 201
        elif case == "a leg of 1.333 hours":
            body["givers"][0] = {"account_id": staff, "hours": 1.333}
        async with unchanged(shared_org.org):
            invalid(await client.post(shared_org.url("/exchanges"), json=body, headers=shared_org.staff.posting()))


async def seven_transactions(client, db):
    """An organisation and its seven transactions, oldest first, on days -10, -10, -7, -3, -3, -1 and 0."""
    api_org = await make_api_org(db)
    me, other = api_org.member.account_id, api_org.other_member.account_id
    staff, agency = api_org.staff.account_id, api_org.org.agency_account_id
    plan = [
        (me, other, 10, 10, "Gardening"),
        (other, me, 20, 10, None),
        (me, agency, 30, 7, "Events"),
        (other, me, 40, 3, "Gardening"),
        (staff, other, 50, 3, None),
        (me, other, 60, 1, "Cooking"),
        (other, staff, 70, 0, None),
    ]
    transactions = [
        await posted(
            client, api_org, giver, receiver, minutes=minutes, occurred_on=days_ago(days).isoformat(), category=category
        )
        for giver, receiver, minutes, days, category in plan
    ]
    return api_org, [item["id"] for item in transactions]


class TestListExchanges:
    @pytest.fixture(scope="class")
    @classmethod
    async def ledger(cls, app, db):
        """Seven transactions the tests of this class only read."""
        async with client_for(app) as client:
            return await seven_transactions(client, db)

    async def list_ids(self, client, api_org, query: str = "") -> list[int]:
        r = await client.get(api_org.url(f"/exchanges{query}"), headers=api_org.staff.headers)
        assert r.status_code == 200, r.text
        assert r.json()["next_cursor"] is None
        return [item["id"] for item in r.json()["items"]]

    async def walk(self, client, api_org, query: str) -> list[list[int]]:
        """Every page, following next_cursor."""
        pages, cursor = [], None
        while True:
            url = api_org.url(f"/exchanges{query}" + (f"&cursor={cursor}" if cursor else ""))
            r = await client.get(url, headers=api_org.staff.headers)
            assert r.status_code == 200, r.text
            pages.append([item["id"] for item in r.json()["items"]])
            cursor = r.json()["next_cursor"]
            if cursor is None:
                return pages

    async def test_lists_newest_first_by_the_day_the_help_was_given(self, client, ledger):
        api_org, ids = ledger
        t = dict(enumerate(ids, start=1))
        assert await self.list_ids(client, api_org) == [t[7], t[6], t[5], t[4], t[3], t[2], t[1]]
        items = (await client.get(api_org.url("/exchanges?limit=1"), headers=api_org.staff.headers)).json()["items"]
        assert items[0]["postings"][0]["minutes"] == 70

    @pytest.mark.parametrize("limit", [1, 2, 3, 7])
    async def test_pages_through_everything_with_the_cursor_without_gaps_or_repeats(self, client, ledger, limit):
        api_org, ids = ledger
        pages = await self.walk(client, api_org, f"?limit={limit}")
        assert all(len(page) == limit for page in pages[:-1]) and 1 <= len(pages[-1]) <= limit
        assert [i for page in pages for i in page] == ids[::-1]

    async def test_a_transaction_logged_while_paging_does_not_shift_the_pages(self, client, db):
        api_org, ids = await seven_transactions(client, db)
        t = dict(enumerate(ids, start=1))
        first = (await client.get(api_org.url("/exchanges?limit=3"), headers=api_org.staff.headers)).json()
        await posted(client, api_org, api_org.member.account_id, api_org.other_member.account_id)
        rest = await client.get(
            api_org.url(f"/exchanges?limit=10&cursor={first['next_cursor']}"), headers=api_org.staff.headers
        )
        assert [item["id"] for item in first["items"]] == [t[7], t[6], t[5]]
        assert [item["id"] for item in rest.json()["items"]] == [t[4], t[3], t[2], t[1]]

    async def test_filters_by_the_day_the_help_was_given(self, client, ledger):
        api_org, ids = ledger
        t = dict(enumerate(ids, start=1))
        query = f"?from={days_ago(7).isoformat()}&to={days_ago(3).isoformat()}"
        assert await self.list_ids(client, api_org, query) == [t[5], t[4], t[3]]
        assert await self.list_ids(client, api_org, f"?from={today().isoformat()}") == [t[7]]
        assert await self.list_ids(client, api_org, f"?to={days_ago(10).isoformat()}") == [t[2], t[1]]

    async def test_filters_by_account(self, client, ledger):
        api_org, ids = ledger
        t = dict(enumerate(ids, start=1))
        assert await self.list_ids(client, api_org, f"?account_id={api_org.staff.account_id}") == [t[7], t[5]]
        assert await self.list_ids(client, api_org, f"?account_id={api_org.org.agency_account_id}") == [t[3]]
        assert await self.list_ids(client, api_org, f"?account_id={api_org.coordinator.account_id}") == []

    async def test_filters_by_category(self, client, ledger):
        api_org, ids = ledger
        t = dict(enumerate(ids, start=1))
        assert await self.list_ids(client, api_org, "?category=Gardening") == [t[4], t[1]]
        assert await self.list_ids(client, api_org, "?category=Knitting") == []

    async def test_pages_through_a_filtered_list(self, client, ledger):
        api_org, ids = ledger
        t = dict(enumerate(ids, start=1))
        pages = await self.walk(client, api_org, f"?account_id={api_org.member.account_id}&limit=2")
        assert pages == [[t[6], t[4]], [t[3], t[2]], [t[1]]]

    async def test_shows_no_other_organisations_transactions(self, client, db, ledger):
        api_org, ids = ledger
        elsewhere = await make_api_org(db)
        await posted(client, elsewhere, elsewhere.member.account_id, elsewhere.other_member.account_id)
        assert sorted(await self.list_ids(client, api_org)) == sorted(ids)
        assert await self.list_ids(client, api_org, f"?account_id={elsewhere.member.account_id}") == []

    @pytest.mark.parametrize(
        "query",
        [
            "?from=2025-02-30",
            "?to=soon",
            "?account_id=mine",
            "?account_id=0",
            "?limit=0",
            "?limit=201",
            "?cursor=not-a-cursor",
            "?cursor=" + base64.urlsafe_b64encode(b"2025-01-01:x").decode(),
            "?cursor=" + base64.urlsafe_b64encode(b"yesterday:12").decode(),
            "?cursor=" + "A" * 101,
            f"?category={'x' * 81}",
        ],
    )
    async def test_refuses_bad_filters_with_400(self, client, shared_org, query):
        invalid(await client.get(shared_org.url(f"/exchanges{query}"), headers=shared_org.staff.headers))

    @pytest.mark.parametrize("query", ["?account_id=9223372036854775808", "?category=%00"])
    async def test_never_fails_on_values_the_database_cannot_hold(self, client, shared_org, query):
        r = await client.get(shared_org.url(f"/exchanges{query}"), headers=shared_org.staff.headers)
        assert r.status_code in (200, 400), r.text


class TestReadExchange:
    async def test_staff_read_any_exchange_as_it_was_posted(self, client, api_org):
        transaction = await posted(client, api_org, api_org.member.account_id, api_org.other_member.account_id)
        r = await client.get(api_org.url(f"/exchanges/{transaction['id']}"), headers=api_org.staff.headers)
        assert r.status_code == 200, r.text
        assert r.json() == transaction

    async def test_a_member_reads_a_group_activity_they_took_part_in(self, client, api_org):
        body = group_body([(api_org.staff.account_id, 30)], [(api_org.member.account_id, 30)])
        r = await client.post(api_org.url("/exchanges"), json=body, headers=api_org.staff.posting())
        url = api_org.url(f"/exchanges/{r.json()['id']}")
        as_staff, as_member = r.json(), (await client.get(url, headers=api_org.member.headers)).json()
        ran_it = {**as_staff["postings"][0], "balance_after": None}  # who ran it, but never their balance
        assert as_member == {**as_staff, "postings": [ran_it, as_staff["postings"][1]]}
        assert "own account" in error(await client.get(url, headers=api_org.other_member.headers), 403)["detail"]

    async def test_an_exchange_of_another_organisation_looks_like_one_that_does_not_exist(self, client, db, api_org):
        elsewhere = await make_api_org(db)
        theirs = await posted(client, elsewhere, elsewhere.member.account_id, elsewhere.other_member.account_id)
        answers = []
        for transaction_id in (theirs["id"], 10**12):
            r = await client.get(api_org.url(f"/exchanges/{transaction_id}"), headers=api_org.coordinator.headers)
            answers.append(error(r, 404)["detail"].replace(str(transaction_id), "<id>"))
        assert answers[0] == answers[1]

    @pytest.mark.parametrize("transaction_id", [0, -1, 2**63, 10**30])
    async def test_an_id_no_exchange_can_have_is_refused_without_error(self, client, shared_org, transaction_id):
        r = await client.get(shared_org.url(f"/exchanges/{transaction_id}"), headers=shared_org.staff.headers)
        assert r.status_code in (400, 404), r.text


class TestReversal:
    async def test_a_coordinator_reverses_an_exchange(self, client, db, api_org):
        giver, receiver = api_org.member.account_id, api_org.other_member.account_id
        original = await posted(
            client, api_org, giver, receiver, minutes=45, category="Cooking", occurred_on=days_ago(3).isoformat()
        )
        r = await reverse(client, api_org, original["id"], reason="Wrong member")
        assert r.status_code == 201, r.text
        reversal = r.json()
        assert reversal["kind"] == "reversal"
        assert reversal["reverses_id"] == original["id"]
        assert reversal["occurred_on"] == today().isoformat()
        assert reversal["description"] == "Wrong member"
        assert reversal["category"] == "Cooking"
        assert reversal["recorded_by"] == api_org.coordinator.user_id
        assert sorted(postings(reversal)) == sorted([(giver, -45), (receiver, 45)])
        assert {p["balance_after"] for p in reversal["postings"]} == {0}
        assert (await balance(client, api_org, giver), await balance(client, api_org, receiver)) == (0, 0)
        again = await client.get(api_org.url(f"/exchanges/{original['id']}"), headers=api_org.staff.headers)
        assert again.json()["reversed_by_id"] == reversal["id"]
        assert await verify_ledger(db) == []

    async def test_a_transaction_is_reversed_at_most_once(self, client, api_org):
        original = await posted(client, api_org, api_org.member.account_id, api_org.other_member.account_id)
        first = await reverse(client, api_org, original["id"])
        assert first.status_code == 201, first.text
        async with unchanged(api_org.org):
            body = error(await reverse(client, api_org, original["id"]), 409)
        assert "already been reversed" in body["detail"]
        assert body["extra"] == {"reversal_id": first.json()["id"]}

    async def test_replaying_a_reversal_returns_it_and_posts_nothing(self, client, api_org):
        original = await posted(client, api_org, api_org.member.account_id, api_org.other_member.account_id)
        key = uuid.uuid4().hex
        first = await reverse(client, api_org, original["id"], key=key)
        async with unchanged(api_org.org):
            again = await reverse(client, api_org, original["id"], key=key)
            assert again.status_code == 200, again.text
            assert again.headers["Idempotent-Replayed"] == "true"
            assert again.json() == first.json()
            error(await reverse(client, api_org, original["id"], reason="Another reason", key=key), 409)

    async def test_a_reversal_cannot_itself_be_reversed(self, client, api_org):
        original = await posted(client, api_org, api_org.member.account_id, api_org.other_member.account_id)
        reversal = (await reverse(client, api_org, original["id"])).json()
        async with unchanged(api_org.org):
            assert "itself a reversal" in error(await reverse(client, api_org, reversal["id"]), 409)["detail"]

    async def test_a_reversal_that_would_take_an_account_below_its_minimum_is_409(self, client, api_org):
        me, other, staff = api_org.member.account_id, api_org.other_member.account_id, api_org.staff.account_id
        earned = await posted(client, api_org, me, other, minutes=60)  # me: +60
        await posted(client, api_org, staff, me, minutes=180)  # me: -120, the minimum
        async with unchanged(api_org.org):
            body = error(await reverse(client, api_org, earned["id"]), 409)
        assert body["extra"]["account_id"] == me

    async def test_reverses_an_exchange_of_a_deactivated_member(self, client, api_org):
        original = await posted(client, api_org, api_org.member.account_id, api_org.other_member.account_id)
        r = await client.patch(
            api_org.url(f"/members/{api_org.other_member.member_id}"),
            json={"is_active": False},
            headers=api_org.staff.headers,
        )
        assert r.status_code == 200, r.text
        assert (await reverse(client, api_org, original["id"])).status_code == 201

    async def test_reverses_an_entry_in_a_closed_period_with_one_dated_today(self, client, api_org):
        original = await posted(
            client,
            api_org,
            api_org.member.account_id,
            api_org.other_member.account_id,
            occurred_on=(today().replace(day=1) - dt.timedelta(days=5)).isoformat(),
        )
        last_month = f"{today().replace(day=1) - dt.timedelta(days=1):%Y-%m}"
        closing = await client.post(api_org.url(f"/periods/{last_month}/close"), headers=api_org.coordinator.posting())
        assert closing.status_code == 201, closing.text
        r = await reverse(client, api_org, original["id"])
        assert r.status_code == 201, r.text
        assert r.json()["occurred_on"] == today().isoformat()

    async def test_an_exchange_unknown_here_is_404(self, client, db, api_org):
        elsewhere = await make_api_org(db)
        theirs = await posted(client, elsewhere, elsewhere.member.account_id, elsewhere.other_member.account_id)
        async with unchanged(api_org.org, elsewhere.org):
            for transaction_id in (theirs["id"], 10**12):
                error(await reverse(client, api_org, transaction_id), 404)

    @pytest.mark.parametrize("case", ["no key", "no body", "no reason", "blank reason", "long reason", "extra field"])
    async def test_refuses_a_malformed_request_with_400(self, client, shared_org, case):
        original = await posted(client, shared_org, shared_org.member.account_id, shared_org.org.agency_account_id)
        headers = shared_org.coordinator.headers if case == "no key" else shared_org.coordinator.posting()
        body = {
            "no key": {"reason": "Mistake"},
            "no reason": {},
            "blank reason": {"reason": "  "},
            "long reason": {"reason": "x" * 501},
            "extra field": {"reason": "Mistake", "minutes": 10},
        }.get(case)
        url = shared_org.url(f"/exchanges/{original['id']}/reversal")
        content = {} if body is None else {"json": body}
        async with unchanged(shared_org.org):
            invalid(await client.post(url, headers=headers, **content))
