"""Correction requests ("Report a mistake"): the service and the API, on both databases.

A member reports only entries of their own account (any other is refused as if it did not
exist); a request never changes the ledger; replays answer the first request; staff and
coordinators answer each request once; the rows can be neither changed nor deleted.
"""

import pytest
from sqlalchemy import delete, select, update

from tests.api.conftest import ApiOrg, make_api_org
from tests.conftest import new_key, today
from tests.ledger.support import unchanged
from timebank import ledger
from timebank.corrections import service
from timebank.db import Database
from timebank.ledger import errors
from timebank.models import CorrectionAnswer, CorrectionRequest
from timebank.privacy.service import erase_member

ERASED = "[removed: personal data erased]"


async def exchange(db: Database, home: ApiOrg, giver: int, receiver: int, minutes: int = 60) -> int:
    posted = await ledger.post_exchange(
        db,
        home.id,
        giver_account_id=giver,
        receiver_account_id=receiver,
        minutes=minutes,
        occurred_on=today(),
        description="Helped with the garden",
        recorded_by=home.staff.user_id,
        idempotency_key=new_key(),
    )
    return posted.id


async def report(db: Database, home: ApiOrg, transaction_id: int, *, who=None, key=None, **words):
    who = who or home.member
    return await service.report_mistake(
        db,
        home.id,
        transaction_id,
        member_id=who.member_id,
        account_id=who.account_id,
        reported_by=who.user_id,
        what_is_wrong=words.get("what_is_wrong", "I was not there that day"),
        what_it_should_be=words.get("what_it_should_be"),
        sees_every_entry=who.role.value != "member",
        idempotency_key=key or new_key(),
    )


@pytest.fixture
async def home(db: Database) -> ApiOrg:
    return await make_api_org(db)


@pytest.fixture
async def entry(db: Database, home: ApiOrg) -> int:
    """An exchange in which the other member helped the member."""
    return await exchange(db, home, home.other_member.account_id, home.member.account_id)


class TestReportMistake:
    async def test_a_member_reports_an_entry_of_their_own_account_and_the_ledger_does_not_change(self, db, home, entry):
        async with unchanged(home.org):
            correction = await report(db, home, entry, what_it_should_be="  It was 30 minutes  ")
        assert correction.created and correction.status == "open" and correction.answer is None
        assert (correction.transaction_id, correction.member_id, correction.account_id) == (
            entry,
            home.member.member_id,
            home.member.account_id,
        )
        assert correction.what_is_wrong == "I was not there that day"
        assert correction.what_it_should_be == "It was 30 minutes"  # trimmed
        assert correction.member_name == "Member Self"
        assert correction.entry_description == "Helped with the garden"

    async def test_another_members_entry_is_refused_exactly_like_one_that_does_not_exist(self, db, home):
        theirs = await exchange(db, home, home.staff.account_id, home.other_member.account_id)
        with pytest.raises(errors.NotFound) as other:
            await report(db, home, theirs)
        with pytest.raises(errors.NotFound) as missing:
            await report(db, home, theirs + 10_000)
        assert other.value.message.replace(str(theirs), "N") == missing.value.message.replace(str(theirs + 10_000), "N")
        assert await service.list_corrections(db, home.id) == []

    async def test_staff_are_told_they_may_report_only_their_own_entries(self, db, home, entry):
        with pytest.raises(errors.NotAllowed):
            await report(db, home, entry, who=home.staff)
        own = await exchange(db, home, home.staff.account_id, home.member.account_id)
        assert (await report(db, home, own, who=home.staff)).created

    async def test_an_entry_in_another_organisation_is_not_found(self, db, home, entry):
        elsewhere = await make_api_org(db)
        with pytest.raises(errors.NotFound):
            await report(db, elsewhere, entry, who=elsewhere.coordinator)

    async def test_the_same_key_and_words_replay_the_first_request(self, db, home, entry):
        key = new_key()
        first = await report(db, home, entry, key=key)
        again = await report(db, home, entry, key=key)
        assert (again.id, again.created) == (first.id, False)
        assert len(await service.list_corrections(db, home.id)) == 1

    async def test_the_same_key_with_other_words_is_a_conflict(self, db, home, entry):
        key = new_key()
        await report(db, home, entry, key=key)
        with pytest.raises(errors.IdempotencyConflict):
            await report(db, home, entry, key=key, what_is_wrong="Something else")
        # Another member's key, reused for their own request, is a conflict too, never a replay.
        other_entry = await exchange(db, home, home.member.account_id, home.other_member.account_id)
        with pytest.raises(errors.IdempotencyConflict):
            await report(db, home, other_entry, key=key, who=home.other_member)

    @pytest.mark.parametrize(
        ("words", "said"),
        [
            ({"what_is_wrong": ""}, "required"),
            ({"what_is_wrong": "   \n "}, "required"),
            ({"what_is_wrong": "x" * 1001}, "at most 1000"),
            ({"what_is_wrong": "bad\x00byte"}, "control characters"),
            ({"what_it_should_be": "y" * 1001}, "at most 1000"),
            ({"what_it_should_be": "bell\x07"}, "control characters"),
            ({"what_is_wrong": 42}, "must be text"),
        ],
    )
    async def test_refuses_words_that_cannot_be_kept(self, db, home, entry, words, said):
        with pytest.raises(errors.InvalidEntry) as refusal:
            await report(db, home, entry, **words)
        assert said in refusal.value.message
        assert await service.list_corrections(db, home.id) == []

    async def test_an_empty_what_it_should_be_is_none_and_a_thousand_characters_are_kept(self, db, home, entry):
        correction = await report(db, home, entry, what_is_wrong="x" * 1000, what_it_should_be="   ")
        assert correction.what_it_should_be is None and len(correction.what_is_wrong) == 1000


async def answer(db, home, correction_id, words="We have looked and it is right", *, by=None, key=None):
    return await service.answer_correction(
        db,
        home.id,
        correction_id,
        answer=words,
        answered_by=(by or home.staff).user_id,
        idempotency_key=key or new_key(),
    )


class TestAnswerCorrection:
    async def test_staff_answer_and_the_request_is_answered(self, db, home, entry):
        correction = await report(db, home, entry)
        async with unchanged(home.org):
            answered = await answer(db, home, correction.id)
        assert answered.status == "answered" and answered.answer is not None
        assert answered.answer.answer == "We have looked and it is right"
        assert answered.answer.answered_by_name == home.staff.display_name
        assert answered.answer.reversal_id is None
        assert [c.id for c in await service.list_corrections(db, home.id, status="answered")] == [correction.id]
        assert await service.list_corrections(db, home.id, status="open") == []

    async def test_an_answer_after_the_reversal_records_it(self, db, home, entry):
        correction = await report(db, home, entry)
        reversal = await ledger.reverse_transaction(
            db, home.id, entry, reason="Reported by the member", recorded_by=home.coordinator.user_id,
            idempotency_key=new_key(),
        )  # fmt: skip
        assert (await service.get_correction(db, home.id, correction.id)).entry_reversal_id == reversal.id
        answered = await answer(db, home, correction.id, "You were right: we reversed it", by=home.coordinator)
        assert answered.answer is not None and answered.answer.reversal_id == reversal.id

    async def test_a_request_is_answered_once(self, db, home, entry):
        correction = await report(db, home, entry)
        key = new_key()
        first = await answer(db, home, correction.id, key=key)
        replay = await answer(db, home, correction.id, key=key)
        assert replay.created is False and replay.answer == first.answer
        with pytest.raises(service.AlreadyAnswered):
            await answer(db, home, correction.id, "A second opinion", by=home.coordinator)
        with pytest.raises(errors.IdempotencyConflict):
            await answer(db, home, correction.id, "Other words, same key", key=key)

    async def test_refuses_an_empty_answer_and_an_unknown_request(self, db, home, entry):
        correction = await report(db, home, entry)
        with pytest.raises(errors.InvalidEntry):
            await answer(db, home, correction.id, "  ")
        with pytest.raises(service.CorrectionNotFound):
            await answer(db, home, correction.id + 10_000)
        elsewhere = await make_api_org(db)
        with pytest.raises(service.CorrectionNotFound):
            await answer(db, elsewhere, correction.id, by=elsewhere.staff)
        assert (await service.get_correction(db, home.id, correction.id)).status == "open"

    async def test_open_requests_come_oldest_first_and_a_member_sees_only_their_own(self, db, home, entry):
        shared = await exchange(db, home, home.member.account_id, home.other_member.account_id)
        mine = await report(db, home, shared)
        theirs = await report(db, home, shared, who=home.other_member, what_is_wrong="Not 1 hour")
        later = await report(db, home, entry)
        assert [c.id for c in await service.list_corrections(db, home.id, status="open")] == [
            mine.id,
            theirs.id,
            later.id,
        ]
        mine_only = await service.list_corrections(
            db, home.id, transaction_id=shared, account_id=home.member.account_id
        )
        assert [c.id for c in mine_only] == [mine.id]
        by_entry = await service.corrections_by_entry(db, home.id, home.other_member.account_id, [shared, entry])
        assert {t: [c.id for c in found] for t, found in by_entry.items()} == {shared: [theirs.id]}


class TestKeptAsTheyAre:
    """Both tables are append-only in the database itself; erasure may only blank the words."""

    async def test_updates_and_deletes_are_refused(self, db, home, entry):
        correction = await report(db, home, entry)
        await answer(db, home, correction.id)
        requests, answers = CorrectionRequest.__table__, CorrectionAnswer.__table__
        changes = [
            update(requests).where(requests.c.id == correction.id).values(what_is_wrong="Changed"),
            update(requests).where(requests.c.id == correction.id).values(member_id=home.other_member.member_id),
            update(requests)
            .where(requests.c.id == correction.id)
            .values(what_is_wrong=ERASED, idempotency_key="another"),
            delete(requests).where(requests.c.id == correction.id),
            update(answers).where(answers.c.correction_id == correction.id).values(answer="Changed"),
            update(answers)
            .where(answers.c.correction_id == correction.id)
            .values(answered_by_user_id=home.member.user_id),
            delete(answers).where(answers.c.correction_id == correction.id),
        ]
        for change in changes:
            with pytest.raises(Exception, match="kept as they are"):
                async with db.transaction() as conn:
                    await conn.execute(change)
        assert (await service.get_correction(db, home.id, correction.id)).what_is_wrong == "I was not there that day"

    async def test_erasure_may_blank_the_words(self, db, home, entry):
        correction = await report(db, home, entry, what_it_should_be="Half an hour")
        await answer(db, home, correction.id)
        requests, answers = CorrectionRequest.__table__, CorrectionAnswer.__table__
        async with db.transaction() as conn:
            await conn.execute(
                update(requests)
                .where(requests.c.id == correction.id)
                .values(what_is_wrong=ERASED, what_it_should_be=ERASED)
            )
            await conn.execute(update(answers).where(answers.c.correction_id == correction.id).values(answer=ERASED))
        erased = await service.get_correction(db, home.id, correction.id)
        assert (erased.what_is_wrong, erased.what_it_should_be) == (ERASED, ERASED)
        assert erased.answer is not None and erased.answer.answer == ERASED
        async with db.autocommit() as conn:
            member_id = await conn.scalar(select(requests.c.member_id).where(requests.c.id == correction.id))
        assert member_id == home.member.member_id


class TestErasure:
    async def test_erasing_a_member_blanks_their_words_and_the_answers_to_them(self, db, home, entry):
        mine = await report(db, home, entry, what_it_should_be="It was Member Self's hour")
        await answer(db, home, mine.id, "Member Self is right")
        bare = await report(db, home, entry, what_is_wrong="And the date")
        other_entry = await exchange(db, home, home.member.account_id, home.other_member.account_id)
        theirs = await report(db, home, other_entry, who=home.other_member, what_is_wrong="Kept as written")
        await erase_member(db, home.id, home.member.member_id, by_user_id=home.coordinator.user_id)
        erased = await service.get_correction(db, home.id, mine.id)
        assert (erased.what_is_wrong, erased.what_it_should_be) == (ERASED, ERASED)
        assert erased.answer is not None and erased.answer.answer == ERASED
        assert (await service.get_correction(db, home.id, bare.id)).what_it_should_be is None
        assert (await service.get_correction(db, home.id, theirs.id)).what_is_wrong == "Kept as written"
