"""`timebank admin create`: a site administrator, under the same rules as every other login."""

import asyncio

from sqlmodel import select

from tests.operations.conftest import run_cli
from timebank.auth.passwords import verify_password
from timebank.db import Database
from timebank.models import User

PASSWORD = "a long enough password"


async def admin_create(url: str, username: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return await asyncio.to_thread(run_cli, url, "admin", "create", username, TIMEBANK_INITIAL_PASSWORD=password)


async def users_named(db: Database, username: str) -> list[User]:
    async with db.read_session() as session:
        return list((await session.exec(select(User).where(User.username == username))).all())


async def test_creates_a_site_administrator_who_can_sign_in_with_that_password(fresh_url, fresh_db) -> None:
    done = await admin_create(fresh_url, "  Root ")
    assert done.exit_code == 0, done.output
    [root] = await users_named(fresh_db, "root")  # the username normalised, as for any login
    assert root.is_site_admin and not root.must_change_password
    assert verify_password(root.password_hash, PASSWORD)


async def test_refuses_a_taken_username_and_writes_nothing(fresh_url, fresh_db) -> None:
    assert (await admin_create(fresh_url, "root")).exit_code == 0
    again = await admin_create(fresh_url, "ROOT", "another long password")
    assert again.exit_code == 1
    assert "the username 'root' is already taken" in again.output
    [root] = await users_named(fresh_db, "root")
    assert verify_password(root.password_hash, PASSWORD)


async def test_refuses_a_short_password_or_a_long_username_before_the_database(fresh_url, fresh_db) -> None:
    short = await admin_create(fresh_url, "root", "short")
    assert short.exit_code == 2 and "password" in short.output
    long_name = await admin_create(fresh_url, "r" * 151)
    assert long_name.exit_code == 2 and "1 to 150 characters" in long_name.output
    assert await users_named(fresh_db, "root") == []
