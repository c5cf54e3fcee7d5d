"""The history: append-only in the database, written in the change's own transaction,
scrubbed by erasure, listed and exported through the API and shown on its page."""

import csv
import datetime as dt
import io

import httpx
import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from tests.api.conftest import ApiOrg, client_for
from tests.conftest import new_key, today
from tests.web.support import signed_in, visible_text
from timebank import ledger
from timebank.db import Database
from timebank.history import service as history
from timebank.history.service import ERASED, ChangeKind
from timebank.members import service as members
from timebank.members.service import create_member, get_member, update_member
from timebank.models import Change, HourlyRate, Transaction
from timebank.orgs.service import update_organisation
from timebank.privacy.service import erase_member
from timebank.reports.rates import set_hourly_rate

changes = Change.__table__
NOBODY = 2_000_000_000  # no such user: the history row's foreign key refuses it


async def kinds_of(db: Database, organisation_id: int, member_id: int | None = None) -> list[str]:
    rows, _ = await history.list_changes(db, organisation_id, member_id=member_id, limit=None)
    return [row.kind.value for row in reversed(rows)]


async def a_row(db: Database, api_org: ApiOrg) -> int:
    await update_member(db, api_org.id, api_org.member.member_id, email="row@example.org", changed_by=None)
    rows, _ = await history.list_changes(db, api_org.id, limit=1)
    return rows[0].id


class TestTheDatabaseKeepsIt:
    async def test_refuses_update_and_delete(self, db: Database, api_org: ApiOrg) -> None:
        row_id = await a_row(db, api_org)
        # Every column but the three erasure may replace (each tried with the marker alongside).
        others = {
            "id": row_id + 1_000_000,
            "organisation_id": api_org.id + 1,
            "changed_at": dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
            "actor_user_id": api_org.staff.user_id,
            "kind": "role_changed",
            "member_id": api_org.other_member.member_id,
            "transaction_id": 1,
        }
        # A column added later must be tried here (and listed in the guard of migration 0011).
        assert set(others) | {"actor_name", "before_state", "after_state"} == set(changes.c.keys())
        for column, value in others.items():
            with pytest.raises(DBAPIError, match="append-only"):
                async with db.engine.begin() as conn:
                    await conn.execute(
                        update(changes).where(changes.c.id == row_id).values({column: value, "before_state": ERASED})
                    )
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.engine.begin() as conn:
                await conn.execute(update(changes).where(changes.c.id == row_id).values(after_state={"email": "x"}))
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.engine.begin() as conn:
                await conn.execute(update(changes).where(changes.c.id == row_id).values(actor_name="Someone else"))
        with pytest.raises(DBAPIError, match="append-only"):
            async with db.engine.begin() as conn:
                await conn.execute(delete(changes).where(changes.c.id == row_id))

    async def test_lets_erasure_replace_personal_data_by_the_marker(self, db: Database, api_org: ApiOrg) -> None:
        row_id = await a_row(db, api_org)
        async with db.engine.begin() as conn:
            await conn.execute(
                update(changes)
                .where(changes.c.id == row_id)
                .values(before_state=ERASED, after_state=ERASED, actor_name=ERASED)
            )
        rows, _ = await history.list_changes(db, api_org.id, limit=1)
        assert (rows[0].before, rows[0].after, rows[0].actor_name) == (ERASED, ERASED, ERASED)


class TestTheSameTransaction:
    """A change and its history row commit together or not at all."""

    async def test_a_failed_history_row_undoes_the_change(self, db: Database, api_org: ApiOrg) -> None:
        member_id = api_org.member.member_id
        before = await kinds_of(db, api_org.id)
        with pytest.raises(IntegrityError):
            await update_member(db, api_org.id, member_id, display_name="Never Saved", changed_by=NOBODY)
        assert (await get_member(db, api_org.id, member_id)).display_name == "Member Self"
        assert await kinds_of(db, api_org.id) == before

    async def test_a_failure_after_the_row_undoes_both(self, db: Database, api_org: ApiOrg, monkeypatch) -> None:
        written = []

        async def then_fail(*args, **kwargs):
            await history.record_change(*args, **kwargs)
            written.append(args[2])
            raise RuntimeError("the disk went away")

        monkeypatch.setattr(members, "record_change", then_fail)
        before = await kinds_of(db, api_org.id)
        with pytest.raises(RuntimeError):
            await update_member(db, api_org.id, api_org.member.member_id, role="staff", changed_by=None)  # type: ignore[arg-type]
        assert written == [ChangeKind.ROLE_CHANGED]
        assert (await get_member(db, api_org.id, api_org.member.member_id)).role.value == "member"
        assert await kinds_of(db, api_org.id) == before

    async def test_on_a_core_connection_too(self, db: Database, api_org: ApiOrg) -> None:
        """The hourly rate and the reversal are written on a connection, not an ORM session."""
        with pytest.raises(IntegrityError):
            await set_hourly_rate(db, api_org.id, amount_pence=1260, currency="GBP", basis="Wage", set_by=NOBODY)
        posted = await ledger.post_exchange(
            db, api_org.id, giver_account_id=api_org.staff.account_id, receiver_account_id=api_org.member.account_id,
            minutes=30, occurred_on=today(), description="Gardening", recorded_by=None, idempotency_key=new_key(),
        )  # fmt: skip
        with pytest.raises(IntegrityError):
            await ledger.reverse_transaction(
                db, api_org.id, posted.id, reason="Twice", recorded_by=NOBODY, idempotency_key=new_key()
            )
        async with db.autocommit() as conn:
            rates = await conn.scalar(
                select(func.count()).select_from(HourlyRate).where(HourlyRate.organisation_id == api_org.id)
            )
            reversals = await conn.scalar(
                select(func.count())
                .select_from(Transaction)
                .where(Transaction.organisation_id == api_org.id, Transaction.reverses_id == posted.id)
            )
        assert (rates, reversals) == (0, 0)
        assert {"hourly_rate_changed", "transaction_reversed"}.isdisjoint(await kinds_of(db, api_org.id))


class TestWhatItRecords:
    async def test_never_a_password(self, db: Database, api_org: ApiOrg) -> None:
        await members.reset_member_password(
            db, api_org.id, api_org.member.member_id, editor_role=api_org.staff.role, password="kfmt-wrpz-hnqa",
            changed_by=api_org.staff.user_id,
        )  # fmt: skip
        rows, _ = await history.list_changes(db, api_org.id, kind=ChangeKind.PASSWORD_RESET)
        assert [(row.before, row.after, row.actor_name) for row in rows] == [(None, None, api_org.staff.display_name)]
        async with db.autocommit() as conn:
            everything = " ".join(str(row) for row in await conn.execute(select(changes)))
        assert "kfmt-wrpz-hnqa" not in everything and "argon2" not in everything

    async def test_who_by_their_name_at_the_time(self, db: Database, api_org: ApiOrg) -> None:
        staff = api_org.staff
        await update_member(db, api_org.id, api_org.member.member_id, email="a@example.org", changed_by=staff.user_id)
        await update_member(db, api_org.id, staff.member_id, display_name="Staff Renamed", changed_by=None)
        rows, _ = await history.list_changes(db, api_org.id, kind=ChangeKind.DETAILS_EDITED)
        assert rows[-1].actor_name == staff.display_name
        assert rows[-1].before == {"email": None} and rows[-1].after == {"email": "a@example.org"}

    async def test_settings_before_and_after(self, db: Database, api_org: ApiOrg) -> None:
        coordinator = api_org.coordinator.user_id
        await update_organisation(
            db, api_org.id, min_balance_minutes=-600, timezone="Europe/Dublin", changed_by=coordinator
        )
        await update_organisation(db, api_org.id, min_balance_minutes=-600, changed_by=coordinator)  # no change
        rows, _ = await history.list_changes(db, api_org.id, kind=ChangeKind.SETTINGS_CHANGED)
        assert [(row.before, row.after) for row in rows] == [
            (
                {"timezone": "Europe/London", "min_balance_minutes": -120},
                {"timezone": "Europe/Dublin", "min_balance_minutes": -600},
            )
        ]

    async def test_erasure_scrubs_what_identifies_them(self, db: Database, api_org: ApiOrg) -> None:
        leaver = api_org.other_member
        await update_member(db, api_org.id, leaver.member_id, display_name="Zebedee Quinn", changed_by=None)
        await update_member(db, api_org.id, api_org.member.member_id, email="x@example.org", changed_by=leaver.user_id)
        await update_member(db, api_org.id, leaver.member_id, role="staff", changed_by=None)  # type: ignore[arg-type]
        await update_member(db, api_org.id, leaver.member_id, role="member", changed_by=None)  # type: ignore[arg-type]
        await erase_member(db, api_org.id, leaver.member_id, by_user_id=api_org.coordinator.user_id)
        theirs, _ = await history.list_changes(db, api_org.id, member_id=leaver.member_id, limit=None)
        by_kind = {row.kind: row for row in theirs}
        assert by_kind[ChangeKind.DETAILS_EDITED].before == ERASED == by_kind[ChangeKind.DETAILS_EDITED].after
        assert by_kind[ChangeKind.MEMBER_REGISTERED].after == ERASED
        roles = [row.after for row in theirs if row.kind is ChangeKind.ROLE_CHANGED]
        assert roles == [{"role": "member"}, {"role": "staff"}]  # nothing personal: kept
        assert by_kind[ChangeKind.MEMBER_ERASED].after["descriptions_removed"] == 0
        done_by_them, _ = await history.list_changes(db, api_org.id, member_id=api_org.member.member_id, limit=1)
        assert done_by_them[0].actor_name == ERASED
        async with db.autocommit() as conn:
            everything = " ".join(
                str(row) for row in await conn.execute(select(changes).where(changes.c.organisation_id == api_org.id))
            )
        assert "Zebedee" not in everything and "Member Other" not in everything


class TestTheApi:
    async def test_lists_newest_first_filtered_and_paged(self, client: httpx.AsyncClient, api_org: ApiOrg) -> None:
        headers = api_org.coordinator.headers
        url = api_org.url(f"/members/{api_org.member.member_id}")
        await client.patch(url, json={"role": "staff"}, headers=headers)
        await client.patch(url, json={"display_name": "Member Renamed"}, headers=headers)
        answer = await client.get(
            api_org.url("/history"), params={"member_id": api_org.member.member_id, "limit": 1}, headers=headers
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["total"] == 3 and body["limit"] == 1  # registered, role, details
        assert body["items"][0]["kind"] == "details_edited"
        assert body["items"][0]["by"] == api_org.coordinator.display_name
        roles = await client.get(api_org.url("/history"), params={"kind": "role_changed"}, headers=headers)
        assert [(i["before"], i["after"]) for i in roles.json()["items"]] == [({"role": "member"}, {"role": "staff"})]
        bad = await client.get(api_org.url("/history"), params={"kind": "nonsense"}, headers=headers)
        assert bad.status_code == 400

    async def test_csv_neutralises_formulas(self, client: httpx.AsyncClient, api_org: ApiOrg) -> None:
        headers = api_org.coordinator.headers
        evil = '=HYPERLINK("http://evil.example","Click")'
        created = await client.post(api_org.url("/members"), json={"display_name": evil}, headers=headers)
        assert created.status_code == 201
        answer = await client.get(api_org.url("/history"), params={"format": "csv"}, headers=headers)
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
        cells = [cell for row in csv.reader(io.StringIO(answer.text.lstrip("\ufeff"))) for cell in row]
        assert "'" + evil in cells
        assert not any(cell.startswith("=") for cell in cells)


class TestThePage:
    async def test_a_role_change_shows_before_and_after(self, db: Database, app, api_org: ApiOrg) -> None:
        async with client_for(app) as api:
            url = api_org.url(f"/members/{api_org.member.member_id}")
            changed = await api.patch(url, json={"role": "staff"}, headers=api_org.coordinator.headers)
        assert changed.status_code == 200
        await update_member(db, api_org.id, api_org.other_member.member_id, email="o@example.org", changed_by=None)
        page = await signed_in(app, db, api_org.coordinator)
        try:
            everything = visible_text((await page.get(f"/orgs/{api_org.slug}/history")).text)
            roles = await page.get(f"/orgs/{api_org.slug}/history?kind=role_changed")
            theirs = await page.get(f"/orgs/{api_org.slug}/history?member={api_org.other_member.member_id}")
            download = await page.get(f"/orgs/{api_org.slug}/history/csv?kind=role_changed")
        finally:
            await page.aclose()
        assert "Role changed from member to staff" in everything
        assert f"{api_org.coordinator.display_name} changed the role of Member Self." in everything
        assert "Someone at the command line" in everything
        role_text = visible_text(roles.text)
        assert "Role changed from member to staff" in role_text and "Email" not in role_text
        their_text = visible_text(theirs.text)
        assert "2 changes." in their_text and "changed the details of Member Other." in their_text
        assert "Email changed from nothing to “o@example.org”" in their_text
        assert "changed the role of Member Self." not in their_text
        assert download.status_code == 200 and "role_changed" in download.text and "details_edited" not in download.text

    async def test_settings_rates_and_reversals_in_words(self, db: Database, app, api_org: ApiOrg) -> None:
        coordinator = api_org.coordinator.user_id
        await update_organisation(
            db, api_org.id, name="Sunflower Centre", min_balance_minutes=-600, changed_by=coordinator
        )
        await update_organisation(db, api_org.id, categories=["Gardening", "Knitting"], changed_by=coordinator)
        await set_hourly_rate(db, api_org.id, amount_pence=1260, currency="GBP", basis="Wage", set_by=coordinator)
        posted = await ledger.post_exchange(
            db, api_org.id, giver_account_id=api_org.staff.account_id, receiver_account_id=api_org.member.account_id,
            minutes=30, occurred_on=today(), description="Gardening", recorded_by=None, idempotency_key=new_key(),
        )  # fmt: skip
        await ledger.reverse_transaction(
            db, api_org.id, posted.id, reason="Twice", recorded_by=coordinator, idempotency_key=new_key()
        )
        page = await signed_in(app, db, api_org.coordinator)
        try:
            text = visible_text((await page.get(f"/orgs/{api_org.slug}/history")).text)
        finally:
            await page.aclose()
        for words in (
            f"reversed entry {posted.id}.",
            "Hourly value: 12.60",
            "Category: “Knitting”",
            "retired the category “Befriending”. In use changed from yes to no",
            "added the category “Knitting”.",
            "Lowest balance changed from 2 hours below zero to 10 hours below zero",
            "Organisation name changed from",
        ):
            assert words in text, words

    async def test_staff_read_it_and_members_may_not(self, db: Database, app, api_org: ApiOrg) -> None:
        for person, status in ((api_org.staff, 200), (api_org.member, 403)):
            page = await signed_in(app, db, person)
            try:
                answer = await page.get(f"/orgs/{api_org.slug}/history")
            finally:
                await page.aclose()
            assert answer.status_code == status


async def test_a_member_registered_from_the_command_line_has_no_actor(db: Database, api_org: ApiOrg) -> None:
    new = await create_member(db, api_org.id, display_name="Imported Person", changed_by=None)
    rows, _ = await history.list_changes(db, api_org.id, member_id=new.member.id)
    assert [(row.kind, row.actor_user_id, row.actor_name) for row in rows] == [
        (ChangeKind.MEMBER_REGISTERED, None, None)
    ]
