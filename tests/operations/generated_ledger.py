"""A generated ledger for the operations tests: seeded, a few thousand transactions of every kind
in two organisations, people with and without logins, a deactivated member, a retired category."""

import datetime as dt
import random
from dataclasses import dataclass

from sqlalchemy import update

from tests.api.conftest import password_hash
from timebank import ledger
from timebank.db import Database
from timebank.ledger import errors
from timebank.members.service import create_member, set_member_active
from timebank.models import AccountKind, Category, Member, Role, User
from timebank.orgs.service import DEFAULT_CATEGORIES, create_organisation

DESCRIPTIONS = ("Shopping trip", "Fixed a bicycle", "Gardening at the allotment", "Lunch club", "Phone befriending")


@dataclass(frozen=True)
class GeneratedLedger:
    organisation_ids: list[int]
    transactions: int


async def generate_ledger(db: Database, *, seed: int, transactions: int, prefix: str = "gen") -> GeneratedLedger:
    rng = random.Random(seed)
    today = dt.date.today() - dt.timedelta(days=1)
    organisation_ids, posted = [], 0
    for number in range(2):
        organisation = await create_organisation(
            db,
            slug=f"{prefix}-{seed}-{number}",
            name=f"Generated centre {number}",
            min_balance_minutes=-20 * 60,
            changed_by=None,
        )
        assert organisation.id is not None
        org_id = organisation.id
        organisation_ids.append(org_id)
        accounts, users, member_ids = [], [], []
        for person in range(30):
            role = Role.COORDINATOR if person == 0 else Role.STAFF if person < 3 else Role.MEMBER
            new = await create_member(
                db, org_id, display_name=f"Person {number}-{person}", role=role,
                email=f"person{number}.{person}@example.org" if person % 3 == 0 else None,
                joined_on=today - dt.timedelta(days=400 - person),
                changed_by=None,
            )  # fmt: skip
            assert new.account.id is not None and new.member.id is not None
            accounts.append(new.account.id)
            member_ids.append(new.member.id)
            if person % 4 == 0:  # some sign in (one shared hash: hashing each would be slow)
                async with db.session() as session:
                    user = User(username=f"{prefix}-{seed}-{number}-{person}", password_hash=password_hash())
                    session.add(user)
                    await session.flush()
                    await session.exec(update(Member).where(Member.id == new.member.id).values(user_id=user.id))  # type: ignore[arg-type]
                    await session.commit()
                    assert user.id is not None
                    users.append(user.id)
        for account_id in accounts[:10]:
            await ledger.post_opening_balance(
                db, org_id, member_account_id=account_id, minutes=rng.randint(-300, 900),
                occurred_on=today - dt.timedelta(days=400), recorded_by=None, idempotency_key=f"open-{account_id}",
            )  # fmt: skip
            posted += 1
        agency = await ledger.shared_account_id(db, org_id, AccountKind.AGENCY)
        recent: list[int] = []
        for step in range(transactions // 2):
            day = today - dt.timedelta(days=rng.randint(0, 365))
            common = {
                "occurred_on": day,
                "recorded_by": rng.choice(users),
                "idempotency_key": f"gen-{step}-{rng.random()}",
            }
            draw = rng.random()
            try:
                if draw < 0.70:
                    giver, receiver = rng.sample([*accounts, agency], 2)
                    done = await ledger.post_exchange(
                        db, org_id, giver_account_id=giver, receiver_account_id=receiver,
                        minutes=rng.choice((15, 30, 60, 90, 120)), description=rng.choice(DESCRIPTIONS),
                        category=rng.choice(DEFAULT_CATEGORIES[:-1]), **common,
                    )  # fmt: skip
                elif draw < 0.80:
                    leader, *attendees = rng.sample(accounts, 4)
                    done = await ledger.post_group_activity(
                        db, org_id, givers=[(leader, 90)], receivers=[(a, 30) for a in attendees],
                        description="Group session", category="Arts and crafts", **common,
                    )  # fmt: skip
                elif draw < 0.87:
                    done = await ledger.donate_to_pot(
                        db, org_id, member_account_id=rng.choice(accounts), minutes=30, description="Donated", **common
                    )
                elif draw < 0.92:
                    done = await ledger.grant_from_pot(
                        db, org_id, member_account_id=rng.choice(accounts), minutes=15, description="Granted", **common
                    )
                elif recent:
                    done = await ledger.reverse_transaction(
                        db, org_id, recent.pop(rng.randrange(len(recent))), reason="Logged twice",
                        recorded_by=common["recorded_by"], idempotency_key=common["idempotency_key"],
                    )  # fmt: skip
                else:
                    continue
            except (errors.InsufficientBalance, errors.LedgerConflict, errors.InvalidEntry):
                continue  # a draw that a limit refuses is simply not part of the story
            posted += 1
            if done.kind != "reversal":
                recent.append(done.id)
        async with db.session() as session:  # a retired category, still named by old transactions
            await session.exec(
                update(Category)
                .where(Category.organisation_id == org_id, Category.name == "Transport")
                .values(is_active=False)  # type: ignore[arg-type]
            )
            await session.commit()
        await set_member_active(db, org_id, member_ids[-1], False, changed_by=None)  # a member who has left
    return GeneratedLedger(organisation_ids, posted)
