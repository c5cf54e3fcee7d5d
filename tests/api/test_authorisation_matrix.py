"""Who may do what, for every API operation, from one table (DESIGN.md "Who may do what").

Each operation has one row: the status each kind of caller gets. The operations
are read from the app itself, so a new operation without a row fails
``test_every_api_operation_has_a_row``: deny by default includes the tests.

The callers (the columns):

- ``anonymous``: no ``Authorization`` header;
- ``member_self``: a member acting on their own member record, account or transaction;
- ``member_other``: the same member acting on another member's;
- ``staff`` and ``coordinator`` of the organisation, acting on the member's;
- ``other_coordinator``: the coordinator of another organisation, acting on this one's;
- ``site_admin``: a site administrator who is no member of the organisation.

For operations that target no member (listing, the organisation itself) the two
member columns make the same request. Every cell is independent: it signs in
with a fresh token and, when a success would change something, works on fresh
data (a new Idempotency-Key, a new transaction to reverse, a new organisation slug).
"""

import datetime as dt
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute

from tests.api.conftest import PASSWORD, ApiOrg, Person, add_site_admin, client_for, make_api_org, make_app
from tests.conftest import new_key, today
from tests.web.test_page_authorisation import PAGE_MATRIX
from timebank import ledger
from timebank.auth.tokens import issue_token
from timebank.corrections import service as corrections
from timebank.db import Database
from timebank.members.service import create_member
from timebank.models import Role
from timebank.orgs.service import get_organisation_by_slug

ROLES = ("anonymous", "member_self", "member_other", "staff", "coordinator", "other_coordinator", "site_admin")
# Served to everyone and documented elsewhere: not part of the authorisation matrix.
# /metrics is for Prometheus, behind its own token (TestMetricsToken below), for no role.
PUBLIC_OUTSIDE_API = ("/health", "/ready", "/schema", "/static", "/metrics")
METRICS_TOKEN = "matrix-metrics-token-0123456789"
MINUTES = 15


@dataclass
class World:
    """One organisation with its people, another organisation's coordinator and a site admin."""

    db: Database
    home: ApiOrg
    elsewhere: ApiOrg
    site_admin: Person

    @property
    def other_coordinator(self) -> Person:
        return self.elsewhere.coordinator

    def actor(self, role: str) -> Person | None:
        return {
            "anonymous": None,
            "member_self": self.home.member,
            "member_other": self.home.member,
            "staff": self.home.staff,
            "coordinator": self.home.coordinator,
            "other_coordinator": self.other_coordinator,
            "site_admin": self.site_admin,
        }[role]

    def target(self, role: str) -> Person:
        """Whose member record, account or transaction the request is about."""
        return self.home.other_member if role == "member_other" else self.home.member

    async def fresh_token(self, person: Person) -> str:
        token, _ = await issue_token(self.db, person.user_id, dt.timedelta(minutes=10))
        return token

    async def transaction_touching(self, target: Person) -> int:
        """A new exchange between ``target`` and the staff member (never the other member)."""
        posted = await ledger.post_exchange(
            self.db,
            self.home.id,
            giver_account_id=self.home.staff.account_id,
            receiver_account_id=target.account_id,
            minutes=MINUTES,
            occurred_on=today(),
            description="Matrix fixture",
            recorded_by=self.home.staff.user_id,
            idempotency_key=new_key(),
        )
        return posted.id


@dataclass
class Call:
    """What one cell sends: path parameters (``org`` defaults to the home organisation), body, headers."""

    params: dict[str, object] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, object] = field(default_factory=dict)


Build = Callable[[World, Person | None, Person], Awaitable[Call]]


@dataclass(frozen=True)
class Row:
    statuses: tuple[int, int, int, int, int, int, int]  # in the order of ROLES
    build: Build


def _idempotent() -> dict[str, str]:
    return {"Idempotency-Key": new_key()}


async def _nothing(world: World, actor: Person | None, target: Person) -> Call:
    return Call()


async def _sign_in(world: World, actor: Person | None, target: Person) -> Call:
    # Anonymous is what signing in is for: it uses the member's own username and password.
    return Call(json={"username": (actor or target).username, "password": PASSWORD})


async def _same_password(world: World, actor: Person | None, target: Person) -> Call:
    # Changed to itself, so every other cell still signs in with PASSWORD.
    return Call(json={"current_password": PASSWORD, "new_password": PASSWORD})


async def _new_org(world: World, actor: Person | None, target: Person) -> Call:
    slug = f"matrix-{uuid.uuid4().hex[:10]}"
    return Call(json={"slug": slug, "name": f"Matrix {slug}"})


async def _rename_org(world: World, actor: Person | None, target: Person) -> Call:
    return Call(json={"name": f"Test centre {world.home.slug}"})


async def _new_member(world: World, actor: Person | None, target: Person) -> Call:
    return Call(json={"display_name": f"New member {uuid.uuid4().hex[:6]}"})


async def _the_member(world: World, actor: Person | None, target: Person) -> Call:
    return Call(params={"member_id": target.member_id})


async def _edit_member(world: World, actor: Person | None, target: Person) -> Call:
    return Call(params={"member_id": target.member_id}, json={"email": f"{uuid.uuid4().hex[:8]}@example.org"})


async def _the_account(world: World, actor: Person | None, target: Person) -> Call:
    return Call(params={"account_id": target.account_id})


async def _exchanges_of(world: World, actor: Person | None, target: Person) -> Call:
    await world.transaction_touching(target)
    return Call(query={"account_id": target.account_id})


async def _help_received(world: World, actor: Person | None, target: Person) -> Call:
    body = {
        "giver_account_id": world.home.staff.account_id,
        "receiver_account_id": target.account_id,
        "minutes": MINUTES,
        "occurred_on": today().isoformat(),
        "description": "Help received",
    }
    return Call(json=body, headers=_idempotent())


async def _a_transaction(world: World, actor: Person | None, target: Person) -> Call:
    return Call(params={"transaction_id": await world.transaction_touching(target)})


async def _reverse(world: World, actor: Person | None, target: Person) -> Call:
    return Call(
        params={"transaction_id": await world.transaction_touching(target)},
        json={"reason": "Logged by mistake"},
        headers=_idempotent(),
    )


async def _entry_of(world: World, target: Person) -> int:
    """A new exchange between ``target`` and the centre: on no staff member's own account."""
    posted = await ledger.post_exchange(
        world.db,
        world.home.id,
        giver_account_id=world.home.org.agency_account_id,
        receiver_account_id=target.account_id,
        minutes=MINUTES,
        occurred_on=today(),
        description="Matrix fixture",
        recorded_by=world.home.staff.user_id,
        idempotency_key=new_key(),
    )
    return posted.id


async def _report_a_mistake(world: World, actor: Person | None, target: Person) -> Call:
    return Call(
        params={"transaction_id": await _entry_of(world, target)},
        json={"what_is_wrong": "I was not there that day"},
        headers=_idempotent(),
    )


async def _entry_corrections(world: World, actor: Person | None, target: Person) -> Call:
    return Call(params={"transaction_id": await _entry_of(world, target)})


async def _answer_a_request(world: World, actor: Person | None, target: Person) -> Call:
    transaction_id = await _entry_of(world, target)
    request = await corrections.report_mistake(
        world.db,
        world.home.id,
        transaction_id,
        member_id=target.member_id,
        account_id=target.account_id,
        reported_by=target.user_id,
        what_is_wrong="It was 15 minutes, not 30",
        idempotency_key=new_key(),
    )
    return Call(params={"correction_id": request.id}, json={"answer": "We have checked it"}, headers=_idempotent())


async def _erase_a_member(world: World, actor: Person | None, target: Person) -> Call:
    name = f"Leaver {uuid.uuid4().hex[:6]}"
    new = await create_member(world.db, world.home.id, display_name=name, changed_by=None)
    return Call(params={"member_id": new.member.id}, json={"confirm_display_name": name})


async def _a_month(world: World, actor: Person | None, target: Person) -> Call:
    return Call(query={"month": f"{today():%Y-%m}"})


async def _next_month(world: World, actor: Person | None, target: Person) -> Call:
    """The month after the last one closed (from January 2000): a success closes it, a refusal leaves it."""
    organisation = await get_organisation_by_slug(world.db, world.home.slug)
    closed = organisation.books_closed_through
    month = dt.date(2000, 1, 1) if closed is None else closed + dt.timedelta(days=1)
    return Call(params={"month": f"{month:%Y-%m}"}, headers=_idempotent())


async def _a_rate(world: World, actor: Person | None, target: Person) -> Call:
    return Call(json={"amount": "12.60", "basis": "The National Living Wage"})


async def _a_date_range(world: World, actor: Person | None, target: Person) -> Call:
    return Call(query={"from": today().isoformat(), "to": today().isoformat(), "format": "csv"})


ORG = "/api/v1/orgs/{org}"

# fmt: off
MATRIX: dict[tuple[str, str], Row] = {
    #                                                       anon self other staff coord o-co admin
    ("POST", "/api/v1/auth/token"):                    Row((200, 200, 200, 200, 200, 200, 200), _sign_in),
    ("DELETE", "/api/v1/auth/token"):                  Row((401, 204, 204, 204, 204, 204, 204), _nothing),
    ("GET", "/api/v1/me"):                             Row((401, 200, 200, 200, 200, 200, 200), _nothing),
    ("POST", "/api/v1/me/password"):                   Row((401, 204, 204, 204, 204, 204, 204), _same_password),
    ("POST", "/api/v1/orgs"):                          Row((401, 403, 403, 403, 403, 403, 201), _new_org),
    ("GET", ORG):                                      Row((401, 200, 200, 200, 200, 404, 404), _nothing),
    ("PATCH", ORG):                                    Row((401, 403, 403, 403, 200, 404, 404), _rename_org),
    ("POST", f"{ORG}/members"):                        Row((401, 403, 403, 201, 201, 404, 404), _new_member),
    ("GET", f"{ORG}/members"):                         Row((401, 403, 403, 200, 200, 404, 404), _nothing),
    ("GET", f"{ORG}/members/{{member_id}}"):           Row((401, 200, 403, 200, 200, 404, 404), _the_member),
    ("PATCH", f"{ORG}/members/{{member_id}}"):         Row((401, 403, 403, 200, 200, 404, 404), _edit_member),
    ("GET", f"{ORG}/members/{{member_id}}/export"):    Row((401, 403, 403, 403, 200, 404, 404), _the_member),
    ("DELETE", f"{ORG}/members/{{member_id}}/sign-in-lockout"):
                                                       Row((401, 403, 403, 403, 204, 404, 404), _the_member),
    ("POST", f"{ORG}/members/{{member_id}}/erasure"):  Row((401, 403, 403, 403, 200, 404, 404), _erase_a_member),
    ("GET", f"{ORG}/accounts"):                        Row((401, 403, 403, 200, 200, 404, 404), _nothing),
    ("GET", f"{ORG}/accounts/{{account_id}}"):         Row((401, 200, 403, 200, 200, 404, 404), _the_account),
    ("GET", f"{ORG}/accounts/{{account_id}}/statement"): Row((401, 200, 403, 200, 200, 404, 404), _the_account),
    ("POST", f"{ORG}/exchanges"):                      Row((401, 201, 403, 201, 201, 404, 404), _help_received),
    ("GET", f"{ORG}/exchanges"):                       Row((401, 200, 403, 200, 200, 404, 404), _exchanges_of),
    ("GET", f"{ORG}/exchanges/{{transaction_id}}"):    Row((401, 200, 403, 200, 200, 404, 404), _a_transaction),
    ("POST", f"{ORG}/exchanges/{{transaction_id}}/reversal"): Row((401, 403, 403, 403, 201, 404, 404), _reverse),
    # Only one's own entries: another member's is not found; staff, who see it, are refused.
    ("POST", f"{ORG}/exchanges/{{transaction_id}}/corrections"):
                                                       Row((401, 201, 404, 403, 403, 404, 404), _report_a_mistake),
    ("GET", f"{ORG}/exchanges/{{transaction_id}}/corrections"):
                                                       Row((401, 200, 404, 200, 200, 404, 404), _entry_corrections),
    ("GET", f"{ORG}/corrections"):                     Row((401, 403, 403, 200, 200, 404, 404), _nothing),
    ("POST", f"{ORG}/corrections/{{correction_id}}/answer"):
                                                       Row((401, 403, 403, 201, 201, 404, 404), _answer_a_request),
    ("GET", f"{ORG}/reports/monthly"):                 Row((401, 403, 403, 200, 200, 404, 404), _a_month),
    ("POST", f"{ORG}/periods/{{month}}/close"):        Row((401, 403, 403, 403, 201, 404, 404), _next_month),
    ("GET", f"{ORG}/hourly-rates"):                    Row((401, 403, 403, 200, 200, 404, 404), _nothing),
    ("POST", f"{ORG}/hourly-rates"):                   Row((401, 403, 403, 403, 201, 404, 404), _a_rate),
    ("GET", f"{ORG}/exports/ledger"):                  Row((401, 403, 403, 200, 200, 404, 404), _a_date_range),
    ("GET", f"{ORG}/history"):                         Row((401, 403, 403, 200, 200, 404, 404), _nothing),
}
# fmt: on


def api_operations(app: Litestar) -> set[tuple[str, str]]:
    """(method, path) of every API route the app serves, paths as OpenAPI writes them."""
    operations = set()
    for route in app.routes:
        if not isinstance(route, HTTPRoute) or not route.path.startswith("/api/"):
            continue
        path = re.sub(r"\{(\w+):[^}]+\}", r"{\1}", route.path)
        operations |= {(method, path) for method in route.methods if method not in {"OPTIONS", "HEAD"}}
    return operations


@pytest.fixture(scope="module")
async def world(db: Database) -> World:
    # A generous minimum balance: the cells post many small exchanges against the same members.
    home = await make_api_org(db, min_balance_minutes=-600 * 60)
    elsewhere = await make_api_org(db)
    return World(db, home, elsewhere, await add_site_admin(db))


async def send(client: httpx.AsyncClient, world: World, operation: tuple[str, str], role: str) -> httpx.Response:
    method, path = operation
    actor, target = world.actor(role), world.target(role)
    call = await MATRIX[operation].build(world, actor, target)
    headers = dict(call.headers)
    if actor is not None:
        headers["Authorization"] = f"Bearer {await world.fresh_token(actor)}"
    url = path.format(**{"org": world.home.slug, **call.params})
    return await client.request(method, url, json=call.json, headers=headers, params=call.query)


def test_every_api_operation_has_a_row(app: Litestar) -> None:
    served = api_operations(app)
    assert served - MATRIX.keys() == set(), "API operations with no row in MATRIX: add one"
    assert MATRIX.keys() - served == set(), "rows in MATRIX for operations the app no longer serves"


@pytest.mark.parametrize("metrics", [False, True], ids=["without-metrics", "with-metrics"])
def test_only_known_public_routes_live_outside_the_api(db: Database, metrics: bool) -> None:
    """Anything served outside /api/ is public or a page in tests/web/test_page_authorisation.py's
    PAGE_MATRIX; a new one must be placed deliberately."""
    app = make_app(db, **({"metrics_token": METRICS_TOKEN} if metrics else {}))
    pages = {path for _, path in PAGE_MATRIX}
    outside = {route.path for route in app.routes if not route.path.startswith("/api/")}
    unplaced = {path for path in outside - pages if not path.startswith(PUBLIC_OUTSIDE_API)}
    assert unplaced == set(), "routes outside /api/ that are not public: give them rows in an authorisation matrix"
    assert ("/metrics" in outside) is metrics


class TestMetricsToken:
    """No role's token opens /metrics: only TIMEBANK_METRICS_TOKEN does, and without it there is none."""

    async def test_only_the_metrics_token_opens_it(self, db: Database, world: World) -> None:
        async with client_for(make_app(db, metrics_token=METRICS_TOKEN)) as http:
            for role in ROLES:
                actor = world.actor(role)
                headers = {"Authorization": f"Bearer {await world.fresh_token(actor)}"} if actor else {}
                refused = await http.get("/metrics", headers=headers)
                assert refused.status_code == 401, (role, refused.text)
            scraped = await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert scraped.status_code == 200 and "timebank_database_up" in scraped.text

    async def test_without_the_setting_it_is_not_found(self, db: Database) -> None:
        async with client_for(make_app(db)) as http:
            missing = await http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
        assert missing.status_code == 404


def test_the_openapi_document_lists_the_same_operations(app: Litestar) -> None:
    paths = app.openapi_schema.to_schema()["paths"]
    documented = {
        (method.upper(), path)
        for path, item in paths.items()
        for method in item
        if path.startswith("/api/") and method in {"get", "post", "put", "patch", "delete"}
    }
    assert documented == MATRIX.keys()


@pytest.mark.parametrize("operation", list(MATRIX), ids=lambda op: f"{op[0]} {op[1]}")
async def test_each_caller_gets_the_status_in_the_matrix(
    client: httpx.AsyncClient, world: World, operation: tuple[str, str]
) -> None:
    answers = {role: await send(client, world, operation, role) for role in ROLES}
    actual = {role: r.status_code for role, r in answers.items()}
    assert actual == dict(zip(ROLES, MATRIX[operation].statuses, strict=True)), {
        role: r.text[:200] for role, r in answers.items() if r.status_code >= 400
    }
    for role, r in answers.items():
        if r.status_code >= 400:
            assert r.json()["status_code"] == r.status_code, (role, r.text)
            assert r.json()["detail"], (role, r.text)


async def _fresh_member(world: World, role: Role) -> int:
    new = await create_member(world.db, world.home.id, display_name=f"Fresh {role.value}", role=role, changed_by=None)
    assert new.member.id is not None
    return new.member.id


async def _promote_a_member(world: World, actor: Person | None, target: Person) -> Call:
    return Call(params={"member_id": await _fresh_member(world, Role.MEMBER)}, json={"role": "staff"})


async def _edit_a_coordinator(world: World, actor: Person | None, target: Person) -> Call:
    return Call(params={"member_id": await _fresh_member(world, Role.COORDINATOR)}, json={"display_name": "Renamed"})


async def _group_activity(world: World, actor: Person | None, target: Person) -> Call:
    home = world.home
    body = {
        "givers": [{"account_id": home.staff.account_id, "minutes": 2 * MINUTES}],
        "receivers": [
            {"account_id": home.member.account_id, "minutes": MINUTES},
            {"account_id": home.other_member.account_id, "minutes": MINUTES},
        ],
        "occurred_on": today().isoformat(),
        "description": "Group session",
    }
    return Call(json=body, headers=_idempotent())


async def _register_staff(world: World, actor: Person | None, target: Person) -> Call:
    return Call(json={"display_name": f"New staff {uuid.uuid4().hex[:6]}", "role": "staff"})


async def _register_coordinator(world: World, actor: Person | None, target: Person) -> Call:
    return Call(json={"display_name": f"New coordinator {uuid.uuid4().hex[:6]}", "role": "coordinator"})


# The rules inside one operation that the matrix above cannot show: roles are given and changed
# only by coordinators, staff may not edit those above them, and group activities are for staff.
# fmt: off
FINER_RULES: dict[str, tuple[tuple[str, str], tuple[int, int, int], Build]] = {
    #                                                                        member staff coord
    "register a staff member":     (("POST", f"{ORG}/members"),                (403, 403, 201), _register_staff),
    "register a coordinator":      (("POST", f"{ORG}/members"),                (403, 403, 201), _register_coordinator),
    "promote a member to staff":   (("PATCH", f"{ORG}/members/{{member_id}}"), (403, 403, 200), _promote_a_member),
    "edit a coordinator's record": (("PATCH", f"{ORG}/members/{{member_id}}"), (403, 403, 200), _edit_a_coordinator),
    "log a group activity":        (("POST", f"{ORG}/exchanges"),              (403, 201, 201), _group_activity),
}
# fmt: on


@pytest.mark.parametrize("rule", list(FINER_RULES))
async def test_finer_rules_within_an_operation(client: httpx.AsyncClient, world: World, rule: str) -> None:
    (method, path), statuses, build = FINER_RULES[rule]
    actual = {}
    for role in ("member_self", "staff", "coordinator"):
        actor = world.actor(role)
        assert actor is not None
        call = await build(world, actor, world.target(role))
        headers = {**call.headers, "Authorization": f"Bearer {await world.fresh_token(actor)}"}
        url = path.format(**{"org": world.home.slug, **call.params})
        actual[role] = (await client.request(method, url, json=call.json, headers=headers)).status_code
    assert actual == dict(zip(("member_self", "staff", "coordinator"), statuses, strict=True))


class TestAnotherOrganisationsIdsThroughOnesOwnPath:
    """A coordinator who names this organisation's ids under their own organisation finds nothing."""

    @pytest.mark.parametrize(
        "operation",
        [op for op in MATRIX if op[1].startswith(ORG) and "_id}" in op[1][len(ORG) :]],
        ids=lambda op: f"{op[0]} {op[1]}",
    )
    async def test_is_not_found(self, client: httpx.AsyncClient, world: World, operation: tuple[str, str]) -> None:
        method, path = operation
        call = await MATRIX[operation].build(world, world.other_coordinator, world.home.member)
        # A fresh token: changing a password (one matrix row) ends the others.
        headers = {**call.headers, "Authorization": f"Bearer {await world.fresh_token(world.other_coordinator)}"}
        url = path.format(**{**call.params, "org": world.elsewhere.slug})
        r = await client.request(method, url, json=call.json, headers=headers, params=call.query)
        assert r.status_code == 404, r.text

    async def test_an_exchange_between_its_accounts_is_refused(self, client: httpx.AsyncClient, world: World) -> None:
        call = await _help_received(world, world.other_coordinator, world.home.member)
        r = await client.post(
            world.elsewhere.url("/exchanges"),
            json=call.json,
            headers={**call.headers, "Authorization": f"Bearer {await world.fresh_token(world.other_coordinator)}"},
        )
        assert r.status_code == 400, r.text
        assert "no account" in r.json()["detail"]
