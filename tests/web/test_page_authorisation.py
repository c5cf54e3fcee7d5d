"""Who may open which page, for every page route, from one table (like tests/api/test_authorisation_matrix.py).

The routes are read from the app, so a new page without a row fails
``test_every_page_route_has_a_row``. The callers (the columns):

- ``anonymous``: no session cookie;
- ``member``, ``staff``, ``coordinator`` of the organisation;
- ``other_coordinator``: the coordinator of another organisation, opening this one's pages.

A signed-out visitor to a page that needs a session is sent to the start page (303); an
organisation one does not belong to is a not-found page (404), whether it exists or not.
Every cell uses a fresh session.
"""

import datetime as dt
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import urlencode

import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute

from tests.api.conftest import PASSWORD, ApiOrg, Person, make_api_org
from tests.web.support import signed_in
from timebank import ledger
from timebank.corrections import service as corrections
from timebank.db import Database
from timebank.members.service import create_member
from timebank.reports.service import add_months, month_label

ROLES = ("anonymous", "member", "staff", "coordinator", "other_coordinator")
# Served to everyone and not pages (see tests/api/test_authorisation_matrix.py).
NOT_PAGES = ("/api/", "/health", "/ready", "/schema", "/static")


@dataclass
class World:
    db: Database
    home: ApiOrg
    elsewhere: ApiOrg

    def actor(self, role: str) -> Person | None:
        return {
            "anonymous": None,
            "member": self.home.member,
            "staff": self.home.staff,
            "coordinator": self.home.coordinator,
            "other_coordinator": self.elsewhere.coordinator,
        }[role]


@dataclass
class Call:
    params: dict[str, object] = field(default_factory=dict)
    form: dict[str, str] | None = None
    query: dict[str, str] = field(default_factory=dict)


Build = Callable[[World, Person | None], Awaitable[Call]]


@dataclass(frozen=True)
class Row:
    statuses: tuple[int, int, int, int, int]  # in the order of ROLES
    build: Build


async def _nothing(world: World, actor: Person | None) -> Call:
    return Call()


async def _sign_in(world: World, actor: Person | None) -> Call:
    # Anonymous is who signs in: with the member's username and password.
    return Call(form={"username": (actor or world.home.member).username, "password": PASSWORD})


async def _same_password(world: World, actor: Person | None) -> Call:
    return Call(form={"current_password": PASSWORD, "new_password": PASSWORD})


def _last_month() -> str:
    return month_label(add_months(dt.date.today().replace(day=1), -1))


async def _a_month(world: World, actor: Person | None) -> Call:
    return Call(query={"month": _last_month()})


async def _a_chart(world: World, actor: Person | None) -> Call:
    return Call(params={"name": "trend.svg"}, query={"month": _last_month()})


async def _close_this_month(world: World, actor: Person | None) -> Call:
    # This month has not ended: a coordinator is refused (409, the page says why), and the
    # home organisation's months stay open for the other rows.
    return Call(form={"month": month_label(dt.date.today().replace(day=1)), "idempotency_key": uuid.uuid4().hex})


async def _plain_member(world: World, actor: Person | None) -> Call:
    # A plain member of this organisation alone, with a sign-in: staff may do everything to them.
    return Call(params={"member_id": world.home.other_member.member_id})


async def _new_name(world: World, actor: Person | None) -> Call:
    return Call(form={"display_name": f"Registered by {actor.username if actor else 'nobody'}"})


async def _same_details(world: World, actor: Person | None) -> Call:
    return Call(params={"member_id": world.home.other_member.member_id}, form={"display_name": "Member Other"})


async def _member_without_sign_in(world: World, actor: Person | None) -> Call:
    new = await create_member(world.db, world.home.id, display_name="Never signed in", changed_by=None)
    username = f"given-{uuid.uuid4().hex[:10]}"
    return Call(params={"member_id": new.member.id}, form={"username": username, "password": PASSWORD})


async def _new_password(world: World, actor: Person | None) -> Call:
    return Call(params={"member_id": world.home.other_member.member_id}, form={"password": PASSWORD})


async def _help_the_member_received(world: World, actor: Person | None) -> Call:
    # The same key every time: one exchange, whoever asks.
    posted = await ledger.post_exchange(
        world.db,
        world.home.id,
        giver_account_id=world.home.other_member.account_id,
        receiver_account_id=world.home.member.account_id,
        minutes=30,
        occurred_on=dt.date(2026, 1, 5),
        description="Helped with the shopping",
        recorded_by=world.home.member.user_id,
        idempotency_key=f"matrix-{world.home.slug}",
    )
    return Call(params={"transaction_id": posted.id})


async def _an_exchange(world: World, actor: Person | None) -> Call:
    # The same key every time: one exchange, whoever asks.
    posted = await ledger.post_exchange(
        world.db,
        world.home.id,
        giver_account_id=world.home.member.account_id,
        receiver_account_id=world.home.other_member.account_id,
        minutes=15,
        occurred_on=dt.date(2026, 1, 6),
        description="Fixed a bike",
        recorded_by=world.home.staff.user_id,
        idempotency_key=f"matrix-exchange-{world.home.slug}",
    )
    return Call(params={"transaction_id": posted.id})


async def _a_group_activity(world: World, actor: Person | None) -> Call:
    posted = await ledger.post_group_activity(
        world.db,
        world.home.id,
        givers=[(world.home.staff.account_id, 30)],
        receivers=[(world.home.member.account_id, 15), (world.home.other_member.account_id, 15)],
        occurred_on=dt.date(2026, 1, 7),
        description="Singing group",
        recorded_by=world.home.staff.user_id,
        idempotency_key=f"matrix-group-{world.home.slug}",
    )
    return Call(params={"transaction_id": posted.id})


async def _a_request_to_answer(world: World, actor: Person | None) -> Call:
    # A new request each time: a request is answered once.
    entry = await _help_the_member_received(world, actor)
    member = world.home.member
    request = await corrections.report_mistake(
        world.db,
        world.home.id,
        int(entry.params["transaction_id"]),  # type: ignore[call-overload]
        member_id=member.member_id,
        account_id=member.account_id,
        reported_by=member.user_id,
        what_is_wrong="It was 15 minutes",
        idempotency_key=uuid.uuid4().hex,
    )
    return Call(
        params={"correction_id": request.id}, form={"answer": "We checked it", "idempotency_key": uuid.uuid4().hex}
    )


async def _a_fresh_exchange(world: World, actor: Person | None) -> Call:
    # A new exchange for every caller: a reversal by one does not change what the next sees.
    posted = await ledger.post_exchange(
        world.db,
        world.home.id,
        giver_account_id=world.home.member.account_id,
        receiver_account_id=world.home.other_member.account_id,
        minutes=10,
        occurred_on=dt.date(2026, 1, 8),
        description="Watered the plants",
        recorded_by=world.home.staff.user_id,
        idempotency_key=uuid.uuid4().hex,
    )
    return Call(
        params={"transaction_id": posted.id},
        form={"reason": "Logged twice", "idempotency_key": uuid.uuid4().hex},
    )


async def _a_setting(world: World, actor: Person | None) -> Call:
    # The check step only: nothing is saved, so the organisation stays as it was.
    return Call(params={"change": "name"}, form={"value": "A new name"})


async def _same_role(world: World, actor: Person | None) -> Call:
    return Call(params={"member_id": world.home.other_member.member_id}, form={"role": "member"})


async def _still_active(world: World, actor: Person | None) -> Call:
    return Call(params={"member_id": world.home.other_member.member_id}, form={"active": "yes"})


ORG = "/orgs/{org:str}"
MEMBER = ORG + "/members/{member_id:int}"

# A member is not allowed (403) on a staff page, and gets not-found (404) on any page about
# someone (a member's page, a logged exchange), as for every page that is not theirs.
# fmt: off
PAGE_MATRIX: dict[tuple[str, str], Row] = {
    #                                                   anon memb staff coord o-co
    ("GET", "/"):                                  Row((200, 303, 303, 303, 303), _nothing),
    ("POST", "/sign-in"):                          Row((303, 303, 303, 303, 303), _sign_in),
    ("POST", "/sign-out"):                         Row((303, 303, 303, 303, 303), _nothing),
    ("POST", "/keep-alive"):                       Row((303, 200, 200, 200, 200), _nothing),
    ("GET", "/change-password"):                   Row((303, 200, 200, 200, 200), _nothing),
    ("POST", "/change-password"):                  Row((303, 303, 303, 303, 303), _same_password),
    ("GET", "/change-password/done"):              Row((303, 200, 200, 200, 200), _nothing),
    ("GET", ORG):                                  Row((303, 200, 200, 200, 404), _nothing),
    ("GET", f"{ORG}/reports"):                     Row((303, 403, 200, 200, 404), _a_month),
    ("GET", f"{ORG}/reports/charts/{{name:str}}"):  Row((303, 403, 200, 200, 404), _a_chart),
    ("GET", f"{ORG}/reports/csv"):                 Row((303, 403, 200, 200, 404), _a_month),
    ("GET", f"{ORG}/reports/close"):               Row((303, 403, 403, 200, 404), _a_month),
    ("POST", f"{ORG}/reports/close"):              Row((303, 403, 403, 409, 404), _close_this_month),
    ("GET", f"{ORG}/history"):                     Row((303, 403, 200, 200, 404), _nothing),
    ("GET", f"{ORG}/history/csv"):                 Row((303, 403, 200, 200, 404), _nothing),
    ("GET", ORG + "/exchanges/new"):               Row((303, 403, 200, 200, 404), _nothing),
    # An empty form: the form again, with its problems.
    ("POST", ORG + "/exchanges/new"):              Row((303, 403, 400, 400, 404), _nothing),
    ("GET", ORG + "/exchanges/{transaction_id:int}/logged"):
                                                   Row((303, 404, 200, 200, 404), _an_exchange),
    ("GET", ORG + "/exchanges/{transaction_id:int}"):
                                                   Row((303, 200, 200, 200, 404), _an_exchange),
    ("GET", ORG + "/exchanges/{transaction_id:int}/reverse"):
                                                   Row((303, 404, 403, 200, 404), _a_fresh_exchange),
    ("POST", ORG + "/exchanges/{transaction_id:int}/reverse"):
                                                   Row((303, 404, 403, 303, 404), _a_fresh_exchange),
    ("GET", ORG + "/settings"):                    Row((303, 403, 403, 200, 404), _nothing),
    ("GET", ORG + "/settings/{change:str}"):       Row((303, 403, 403, 200, 404), _a_setting),
    ("POST", ORG + "/settings/{change:str}"):      Row((303, 403, 403, 200, 404), _a_setting),
    ("GET", ORG + "/access"):                      Row((303, 403, 403, 200, 404), _nothing),
    ("GET", ORG + "/access/{member_id:int}"):      Row((303, 404, 403, 200, 404), _plain_member),
    ("POST", ORG + "/access/{member_id:int}/role"):
                                                   Row((303, 404, 403, 303, 404), _same_role),
    ("POST", ORG + "/access/{member_id:int}/active"):
                                                   Row((303, 404, 403, 303, 404), _still_active),
    ("POST", ORG + "/access/{member_id:int}/lockout"):
                                                   Row((303, 404, 403, 303, 404), _plain_member),
    ("GET", ORG + "/group-activities/new"):        Row((303, 403, 200, 200, 404), _nothing),
    ("POST", ORG + "/group-activities/new"):       Row((303, 403, 400, 400, 404), _nothing),
    ("POST", ORG + "/group-activities/confirm"):   Row((303, 403, 400, 400, 404), _nothing),
    ("GET", ORG + "/group-activities/{transaction_id:int}/logged"):
                                                   Row((303, 404, 200, 200, 404), _a_group_activity),
    ("GET", ORG + "/members"):                     Row((303, 403, 200, 200, 404), _nothing),
    ("GET", ORG + "/members/new"):                 Row((303, 403, 200, 200, 404), _nothing),
    ("POST", ORG + "/members/new"):                Row((303, 403, 303, 303, 404), _new_name),
    ("GET", MEMBER):                               Row((303, 404, 200, 200, 404), _plain_member),
    ("GET", MEMBER + "/statement"):                Row((303, 404, 200, 200, 404), _plain_member),
    ("GET", MEMBER + "/edit"):                     Row((303, 404, 200, 200, 404), _plain_member),
    ("POST", MEMBER + "/edit"):                    Row((303, 404, 303, 303, 404), _same_details),
    ("POST", MEMBER + "/deactivate"):              Row((303, 404, 303, 303, 404), _plain_member),
    ("POST", MEMBER + "/reactivate"):              Row((303, 404, 303, 303, 404), _plain_member),
    ("GET", MEMBER + "/sign-in"):                  Row((303, 404, 200, 200, 404), _member_without_sign_in),
    ("POST", MEMBER + "/sign-in"):                 Row((303, 404, 303, 303, 404), _member_without_sign_in),
    ("GET", MEMBER + "/password"):                 Row((303, 404, 200, 200, 404), _plain_member),
    ("POST", MEMBER + "/password"):                Row((303, 404, 303, 303, 404), _new_password),
    ("GET", ORG + "/people"):                      Row((303, 200, 200, 200, 404), _nothing),
    ("GET", ORG + "/statement"):                   Row((303, 200, 200, 200, 404), _nothing),
    ("GET", ORG + "/statement/csv"):               Row((303, 200, 200, 200, 404), _nothing),
    ("GET", ORG + "/record-help"):                 Row((303, 200, 200, 200, 404), _nothing),
    # An empty form: the form again, with its problems.
    ("POST", ORG + "/record-help"):                Row((303, 400, 400, 400, 404), _nothing),
    ("POST", ORG + "/record-help/confirm"):        Row((303, 400, 400, 400, 404), _nothing),
    # Only the member who received the help sees what was recorded.
    ("GET", ORG + "/record-help/done/{transaction_id:int}"):
                                                   Row((303, 200, 404, 404, 404), _help_the_member_received),
    # "Report a mistake": only on an entry of one's own account (the same not-found otherwise).
    ("GET", ORG + "/statement/entries/{transaction_id:int}/report"):
                                                   Row((303, 200, 404, 404, 404), _help_the_member_received),
    # An empty form: the form again, with its problems.
    ("POST", ORG + "/statement/entries/{transaction_id:int}/report"):
                                                   Row((303, 400, 404, 404, 404), _help_the_member_received),
    ("GET", ORG + "/statement/entries/{transaction_id:int}/report/sent"):
                                                   Row((303, 200, 404, 404, 404), _help_the_member_received),
    ("GET", ORG + "/corrections"):                 Row((303, 403, 200, 200, 404), _nothing),
    ("POST", ORG + "/corrections/{correction_id:int}/answer"):
                                                   Row((303, 403, 303, 303, 404), _a_request_to_answer),
}
# fmt: on


def page_routes(app: Litestar) -> set[tuple[str, str]]:
    """(method, path) of every page route the app serves, paths as Litestar writes them."""
    routes = set()
    for route in app.routes:
        if isinstance(route, HTTPRoute) and not route.path.startswith(NOT_PAGES):
            routes |= {(method, route.path) for method in route.methods if method not in {"OPTIONS", "HEAD"}}
    return routes


@pytest.fixture(scope="module")
async def world(db: Database) -> World:
    return World(db, await make_api_org(db), await make_api_org(db))


def test_every_page_route_has_a_row(app: Litestar) -> None:
    served = page_routes(app)
    assert served - PAGE_MATRIX.keys() == set(), "page routes with no row in PAGE_MATRIX: add one"
    assert PAGE_MATRIX.keys() - served == set(), "rows in PAGE_MATRIX for routes the app no longer serves"


@pytest.mark.parametrize("route", list(PAGE_MATRIX), ids=lambda r: f"{r[0]} {r[1]}")
async def test_each_caller_gets_the_status_in_the_table(app: Litestar, world: World, route: tuple[str, str]) -> None:
    method, path = route
    actual, bodies = {}, {}
    for role in ROLES:
        actor = world.actor(role)
        call = await PAGE_MATRIX[route].build(world, actor)
        url = re.sub(r"\{(\w+):[^}]+\}", r"{\1}", path).format(org=world.home.slug, **call.params)
        if call.query:
            url += "?" + urlencode(call.query)
        page = await signed_in(app, world.db, actor)
        try:
            answer = await (page.get(url) if method == "GET" else page.post(url, call.form))
        finally:
            await page.aclose()
        actual[role], bodies[role] = answer.status_code, answer
    assert actual == dict(zip(ROLES, PAGE_MATRIX[route].statuses, strict=True))
    for role, answer in bodies.items():
        if answer.status_code == 303:
            assert answer.headers["location"].startswith("/"), (role, answer.headers)
        elif answer.status_code >= 400:
            # A friendly page, never JSON.
            assert answer.headers["content-type"].startswith("text/html"), (role, answer.text[:200])
