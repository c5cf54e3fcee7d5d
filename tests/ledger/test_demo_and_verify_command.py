"""The demo centre loads once, holds a consistent ledger, and `timebank verify` judges it."""

import asyncio

from click.testing import CliRunner
from sqlalchemy import func, select, text

from timebank.cli import main
from timebank.config import get_settings
from timebank.demo import DEMO_LOGINS, DEMO_SLUG, load_demo
from timebank.ledger.verify import verify_ledger
from timebank.models import Member, Organisation, Transaction, User


async def counts(db) -> tuple[int, int, int, int]:
    async with db.engine.connect() as conn:
        return tuple(
            [
                await conn.scalar(select(func.count()).select_from(table))
                for table in (Organisation.__table__, Member.__table__, User.__table__, Transaction.__table__)
            ]
        )


class TestDemo:
    async def test_loads_a_consistent_centre_once_and_a_second_load_changes_nothing(self, fresh_db):
        first = await load_demo(fresh_db)
        assert first.created and first.organisation_slug == DEMO_SLUG
        assert first.exchanges > 100  # a few months of history across categories
        after_first = await counts(fresh_db)
        assert await verify_ledger(fresh_db) == []

        second = await load_demo(fresh_db)
        assert not second.created
        assert await counts(fresh_db) == after_first

        async with fresh_db.engine.connect() as conn:
            usernames = set((await conn.execute(select(User.__table__.c.username))).scalars())
            categories = await conn.scalar(text("SELECT count(DISTINCT category_id) FROM transactions"))
            kinds = set((await conn.execute(text("SELECT DISTINCT kind FROM transactions"))).scalars())
        assert {login[0] for login in DEMO_LOGINS} <= usernames
        assert categories >= 5
        assert {"exchange", "group", "donation", "grant", "reversal"} <= kinds


class TestVerifyCommand:
    def run(self, url: str, *args: str):
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(main, list(args), env={"TIMEBANK_DATABASE_URL": url})
        finally:
            get_settings.cache_clear()

    async def test_passes_on_the_demo_and_fails_with_exit_1_on_a_damaged_balance(self, fresh_url, fresh_db):
        await load_demo(fresh_db)
        passed = await asyncio.to_thread(self.run, fresh_url, "verify")
        assert passed.exit_code == 0, passed.output
        assert "every invariant holds" in passed.output

        async with fresh_db.engine.begin() as conn:
            account_id = await conn.scalar(text("SELECT min(id) FROM accounts WHERE kind = 'member'"))
            await conn.execute(
                text("UPDATE accounts SET balance_minutes = balance_minutes + 7 WHERE id = :id"), {"id": account_id}
            )
        failed = await asyncio.to_thread(self.run, fresh_url, "verify")
        assert failed.exit_code == 1
        assert f"account {account_id} stores a balance" in failed.output
