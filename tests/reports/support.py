"""A known organisation for the report tests, built exactly as issue 10's "What it must show" asks.

Month M is two months before this one, so M-1 and M+1 (the months either side) have
both ended. Every entry is recorded today, so all of them are "recorded late" for
their earlier dates. Reversals are dated today by the ledger; to date one inside M,
the tests move the ledger's idea of today (``dated_reversal``), on both databases
(reversals always go through the step-by-step writer).
"""

import datetime as dt
from dataclasses import dataclass, field

import pytest

from tests.conftest import Org, make_org, new_key, today
from timebank import ledger
from timebank.db import Database
from timebank.ledger import stepwise
from timebank.ledger.amounts import minutes_to_hours
from timebank.members.service import create_member
from timebank.models import Role
from timebank.reports.service import add_months


def month_m() -> dt.date:
    return add_months(today().replace(day=1), -2)


@dataclass
class KnownOrg:
    org: Org
    m: dt.date
    accounts: dict[str, int] = field(default_factory=dict)
    members: dict[str, int] = field(default_factory=dict)
    transactions: dict[str, int] = field(default_factory=dict)

    def day(self, months: int, day: int) -> dt.date:
        """Day ``day`` (1-based) of the month ``months`` after M."""
        return add_months(self.m, months) + dt.timedelta(days=day - 1)


async def dated_reversal(org: Org, transaction_id: int, on: dt.date) -> int:
    """A reversal dated ``on`` (as if a coordinator had posted it that day)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stepwise, "today_in", lambda timezone: on)
        reversal = await ledger.reverse_transaction(
            org.db,
            org.id,
            transaction_id,
            reason="Logged twice by mistake",
            recorded_by=None,
            idempotency_key=new_key(),
        )
    return reversal.id


async def build_known_org(db: Database) -> KnownOrg:
    org = await make_org(db, min_balance_minutes=-6000)
    known = KnownOrg(org, month_m())
    long_ago = known.day(-6, 1)
    for name, role, joined in (
        ("Alice Archer", Role.MEMBER, long_ago),
        ("Bob Baker", Role.MEMBER, long_ago),
        ("Carol Cole", Role.STAFF, long_ago),
        ("Dan Dormant", Role.MEMBER, long_ago),
        ("Erin Never", Role.MEMBER, long_ago),
        ("Fay New", Role.MEMBER, known.day(0, 9)),
    ):
        new = await create_member(db, org.id, display_name=name, role=role, joined_on=joined, changed_by=None)
        key = name.split()[0].lower()
        known.accounts[key] = new.account.id
        known.members[key] = new.member.id
    a = known.accounts
    agency = org.agency_account_id

    async def exchange(name: str, giver: int, receiver: int, minutes: int, on: dt.date, category: str | None = None):
        posted = await ledger.post_exchange(
            db, org.id, giver_account_id=giver, receiver_account_id=receiver, minutes=minutes, occurred_on=on,
            description=f"Exchange {name}", category=category, recorded_by=None, idempotency_key=new_key(),
        )  # fmt: skip
        known.transactions[name] = posted.id

    async def opening(name: str, account: int, minutes: int, on: dt.date) -> None:
        posted = await ledger.post_opening_balance(
            db, org.id, member_account_id=account, minutes=minutes, occurred_on=on, recorded_by=None,
            idempotency_key=new_key(),
        )  # fmt: skip
        known.transactions[name] = posted.id

    # Before M.
    await opening("ob_erin", a["erin"], 300, long_ago)
    await opening("ob_alice", a["alice"], 600, long_ago)
    await exchange("dan_to_alice", a["dan"], a["alice"], 60, known.day(-5, 4))
    await exchange("mistake", a["alice"], a["bob"], 90, known.day(-1, 10), "Gardening")
    await exchange("bob_to_carol", a["bob"], a["carol"], 30, month_end_of(known.day(-1, 1)))
    # M.
    await exchange("alice_to_bob", a["alice"], a["bob"], 120, known.day(0, 2), "Gardening")
    await exchange("carol_to_agency", a["carol"], agency, 45, known.day(0, 3), "Events")
    await exchange("agency_to_bob", agency, a["bob"], 30, known.day(0, 4))
    group = await ledger.post_group_activity(
        db, org.id, givers=[(agency, 180)], receivers=[(a["alice"], 60), (a["bob"], 60), (a["fay"], 60)],
        occurred_on=known.day(0, 10), description="Cooking session run by the centre", category="Events",
        recorded_by=None, idempotency_key=new_key(),
    )  # fmt: skip
    known.transactions["group"] = group.id
    donation = await ledger.donate_to_pot(
        db, org.id, member_account_id=a["alice"], minutes=30, occurred_on=known.day(0, 11),
        description="Donation", recorded_by=None, idempotency_key=new_key(),
    )  # fmt: skip
    known.transactions["donation"] = donation.id
    grant = await ledger.grant_from_pot(
        db, org.id, member_account_id=a["fay"], minutes=20, occurred_on=known.day(0, 12),
        description="Grant", recorded_by=None, idempotency_key=new_key(),
    )  # fmt: skip
    known.transactions["grant"] = grant.id
    known.transactions["reversal"] = await dated_reversal(org, known.transactions["mistake"], known.day(0, 15))
    await exchange("bob_to_alice_late", a["bob"], a["alice"], 15, month_end_of(known.m))
    # M+1.
    await exchange("alice_to_carol", a["alice"], a["carol"], 60, known.day(1, 1))
    return known


def month_end_of(first: dt.date) -> dt.date:
    return add_months(first, 1) - dt.timedelta(days=1)


def hours(minutes: int) -> dict:
    return {"minutes": minutes, "hours": minutes_to_hours(minutes)}
