"""Correction requests over HTTP: report, list, answer; idempotent; validated; tenant-scoped."""

import pytest

from tests.api.conftest import make_api_org
from tests.api.support import error, invalid
from tests.corrections.test_corrections import exchange


@pytest.fixture
async def home(db):
    return await make_api_org(db)


@pytest.fixture
async def entry(db, home) -> int:
    return await exchange(db, home, home.other_member.account_id, home.member.account_id)


def body(**overrides):
    return {"what_is_wrong": "I was not there that day", "what_it_should_be": None, **overrides}


async def send(client, home, entry, *, who=None, key=None, json=None):
    who = who or home.member
    return await client.post(
        home.url(f"/exchanges/{entry}/corrections"), json=body() if json is None else json, headers=who.posting(key)
    )


class TestReport:
    async def test_a_member_reports_their_own_entry(self, client, home, entry):
        r = await send(client, home, entry, json=body(what_it_should_be=" It was 30 minutes "))
        assert r.status_code == 201, r.text
        found = r.json()
        assert found == {
            "id": found["id"],
            "transaction_id": entry,
            "member_id": home.member.member_id,
            "member_name": "Member Self",
            "what_is_wrong": "I was not there that day",
            "what_it_should_be": "It was 30 minutes",
            "created_at": found["created_at"],
            "status": "open",
            "answer": None,
        }

    async def test_a_replay_answers_the_original_and_another_body_is_a_conflict(self, client, home, entry):
        first = await send(client, home, entry, key="report-once")
        again = await send(client, home, entry, key="report-once")
        assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
        assert again.json() == first.json()
        conflict = error(await send(client, home, entry, key="report-once", json=body(what_is_wrong="Other")), 409)
        assert "already used" in conflict["detail"]

    async def test_another_members_entry_is_not_found_like_a_missing_one(self, client, home):
        theirs = await exchange(home.org.db, home, home.staff.account_id, home.other_member.account_id)
        other = error(await send(client, home, theirs), 404)
        missing = error(await send(client, home, theirs + 10_000), 404)
        assert other["detail"].replace(str(theirs), "N") == missing["detail"].replace(str(theirs + 10_000), "N")

    async def test_staff_may_not_report_someone_elses_entry(self, client, home, entry):
        refusal = error(await send(client, home, entry, who=home.coordinator), 403)
        assert "your own account" in refusal["detail"]

    @pytest.mark.parametrize(
        ("json", "field"),
        [
            ({}, "what_is_wrong"),
            (body(what_is_wrong=""), "what_is_wrong"),
            (body(what_is_wrong="   "), "what_is_wrong"),
            (body(what_is_wrong="x" * 1001), "what_is_wrong"),
            (body(what_it_should_be="y" * 1001), "what_it_should_be"),
            (body(what_is_wrong="nul\x00here"), "what_is_wrong"),
            (body(what_it_should_be="escape\x1b[31m"), "what_it_should_be"),
            (body(what_is_wrong=12), "what_is_wrong"),
            (body(reason="typo"), "reason"),
        ],
    )
    async def test_bad_bodies_are_refused_with_the_field_named(self, client, home, entry, json, field):
        invalid(await send(client, home, entry, json=json), field)
        listed = await client.get(home.url(f"/exchanges/{entry}/corrections"), headers=home.staff.headers)
        assert listed.json()["items"] == []

    async def test_the_key_is_required(self, client, home, entry):
        r = await client.post(home.url(f"/exchanges/{entry}/corrections"), json=body(), headers=home.member.headers)
        invalid(r, "Idempotency-Key")


class TestReadAndAnswer:
    async def test_a_member_sees_their_own_requests_and_staff_see_all(self, db, client, home):
        shared = await exchange(db, home, home.member.account_id, home.other_member.account_id)
        mine = (await send(client, home, shared)).json()
        theirs = (await send(client, home, shared, who=home.other_member, json=body(what_is_wrong="Too long"))).json()
        url = home.url(f"/exchanges/{shared}/corrections")
        assert [c["id"] for c in (await client.get(url, headers=home.member.headers)).json()["items"]] == [mine["id"]]
        assert [c["id"] for c in (await client.get(url, headers=home.other_member.headers)).json()["items"]] == [
            theirs["id"]
        ]
        staff_sees = (await client.get(url, headers=home.staff.headers)).json()["items"]
        assert {c["id"] for c in staff_sees} == {mine["id"], theirs["id"]}
        error(await client.get(home.url("/corrections"), headers=home.member.headers), 403)

    async def test_staff_answer_once_and_the_member_reads_the_answer(self, client, home, entry):
        correction = (await send(client, home, entry)).json()
        url = home.url(f"/corrections/{correction['id']}/answer")
        words = {"answer": "You were right. We have reversed it."}
        error(await client.post(url, json=words, headers=home.member.posting()), 403)
        r = await client.post(url, json=words, headers=home.staff.posting("answer-once"))
        assert r.status_code == 201, r.text
        answer = r.json()["answer"]
        assert (answer["answer"], answer["answered_by"], answer["reversed"]) == (
            words["answer"],
            home.staff.display_name,
            False,
        )
        replay = await client.post(url, json=words, headers=home.staff.posting("answer-once"))
        assert replay.status_code == 200 and replay.json() == r.json()
        error(await client.post(url, json={"answer": "Again"}, headers=home.coordinator.posting()), 409)
        invalid(await client.post(url, json={"answer": " "}, headers=home.staff.posting()), "answer")
        mine = await client.get(home.url(f"/exchanges/{entry}/corrections"), headers=home.member.headers)
        assert mine.json()["items"][0]["status"] == "answered"

    async def test_lists_by_status(self, client, home, entry):
        first = (await send(client, home, entry)).json()
        second = (await send(client, home, entry, json=body(what_is_wrong="And the date"))).json()
        await client.post(
            home.url(f"/corrections/{first['id']}/answer"), json={"answer": "Checked"}, headers=home.staff.posting()
        )

        async def ids(query: str) -> list[int]:
            r = await client.get(home.url(f"/corrections{query}"), headers=home.staff.headers)
            assert r.status_code == 200, r.text
            return [c["id"] for c in r.json()["items"]]

        assert await ids("?status=open") == [second["id"]]
        assert await ids("?status=answered") == [first["id"]]
        assert await ids("") == [second["id"], first["id"]]
        invalid(await client.get(home.url("/corrections?status=closed"), headers=home.staff.headers), "status")

    async def test_another_organisation_finds_nothing(self, db, client, home, entry):
        correction = (await send(client, home, entry)).json()
        elsewhere = await make_api_org(db)
        them = elsewhere.coordinator
        error(await client.get(elsewhere.url(f"/exchanges/{entry}/corrections"), headers=them.headers), 404)
        answer = elsewhere.url(f"/corrections/{correction['id']}/answer")
        error(await client.post(answer, json={"answer": "No"}, headers=them.posting()), 404)
        assert (await client.get(elsewhere.url("/corrections"), headers=them.headers)).json()["items"] == []
        error(await client.get(home.url("/corrections"), headers=them.headers), 404)
