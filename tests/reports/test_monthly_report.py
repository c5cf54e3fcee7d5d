"""The monthly report of a known month, and of a three-month range, figure by figure, on both databases."""

import datetime as dt

import pytest

from tests.conftest import make_org, new_key, today
from tests.reports.support import KnownOrg, build_known_org, hours, month_end_of
from timebank import ledger
from timebank.db import Database
from timebank.members.service import create_member
from timebank.reports.rates import set_hourly_rate
from timebank.reports.service import DEFINITIONS, Period, add_months, month_label, monthly_report


@pytest.fixture(scope="module")
async def known(db: Database) -> KnownOrg:
    built = await build_known_org(db)
    await set_hourly_rate(
        db, built.org.id, amount_pence=1260, currency="GBP", basis="The National Living Wage", set_by=None
    )
    return built


def kind(count: int, minutes: int) -> dict:
    return {"count": count, **hours(minutes)}


def row(known: KnownOrg, name: str, full_name: str, opening: int, given: int, received: int, other: int) -> dict:
    return {
        "member_id": known.members[name],
        "name": full_name,
        "account_id": known.accounts[name],
        "opening_balance": hours(opening),
        "given": hours(given),
        "received": hours(received),
        "other": hours(other),
        "closing_balance": hours(opening + given - received + other),
    }


def ranked(known: KnownOrg, name: str, full_name: str, minutes: int) -> dict:
    return {"member_id": known.members[name], "name": full_name, **hours(minutes)}


def trend(known: KnownOrg, last: int, figures: dict[int, tuple[int, int, int]]) -> list[dict]:
    """12 months ending ``last`` months after M; ``figures``: months after M -> (minutes, exchanges, active)."""
    months = []
    for offset in range(last - 11, last + 1):
        minutes, exchanges, active = figures.get(offset, (0, 0, 0))
        months.append(
            {
                "month": month_label(add_months(known.m, offset)),
                **hours(minutes),
                "exchanges": exchanges,
                "active_members": active,
            }
        )
    return months


TREND = {-5: (60, 1, 2), -1: (120, 2, 3), 0: (300, 5, 4), 1: (60, 1, 2)}


class TestTheKnownMonth:
    async def test_every_figure(self, db: Database, known: KnownOrg) -> None:
        report = await monthly_report(db, known.org.id, Period(known.m, known.m))
        body = report.model_dump(mode="json", by_alias=True)
        t = known.transactions

        assert body == {
            "month": month_label(known.m),
            "from": None,
            "to": None,
            "exchanges": 5,
            "reversals": 1,
            "hours_exchanged": hours(300),
            "hours_exchanged_gross": hours(390),
            "by_kind": {
                "person_to_person": kind(2, 135),
                "person_to_agency": kind(1, 45),
                "agency_to_person": kind(1, 30),
                "group": kind(1, 180),
                "pot_donation": kind(1, 30),
                "pot_grant": kind(1, 20),
                "reversal": kind(1, 90),
                "opening_balance": kind(0, 0),
            },
            "active_members": 4,
            "members_who_gave": 3,
            "members_who_received": 3,
            "new_members": [
                {"member_id": known.members["fay"], "name": "Fay New", "joined_on": known.day(0, 9).isoformat()}
            ],
            "dormant_members": [
                {
                    "member_id": known.members["dan"],
                    "name": "Dan Dormant",
                    "last_active_on": known.day(-5, 4).isoformat(),
                }
            ],
            "never_active": [{"member_id": known.members["erin"], "name": "Erin Never"}],
            "by_category": [
                {
                    "category_id": body["by_category"][0]["category_id"],
                    "category": "Events",
                    "exchanges": 2,
                    **hours(225),
                },
                {"category_id": None, "category": "No category", "exchanges": 2, **hours(45)},
                {
                    "category_id": body["by_category"][2]["category_id"],
                    "category": "Gardening",
                    "exchanges": 1,
                    **hours(30),
                },
            ],
            "top_givers": [
                ranked(known, "alice", "Alice Archer", 120),
                ranked(known, "carol", "Carol Cole", 45),
                ranked(known, "bob", "Bob Baker", 15),
            ],
            "top_receivers": [
                ranked(known, "bob", "Bob Baker", 210),
                ranked(known, "alice", "Alice Archer", 75),
                ranked(known, "fay", "Fay New", 60),
            ],
            "members": [
                row(known, "alice", "Alice Archer", 630, 120, 75, -120),
                row(known, "bob", "Bob Baker", -60, 15, 210, 90),
                row(known, "carol", "Carol Cole", -30, 45, 0, 0),
                row(known, "dan", "Dan Dormant", 60, 0, 0, 0),
                row(known, "erin", "Erin Never", 300, 0, 0, 0),
                row(known, "fay", "Fay New", 0, 0, 60, 20),
            ],
            "corrections": [
                {
                    "transaction_id": t["reversal"],
                    "occurred_on": known.day(0, 15).isoformat(),
                    "reverses_id": t["mistake"],
                    "reverses_occurred_on": known.day(-1, 10).isoformat(),
                    "reverses_kind": "exchange",
                    **hours(90),
                    "description": "Logged twice by mistake",
                }
            ],
            "trend": trend(known, 0, TREND),
            "trial_balance": {
                "as_of": month_end_of(known.m).isoformat(),
                "total": hours(0),
                "held": True,
                "member_rows_held": True,
            },
            "social_value": {
                "estimate": True,
                "rate": {"amount": "12.60", "currency": "GBP"},
                "basis": body["social_value"]["basis"],
                "set_on": body["social_value"]["set_on"],
                "value": {"amount": "63.00", "currency": "GBP"},
            },
            "definitions": DEFINITIONS,
            "closed": False,
        }
        assert "The National Living Wage" in body["social_value"]["basis"]
        assert "12.60" in body["social_value"]["basis"]

    async def test_categories_are_matched_by_id(self, db: Database, known: KnownOrg) -> None:
        report = await monthly_report(db, known.org.id, Period(known.m, known.m))
        ids = {c.category for c in report.by_category if c.category_id is not None}
        assert ids == {"Events", "Gardening"}
        assert len({c.category_id for c in report.by_category}) == 3


class TestAThreeMonthRange:
    async def test_every_figure(self, db: Database, known: KnownOrg) -> None:
        first, last = add_months(known.m, -1), add_months(known.m, 1)
        report = await monthly_report(db, known.org.id, Period(first, last))
        body = report.model_dump(mode="json", by_alias=True)

        assert body["month"] is None
        assert (body["from"], body["to"]) == (month_label(first), month_label(last))
        assert (body["exchanges"], body["reversals"]) == (8, 1)
        assert body["hours_exchanged"] == hours(480)
        assert body["hours_exchanged_gross"] == hours(570)
        assert body["by_kind"] == {
            "person_to_person": kind(5, 315),
            "person_to_agency": kind(1, 45),
            "agency_to_person": kind(1, 30),
            "group": kind(1, 180),
            "pot_donation": kind(1, 30),
            "pot_grant": kind(1, 20),
            "reversal": kind(1, 90),
            "opening_balance": kind(0, 0),
        }
        assert (body["active_members"], body["members_who_gave"], body["members_who_received"]) == (4, 3, 4)
        assert [m["name"] for m in body["new_members"]] == ["Fay New"]
        assert body["dormant_members"] == [
            {"member_id": known.members["dan"], "name": "Dan Dormant", "last_active_on": known.day(-5, 4).isoformat()}
        ]
        assert [m["name"] for m in body["never_active"]] == ["Erin Never"]
        assert [(c["category"], c["exchanges"], c["minutes"]) for c in body["by_category"]] == [
            ("Events", 2, 225),
            ("No category", 4, 135),
            ("Gardening", 2, 120),
        ]
        assert body["top_givers"] == [
            ranked(known, "alice", "Alice Archer", 270),
            ranked(known, "bob", "Bob Baker", 45),  # a tie with Carol: by name
            ranked(known, "carol", "Carol Cole", 45),
        ]
        assert body["top_receivers"] == [
            ranked(known, "bob", "Bob Baker", 300),
            ranked(known, "carol", "Carol Cole", 90),
            ranked(known, "alice", "Alice Archer", 75),
            ranked(known, "fay", "Fay New", 60),
        ]
        assert body["members"] == [
            row(known, "alice", "Alice Archer", 540, 270, 75, -120),
            row(known, "bob", "Bob Baker", 0, 45, 300, 90),
            row(known, "carol", "Carol Cole", 0, 45, 90, 0),
            row(known, "dan", "Dan Dormant", 60, 0, 0, 0),
            row(known, "erin", "Erin Never", 300, 0, 0, 0),
            row(known, "fay", "Fay New", 0, 0, 60, 20),
        ]
        assert [c["transaction_id"] for c in body["corrections"]] == [known.transactions["reversal"]]
        assert body["trend"] == trend(known, 1, TREND)
        assert body["trial_balance"]["held"] and body["trial_balance"]["member_rows_held"]
        assert body["trial_balance"]["as_of"] == month_end_of(last).isoformat()
        assert body["social_value"]["value"] == {"amount": "100.80", "currency": "GBP"}  # 8 hours x 12.60
        assert body["closed"] is False


class TestThePerMemberTable:
    async def test_holds_a_member_whose_hours_net_to_zero_though_they_joined_later(self, db: Database) -> None:
        # Entries typed in from paper for a month before the member's record was made.
        org = await make_org(db)
        month = add_months(today().replace(day=1), -2)
        joined_today = [
            await create_member(db, org.id, display_name=name, joined_on=today(), changed_by=None)
            for name in ("Ann", "Ben")
        ]
        ann, ben = (m.account.id for m in joined_today)
        for giver, receiver in ((ann, ben), (ben, ann)):
            await ledger.post_exchange(
                db,
                org.id,
                giver_account_id=giver,
                receiver_account_id=receiver,
                minutes=60,
                occurred_on=month + dt.timedelta(days=4),
                description="Shopping",
                category=None,
                recorded_by=None,
                idempotency_key=new_key(),
            )
        report = await monthly_report(db, org.id, Period(month, month))
        assert [(m.name, m.given.minutes, m.received.minutes) for m in report.members] == [
            ("Ann", 60, 60),
            ("Ben", 60, 60),
        ]
        assert report.active_members == 2
