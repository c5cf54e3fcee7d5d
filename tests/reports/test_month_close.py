"""Closing a month: in order, only once ended, never reopened; its report and balances kept as they stood."""

import asyncio
import datetime as dt

import pytest
from sqlalchemy import func, select

from tests.conftest import make_org, new_key, today
from tests.ledger.support import execute_and_roll_back, refused
from tests.reports.support import build_known_org, month_end_of
from timebank import ledger
from timebank.db import Database
from timebank.db.retry import run_in_transaction
from timebank.ledger import errors
from timebank.ledger.entries import Leg
from timebank.ledger.posting import _request  # to drive the step-by-step writer on PostgreSQL too
from timebank.ledger.stepwise import post_stepwise
from timebank.members.importer import import_members, parse_member_csv
from timebank.members.service import update_member
from timebank.models import (
    Account,
    AccountKind,
    ClosedBalance,
    Member,
    PeriodClose,
    Posting,
    Transaction,
    TransactionKind,
)
from timebank.orgs.service import update_organisation
from timebank.reports.closing import close_month
from timebank.reports.rates import set_hourly_rate
from timebank.reports.service import Period, add_months, monthly_report

closed_balances = ClosedBalance.__table__
period_closes = PeriodClose.__table__
transactions = Transaction.__table__
postings = Posting.__table__
accounts = Account.__table__
members = Member.__table__


async def close(db: Database, organisation_id: int, month: dt.date, key: str | None = None):
    return await close_month(db, organisation_id, month, closed_by=None, idempotency_key=key or new_key())


def stepwise_exchange(organisation_id: int, giver: int, receiver: int, on: dt.date):
    """An exchange request for the step-by-step writer (PostgreSQL otherwise posts in one round trip)."""
    people = frozenset({AccountKind.MEMBER, AccountKind.AGENCY})
    return _request(
        organisation_id,
        TransactionKind.EXCHANGE,
        (Leg(giver, 30), Leg(receiver, -30)),
        {giver: people, receiver: people},
        occurred_on=on,
        description="Late entry",
        category=None,
        recorded_by=None,
        idempotency_key=new_key(),
    )


async def close_in_order(db: Database, organisation_id: int, *months: dt.date) -> None:
    for month in months:
        await close(db, organisation_id, month)


class TestWhichMonthsMayClose:
    async def test_months_close_in_order_of_their_entries(self, db: Database) -> None:
        known = await build_known_org(db)
        with pytest.raises(errors.LedgerConflict) as refusal:
            await close(db, known.org.id, add_months(known.m, -1))
        assert refusal.value.status_code == 409
        assert refusal.value.extra["month"] == f"{known.day(-6, 1):%Y-%m}"
        # Months without entries need no close of their own.
        await close_in_order(db, known.org.id, known.day(-6, 1), known.day(-5, 1), add_months(known.m, -1))
        await close(db, known.org.id, known.m)

    async def test_a_month_that_has_not_ended_cannot_close(self, db: Database) -> None:
        org = await make_org(db)
        with pytest.raises(errors.LedgerConflict, match="has not ended yet"):
            await close(db, org.id, today().replace(day=1))
        with pytest.raises(errors.LedgerConflict, match="has not ended yet"):
            await close(db, org.id, add_months(today().replace(day=1), 1))

    async def test_a_closed_month_is_not_closed_again_and_cannot_reopen(self, db: Database) -> None:
        org = await make_org(db)
        last_month = add_months(today().replace(day=1), -1)
        key = new_key()
        first = await close(db, org.id, last_month, key)
        replay = await close(db, org.id, last_month, key)
        assert (first.created, replay.created) == (True, False)
        assert replay.closed_at == first.closed_at
        with pytest.raises(errors.PeriodClosed, match="already closed"):
            await close(db, org.id, last_month)
        with pytest.raises(errors.PeriodClosed, match="already closed"):
            await close(db, org.id, add_months(last_month, -3))
        with pytest.raises(errors.IdempotencyConflict):
            await close(db, org.id, add_months(last_month, -3), key)

    async def test_the_database_refuses_to_change_or_delete_a_close(self, db: Database) -> None:
        org = await make_org(db)
        await close(db, org.id, add_months(today().replace(day=1), -1))
        for statement in (
            "UPDATE period_closes SET exchanges = 99 WHERE organisation_id = :o",
            "DELETE FROM period_closes WHERE organisation_id = :o",
            "UPDATE closed_balances SET balance_minutes = 99 WHERE organisation_id = :o",
            "DELETE FROM closed_balances WHERE organisation_id = :o",
        ):
            with pytest.raises(Exception, match="kept as they are"):
                await execute_and_roll_back(db, (statement, {"o": org.id}))


class TestAClosedMonth:
    async def test_keeps_its_report_balances_and_rate_as_they_stood(self, db: Database) -> None:
        known = await build_known_org(db)
        org = known.org
        await set_hourly_rate(db, org.id, amount_pence=1000, currency="GBP", basis="Ten pounds", set_by=None)
        before = await monthly_report(db, org.id, Period(known.m, known.m))
        after_m = await monthly_report(db, org.id, Period(add_months(known.m, 1), add_months(known.m, 1)))
        await close_in_order(db, org.id, known.day(-6, 1), known.day(-5, 1), add_months(known.m, -1), known.m)

        stored = await monthly_report(db, org.id, Period(known.m, known.m))
        assert stored == before.model_copy(update={"closed": True})
        # The next month's report now starts from the stored balances, and agrees.
        assert await monthly_report(db, org.id, Period(add_months(known.m, 1), add_months(known.m, 1))) == after_m

        async with db.engine.connect() as conn:
            kept = dict(
                (
                    await conn.execute(
                        select(closed_balances.c.account_id, closed_balances.c.balance_minutes)
                        .join(period_closes, period_closes.c.id == closed_balances.c.period_close_id)
                        .where(period_closes.c.month == known.m, closed_balances.c.organisation_id == org.id)
                    )
                ).all()
            )
        for account_id, balance in kept.items():
            assert balance == await ledger.balance_as_of(db, org.id, account_id, month_end_of(known.m))
        assert len(kept) == len(known.accounts) + 2  # and the agency account and the pot

        await update_member(db, org.id, known.members["alice"], display_name="Alice Renamed", changed_by=None)
        await update_organisation(db, org.id, categories=["GARDENING", "Events"], changed_by=None)
        await set_hourly_rate(db, org.id, amount_pence=9999, currency="GBP", basis="Changed", set_by=None)
        # Figures, categories and the rate as they were at the close; a person is shown by the
        # name they have now (the stored report keeps member numbers, not names: stored_reports.py).
        old_name = next(m.name for m in stored.members if m.member_id == known.members["alice"])
        again = await monthly_report(db, org.id, Period(known.m, known.m))
        assert "Alice Renamed" in {m.name for m in again.members} and old_name not in again.model_dump_json()
        assert again.model_dump_json().replace("Alice Renamed", old_name) == stored.model_dump_json()
        live = await monthly_report(db, org.id, Period(add_months(known.m, 1), add_months(known.m, 1)))
        assert "Alice Renamed" in {m.name for m in live.members}

    async def test_refuses_entries_dated_in_it_or_before_on_both_writers(self, db: Database) -> None:
        known = await build_known_org(db)
        org, a = known.org, known.accounts
        await close_in_order(db, org.id, known.day(-6, 1), known.day(-5, 1), add_months(known.m, -1), known.m)
        for day in (month_end_of(known.m), known.day(0, 1), known.day(-3, 5)):
            async with refused(errors.PeriodClosed, org):
                await ledger.post_exchange(
                    db, org.id, giver_account_id=a["bob"], receiver_account_id=a["alice"], minutes=30,
                    occurred_on=day, description="Late", recorded_by=None, idempotency_key=new_key(),
                )  # fmt: skip
            async with refused(errors.PeriodClosed, org):
                await run_in_transaction(
                    db, lambda conn, day=day: post_stepwise(conn, stepwise_exchange(org.id, a["bob"], a["alice"], day))
                )
        # The day after is open, and a correction of a closed month's entry is dated today.
        await ledger.post_exchange(
            db, org.id, giver_account_id=a["bob"], receiver_account_id=a["alice"], minutes=30,
            occurred_on=known.day(1, 1), description="On time", recorded_by=None, idempotency_key=new_key(),
        )  # fmt: skip
        reversal = await ledger.reverse_transaction(
            db, org.id, known.transactions["alice_to_bob"], reason="Wrong", recorded_by=None, idempotency_key=new_key()
        )
        assert reversal.occurred_on == today()
        this_month = today().replace(day=1)
        report = await monthly_report(db, org.id, Period(this_month, this_month))
        assert [(c.transaction_id, c.reverses_id, c.reverses_occurred_on) for c in report.corrections] == [
            (reversal.id, known.transactions["alice_to_bob"], known.day(0, 2))
        ]

    async def test_a_close_racing_postings_keeps_each_either_in_the_report_or_refused(self, db: Database) -> None:
        org = await make_org(db, min_balance_minutes=-6000)
        people = [await org.member(f"Racer {n}") for n in range(6)]
        last_month = add_months(today().replace(day=1), -1)
        on = month_end_of(last_month)
        await ledger.post_exchange(
            db, org.id, giver_account_id=people[0], receiver_account_id=people[1], minutes=10, occurred_on=on,
            description="Before", recorded_by=None, idempotency_key=new_key(),
        )  # fmt: skip

        async def post(n: int) -> bool:
            await asyncio.sleep(0.001 * (n % 7))
            try:
                await ledger.post_exchange(
                    db, org.id, giver_account_id=people[n % 6], receiver_account_id=people[(n + 1) % 6],
                    minutes=10, occurred_on=on, description=f"Race {n}", recorded_by=None, idempotency_key=new_key(),
                )  # fmt: skip
            except errors.PeriodClosed:
                return False
            return True

        async def close_soon() -> None:
            await asyncio.sleep(0.005)
            await close(db, org.id, last_month)

        outcomes = await asyncio.gather(*(post(n) for n in range(40)), close_soon())
        landed = sum(1 for outcome in outcomes[:-1] if outcome)
        stored = await monthly_report(db, org.id, Period(last_month, last_month))
        async with db.engine.connect() as conn:
            in_ledger = await conn.scalar(
                select(func.count())
                .select_from(transactions)
                .where(transactions.c.organisation_id == org.id, transactions.c.occurred_on == on)
            )
        assert stored.exchanges == in_ledger == landed + 1
        assert stored.hours_exchanged.minutes == 10 * (landed + 1)
        assert stored.trial_balance.held


class TestImportAfterAClose:
    async def test_opening_balances_are_dated_on_the_first_open_day(self, db: Database) -> None:
        org = await make_org(db)
        last_month = add_months(today().replace(day=1), -1)
        await close(db, org.id, last_month)
        content = (
            "display_name,joined_on,opening_balance_hours\n"
            f"Early Joiner,{add_months(last_month, -2).isoformat()},3\n"
            f"Late Joiner,{today().isoformat()},2\n"
        ).encode()
        await import_members(db, org.id, parse_member_csv(content))
        async with db.engine.connect() as conn:
            dates = (
                await conn.execute(
                    select(members.c.display_name, transactions.c.occurred_on)
                    .select_from(
                        transactions.join(postings, postings.c.transaction_id == transactions.c.id)
                        .join(accounts, accounts.c.id == postings.c.account_id)
                        .join(members, members.c.id == accounts.c.member_id)
                    )
                    .where(transactions.c.organisation_id == org.id)
                    .order_by(members.c.display_name)
                )
            ).all()
        assert [tuple(row) for row in dates] == [("Early Joiner", today().replace(day=1)), ("Late Joiner", today())]
