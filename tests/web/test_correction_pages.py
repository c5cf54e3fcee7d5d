""" "Report a mistake" and "Corrections" through the pages, on both databases.

The browser test (tests/web/browser/test_correction_pages.py) follows the same story in
Chromium on SQLite; these check each step's answer, the refusals and the words.
"""

import re

import pytest
from litestar import Litestar

from tests.api.conftest import ApiOrg
from tests.conftest import new_key
from tests.corrections.test_corrections import exchange
from tests.web.support import Browser, signed_in, visible_text
from timebank import ledger
from timebank.corrections import service
from timebank.db import Database


@pytest.fixture
async def entry(db: Database, api_org: ApiOrg) -> int:
    return await exchange(db, api_org, api_org.other_member.account_id, api_org.member.account_id)


@pytest.fixture
async def member_page(app: Litestar, db: Database, api_org: ApiOrg) -> Browser:
    return await signed_in(app, db, api_org.member)


@pytest.fixture
async def staff_page(app: Litestar, db: Database, api_org: ApiOrg) -> Browser:
    return await signed_in(app, db, api_org.staff)


def form_key(html: str) -> str:
    found = re.search(r'name="idempotency_key" value="([0-9a-f]{32})"', html)
    assert found, "the form has no key"
    return found.group(1)


class TestReportAMistake:
    async def test_each_entry_of_the_statement_has_a_named_link(self, member_page, api_org, entry):
        statement = await member_page.get(f"/orgs/{api_org.slug}/statement")
        link = f'href="/orgs/{api_org.slug}/statement/entries/{entry}/report"'
        assert link in statement.text
        assert "Report a mistake in the entry of" in visible_text(statement.text)
        assert "Member Other helped you" in visible_text(statement.text)

    async def test_a_staff_view_of_a_members_statement_has_no_link(self, staff_page, api_org, entry):
        statement = await staff_page.get(f"/orgs/{api_org.slug}/members/{api_org.member.member_id}/statement")
        assert statement.status_code == 200 and '/report"' not in statement.text

    async def test_problems_keep_what_was_typed(self, db, member_page, api_org, entry):
        url = f"/orgs/{api_org.slug}/statement/entries/{entry}/report"
        form = (await member_page.get(url)).text
        typed = {"idempotency_key": form_key(form), "what_is_wrong": "  ", "what_it_should_be": "Half an hour"}
        answer = await member_page.post(url, typed)
        assert answer.status_code == 400
        text = visible_text(answer.text)
        assert "There is a problem" in text and "Say what is wrong with this entry" in text
        assert 'href="#what_is_wrong"' in answer.text and ">Half an hour</textarea>" in answer.text
        too_long = await member_page.post(url, {**typed, "what_is_wrong": "x" * 1001})
        assert "Say what is wrong in 1000 characters or fewer" in visible_text(too_long.text)
        assert "x" * 1001 in too_long.text
        control = await member_page.post(url, {**typed, "what_is_wrong": "bell\x07"})
        assert control.status_code == 400
        assert await service.list_corrections(db, api_org.id) == []

    async def test_send_then_the_confirmation_and_the_statement_says_it_was_received(
        self, db, member_page, api_org, entry
    ):
        url = f"/orgs/{api_org.slug}/statement/entries/{entry}/report"
        typed = {"idempotency_key": form_key((await member_page.get(url)).text), "what_is_wrong": "I was not there"}
        sent = await member_page.post(url, typed)
        assert sent.status_code == 303 and sent.headers["location"] == f"{url}/sent"
        again = await member_page.post(url, typed)  # a double click: one message
        assert again.status_code == 303
        assert len(await service.list_corrections(db, api_org.id)) == 1
        confirmation = visible_text((await member_page.get(f"{url}/sent")).text)
        assert "We have received your message. Staff will look at it." in confirmation
        statement = visible_text((await member_page.get(f"/orgs/{api_org.slug}/statement")).text)
        assert "Message received" in statement and "Staff will look at it." in statement

    async def test_the_same_form_sent_again_with_other_words_is_a_second_message(self, db, member_page, api_org, entry):
        url = f"/orgs/{api_org.slug}/statement/entries/{entry}/report"
        key = form_key((await member_page.get(url)).text)
        await member_page.post(url, {"idempotency_key": key, "what_is_wrong": "I was not there"})
        second = await member_page.post(url, {"idempotency_key": key, "what_is_wrong": "And it was 2 hours"})
        assert second.status_code == 303
        words = [c.what_is_wrong for c in await service.list_corrections(db, api_org.id, status="open")]
        assert words == ["I was not there", "And it was 2 hours"]

    async def test_another_members_entry_is_not_found(self, db, member_page, api_org):
        theirs = await exchange(db, api_org, api_org.staff.account_id, api_org.other_member.account_id)
        url = f"/orgs/{api_org.slug}/statement/entries/{theirs}/report"
        assert (await member_page.get(url)).status_code == 404
        refused = await member_page.post(url, {"idempotency_key": new_key(), "what_is_wrong": "Not mine"})
        assert refused.status_code == 404
        assert (await member_page.get(f"{url}/sent")).status_code == 404
        assert await service.list_corrections(db, api_org.id) == []


class TestCorrectionsPage:
    async def test_staff_see_the_request_answer_it_and_the_member_sees_the_answer(
        self, db, member_page, staff_page, api_org, entry
    ):
        request = await service.report_mistake(
            db, api_org.id, entry, member_id=api_org.member.member_id, account_id=api_org.member.account_id,
            reported_by=api_org.member.user_id, what_is_wrong="I was not there", idempotency_key=new_key(),
        )  # fmt: skip
        page = await staff_page.get(f"/orgs/{api_org.slug}/corrections")
        text = visible_text(page.text)
        assert "From Member Self" in text and "I was not there" in text
        assert f'href="/orgs/{api_org.slug}/exchanges/{entry}"' in page.text
        assert "Reverse this exchange" not in text  # staff do not reverse
        assert f'href="/orgs/{api_org.slug}/corrections"' in page.text  # the navigation
        url = f"/orgs/{api_org.slug}/corrections/{request.id}/answer"
        empty = await staff_page.post(url, {"idempotency_key": form_key(page.text), "answer": ""})
        assert empty.status_code == 400 and "Write your answer to the member" in visible_text(empty.text)
        assert f'href="#answer-{request.id}"' in empty.text
        answered = await staff_page.post(url, {"idempotency_key": form_key(page.text), "answer": "You are right"})
        assert answered.headers["location"] == f"/orgs/{api_org.slug}/corrections?answered={request.id}"
        after = visible_text((await staff_page.get(answered.headers["location"])).text)
        assert "Your answer to Member Self has been sent" in after and "Nothing is waiting for an answer" in after
        twice = await staff_page.post(url, {"idempotency_key": new_key(), "answer": "Again"})
        assert twice.status_code == 409 and "already answered" in visible_text(twice.text)
        edited = await staff_page.post(url, {"idempotency_key": form_key(page.text), "answer": "You are right!"})
        assert edited.status_code == 409 and "already answered" in visible_text(edited.text)
        statement = visible_text((await member_page.get(f"/orgs/{api_org.slug}/statement")).text)
        assert "Staff answered: “You are right”" in statement
        assert "This entry was reversed" not in statement

    async def test_a_coordinator_gets_the_reverse_link_and_the_answer_tells_of_the_reversal(
        self, app, db, member_page, api_org, entry
    ):
        request = await service.report_mistake(
            db, api_org.id, entry, member_id=api_org.member.member_id, account_id=api_org.member.account_id,
            reported_by=api_org.member.user_id, what_is_wrong="I was not there", idempotency_key=new_key(),
        )  # fmt: skip
        coordinator = await signed_in(app, db, api_org.coordinator)
        page = await coordinator.get(f"/orgs/{api_org.slug}/corrections")
        assert f'href="/orgs/{api_org.slug}/exchanges/{entry}/reverse?correction={request.id}"' in page.text
        await ledger.reverse_transaction(
            db, api_org.id, entry, reason="Reported by the member", recorded_by=api_org.coordinator.user_id,
            idempotency_key=new_key(),
        )  # fmt: skip
        page = await coordinator.get(f"/orgs/{api_org.slug}/corrections")
        assert "This entry has been reversed" in visible_text(page.text) and "/reverse?" not in page.text
        await coordinator.post(
            f"/orgs/{api_org.slug}/corrections/{request.id}/answer",
            {"idempotency_key": form_key(page.text), "answer": "We reversed it"},
        )
        statement = visible_text((await member_page.get(f"/orgs/{api_org.slug}/statement")).text)
        assert "We reversed it" in statement and "This entry was reversed." in statement

    async def test_members_may_not_see_it(self, member_page, api_org):
        assert (await member_page.get(f"/orgs/{api_org.slug}/corrections")).status_code == 403
