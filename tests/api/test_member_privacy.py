"""A member never sees another member's balance, nor who else attended a group activity.

Every API operation a member may call (read from the authorisation matrix, so a new one
without a case here fails) is called as a member, and every field of every answer
(successes, replays and refusals) is searched for any balance another account has ever
had, its headroom above the floor, and the name of an attendee the member must not see.
The other accounts are given distinctive balances (thousands of minutes, where the
member's own are tens), so no answer can pass by coincidence: the set-up checks that
the member's own figures and the forbidden ones never meet.
"""

import csv
import datetime as dt
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.api.conftest import PASSWORD, ApiOrg, Person, add_person, make_api_org
from tests.api.test_authorisation_matrix import MATRIX
from tests.conftest import new_key, today
from timebank import ledger
from timebank.auth.tokens import issue_token
from timebank.db import Database
from timebank.ledger.amounts import minutes_to_hours
from timebank.models import Account, Posting, Role

ORG = "/api/v1/orgs/{org}"
ATTENDEE = "Attendee Nobody-May-See"


@dataclass
class Scene:
    db: Database
    home: ApiOrg
    me: Person
    attendee: Person
    transactions: list[int]  # every transaction touching my account
    forbidden_numbers: set[int]
    forbidden_hours: set[str]

    def url(self, path: str) -> str:
        return self.home.url(path)


async def _opening(db: Database, org_id: int, account_id: int, minutes: int) -> None:
    await ledger.post_opening_balance(
        db, org_id, member_account_id=account_id, minutes=minutes, occurred_on=today() - dt.timedelta(days=30),
        recorded_by=None, idempotency_key=new_key(),
    )  # fmt: skip


@pytest.fixture(scope="module")
async def scene(db: Database) -> Scene:
    home = await make_api_org(db, min_balance_minutes=-300)
    org_id, me, other = home.id, home.member, home.other_member
    attendee = await add_person(db, home.org, Role.MEMBER, name=ATTENDEE)
    await _opening(db, org_id, other.account_id, 7919)
    await _opening(db, org_id, attendee.account_id, 6133)
    await _opening(db, org_id, home.staff.account_id, 5021)
    await ledger.donate_to_pot(
        db, org_id, member_account_id=other.account_id, minutes=4001, occurred_on=today() - dt.timedelta(days=30),
        description="Other's gift", recorded_by=None, idempotency_key=new_key(),
    )  # fmt: skip
    day = today() - dt.timedelta(days=3)
    common = {"occurred_on": day, "recorded_by": home.staff.user_id}
    touching = [
        await ledger.post_exchange(
            db, org_id, giver_account_id=other.account_id, receiver_account_id=me.account_id, minutes=60,
            description="Other helped me", idempotency_key=new_key(), **common,
        ),
        await ledger.post_exchange(
            db, org_id, giver_account_id=me.account_id, receiver_account_id=other.account_id, minutes=45,
            description="I helped other", idempotency_key=new_key(), **common,
        ),
        # Other ran a group that I and the attendee went to.
        await ledger.post_group_activity(
            db, org_id, givers=[(other.account_id, 90)], receivers=[(me.account_id, 45), (attendee.account_id, 45)],
            description="Other's art group", idempotency_key=new_key(), **common,
        ),
        # I ran a group for the attendee and the staff member.
        await ledger.post_group_activity(
            db, org_id, givers=[(me.account_id, 40)],
            receivers=[(attendee.account_id, 20), (home.staff.account_id, 20)],
            description="My walking group", idempotency_key=new_key(), **common,
        ),
        await ledger.post_exchange(
            db, org_id, giver_account_id=home.org.agency_account_id, receiver_account_id=me.account_id, minutes=30,
            description="The centre helped me", idempotency_key=new_key(), **common,
        ),
        await ledger.donate_to_pot(
            db, org_id, member_account_id=me.account_id, minutes=10, description="A gift",
            idempotency_key=new_key(), **common,
        ),
    ]  # fmt: skip
    for original in touching[2:4]:  # both groups reversed: the mirror must hide the same people
        touching.append(
            await ledger.reverse_transaction(
                db, org_id, original.id, reason="Logged twice", recorded_by=home.coordinator.user_id,
                idempotency_key=new_key(),
            )
        )  # fmt: skip
    forbidden, own = await _figures(db, org_id, me.account_id, home.org.min_balance_minutes)
    # The member's own figures (balances and amounts) are small; the others' are in the thousands.
    own |= {p.minutes for t in touching for p in t.postings}
    assert not forbidden & own, f"the scene must keep others' figures apart from my own: {forbidden & own}"
    return Scene(db, home, me, attendee, [t.id for t in touching], forbidden, {minutes_to_hours(n) for n in forbidden})


async def _figures(db: Database, org_id: int, my_account: int, floor: int) -> tuple[set[int], set[int]]:
    """Every balance each other account has had (and its headroom above the floor); and mine."""
    postings, accounts = Posting.__table__, Account.__table__
    async with db.autocommit() as conn:
        rows = (
            await conn.execute(
                select(postings.c.account_id, postings.c.balance_after).where(postings.c.organisation_id == org_id)
            )
        ).all()
        current = (
            await conn.execute(
                select(accounts.c.id, accounts.c.balance_minutes).where(accounts.c.organisation_id == org_id)
            )
        ).all()
    others, mine = set(), set()
    for account_id, balance in [*rows, *current]:
        if account_id == my_account:
            mine |= {balance, balance - floor}
        else:
            others |= {balance, balance - floor}
    others.discard(0)
    others.discard(-floor)  # an untouched account's figures: nothing to reveal
    return others, mine


def _values(body: Any) -> Iterator[Any]:
    if isinstance(body, dict):
        for value in body.values():
            yield from _values(value)
    elif isinstance(body, list):
        for value in body:
            yield from _values(value)
    else:
        yield body


def assert_private(scene: Scene, response: httpx.Response, what: str) -> None:
    assert ATTENDEE not in response.text, f"{what}: names an attendee the member may not see"
    if response.headers.get("content-type", "").startswith("text/csv"):
        body: Any = [cell for row in csv.reader(io.StringIO(response.text)) for cell in row]
        body = [int(cell) if cell.lstrip("-").isdigit() else cell for cell in body]
    else:
        body = response.json() if response.content else None
    for value in _values(body):
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            assert value not in scene.forbidden_numbers, f"{what}: {value} is another account's figure: {body}"
        if isinstance(value, str):
            leaked = [hours for hours in scene.forbidden_hours if hours in value]
            assert not leaked, f"{what}: {leaked} are another account's figures: {body}"


async def _token(scene: Scene) -> dict[str, str]:
    token, _ = await issue_token(scene.db, scene.me.user_id, dt.timedelta(minutes=10))
    return {"Authorization": f"Bearer {token}"}


async def calls_for(scene: Scene, operation: tuple[str, str]) -> list[tuple[str, str, dict[str, Any]]]:
    """(what, url, request options) for every way a member can call ``operation``."""
    me, home = scene.me, scene.home
    headers = await _token(scene)
    org = home.url("")
    if operation == ("POST", "/api/v1/auth/token"):
        return [("sign in", "/api/v1/auth/token", {"json": {"username": me.username, "password": PASSWORD}})]
    if operation == ("DELETE", "/api/v1/auth/token"):
        return [("sign out", "/api/v1/auth/token", {"headers": headers})]
    if operation == ("POST", "/api/v1/me/password"):
        same = {"current_password": PASSWORD, "new_password": PASSWORD}
        wrong = {"current_password": "not my password", "new_password": PASSWORD}
        return [
            ("wrong current password", "/api/v1/me/password", {"headers": headers, "json": wrong}),
            ("change password", "/api/v1/me/password", {"headers": headers, "json": same}),
        ]
    if operation == ("GET", "/api/v1/me"):
        return [("me", "/api/v1/me", {"headers": headers})]
    if operation == ("GET", ORG):
        return [("the organisation", org, {"headers": headers})]
    if operation == ("GET", f"{ORG}/members/{{member_id}}"):
        return [("my record", f"{org}/members/{me.member_id}", {"headers": headers})]
    if operation == ("GET", f"{ORG}/accounts/{{account_id}}"):
        return [("my account", f"{org}/accounts/{me.account_id}", {"headers": headers})]
    if operation == ("GET", f"{ORG}/accounts/{{account_id}}/statement"):
        statement = f"{org}/accounts/{me.account_id}/statement"
        return [
            ("my statement", f"{statement}?from=2000-01-01", {"headers": headers}),
            ("my statement, a page", f"{statement}?from=2000-01-01&limit=2", {"headers": headers}),
            ("my statement as CSV", f"{statement}?from=2000-01-01&format=csv", {"headers": headers}),
        ]
    if operation == ("GET", f"{ORG}/exchanges"):
        return [
            ("my exchanges", f"{org}/exchanges", {"headers": headers}),
            ("my exchanges, filtered", f"{org}/exchanges?account_id={me.account_id}&limit=3", {"headers": headers}),
        ]
    if operation == ("GET", f"{ORG}/exchanges/{{transaction_id}}"):
        return [(f"transaction {t}", f"{org}/exchanges/{t}", {"headers": headers}) for t in scene.transactions]
    if operation == ("POST", f"{ORG}/exchanges"):
        key = new_key()
        received = {
            "giver_account_id": home.other_member.account_id,
            "receiver_account_id": me.account_id,
            "minutes": 15,
            "occurred_on": today().isoformat(),
            "description": "Other helped me again",
        }
        too_much = {**received, "minutes": 20 * 60}
        return [
            ("help received", f"{org}/exchanges", {"headers": {**headers, "Idempotency-Key": key}, "json": received}),
            ("its replay", f"{org}/exchanges", {"headers": {**headers, "Idempotency-Key": key}, "json": received}),
            ("key reused", f"{org}/exchanges", {"headers": {**headers, "Idempotency-Key": key}, "json": too_much}),
            (
                "below my minimum",
                f"{org}/exchanges",
                {"headers": {**headers, "Idempotency-Key": new_key()}, "json": too_much},
            ),
        ]
    if operation == ("POST", f"{ORG}/exchanges/{{transaction_id}}/corrections"):
        wrong = {"what_is_wrong": "I was not there", "what_it_should_be": None}

        def reporting(transaction_id: int, words: dict[str, Any], key: str | None = None) -> tuple[str, dict]:
            options = {"headers": {**headers, "Idempotency-Key": key or new_key()}, "json": words}
            return f"{org}/exchanges/{transaction_id}/corrections", options

        key, first = new_key(), scene.transactions[0]
        return [
            *((f"report transaction {t}", *reporting(t, wrong)) for t in scene.transactions),
            ("a report", *reporting(first, wrong, key)),
            ("its replay", *reporting(first, wrong, key)),
            ("key reused", *reporting(first, {"what_is_wrong": "Other words"}, key)),
            ("empty report", *reporting(first, {"what_is_wrong": " "})),
        ]
    if operation == ("GET", f"{ORG}/exchanges/{{transaction_id}}/corrections"):
        return [
            (f"corrections of {t}", f"{org}/exchanges/{t}/corrections", {"headers": headers})
            for t in scene.transactions
        ]
    raise AssertionError(f"no privacy case for {operation}: add one to calls_for")


def member_operations() -> list[tuple[str, str]]:
    """Every operation a member may call on their own things, as the authorisation matrix says."""
    member_self = 1  # the column of tests/api/test_authorisation_matrix.ROLES
    return [operation for operation, row in MATRIX.items() if row.statuses[member_self] < 400]


@pytest.mark.parametrize("operation", member_operations(), ids=lambda op: f"{op[0]} {op[1]}")
async def test_no_answer_a_member_gets_reveals_anyone_elses_balance(
    client: httpx.AsyncClient, scene: Scene, operation: tuple[str, str]
) -> None:
    calls = await calls_for(scene, operation)
    statuses = []
    for what, url, options in calls:
        response = await client.request(operation[0], url, **options)
        statuses.append(response.status_code)
        assert response.status_code < 500, response.text
        assert_private(scene, response, what)
    assert any(status < 400 for status in statuses), "at least one call must succeed, or nothing was checked"


async def test_a_member_sees_who_ran_a_group_but_not_the_other_attendees(client, scene: Scene) -> None:
    headers = await _token(scene)
    other_group = scene.transactions[2]
    body = (await client.get(scene.url(f"/exchanges/{other_group}"), headers=headers)).json()
    ran_it, mine = body["postings"]
    assert (ran_it["display_name"], ran_it["minutes"], ran_it["balance_after"]) == ("Member Other", 90, None)
    assert (mine["display_name"], mine["minutes"]) == ("Member Self", -45)
    assert mine["balance_after"] is not None  # my own balance after my leg is mine to see

    my_group = scene.transactions[3]
    body = (await client.get(scene.url(f"/exchanges/{my_group}"), headers=headers)).json()
    assert [p["display_name"] for p in body["postings"]] == ["Member Self"]  # I ran it; who came is not mine to see


async def test_staff_still_see_every_leg_and_balance(client, scene: Scene) -> None:
    body = (await client.get(scene.url(f"/exchanges/{scene.transactions[2]}"), headers=scene.home.staff.headers)).json()
    assert [p["display_name"] for p in body["postings"]] == ["Member Other", "Member Self", ATTENDEE]
    assert all(p["balance_after"] is not None for p in body["postings"])


async def test_every_operation_a_member_may_call_has_a_case(scene: Scene) -> None:
    # calls_for refuses an operation it has no case for: a new one a member may call fails here.
    for operation in member_operations():
        assert await calls_for(scene, operation), operation
    assert len(member_operations()) >= 10
