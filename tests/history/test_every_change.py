"""Every operation that changes people or settings writes exactly one history row, through
the API and through the pages alike (DESIGN.md, "Trust: history and corrections").

The write routes are read from the app, as the authorisation matrices do: each must be in
``CHANGES`` (with a case that performs it and the kind of row it must write) or in
``NOT_CHANGES`` with the reason. A new write route in neither fails
``test_every_write_route_is_placed``.
"""

import datetime as dt
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from sqlalchemy import select

from tests.api.conftest import ApiOrg, Person, add_site_admin, client_for, make_api_org
from tests.conftest import new_key, today
from tests.web.support import Browser, signed_in
from timebank import ledger
from timebank.auth.rate_limit import record_failure
from timebank.db import Database
from timebank.history.service import ChangeKind
from timebank.members.service import create_member
from timebank.models import Change, Organisation
from timebank.orgs.service import get_organisation_details, list_categories
from timebank.reports.service import add_months, month_label

changes = Change.__table__
WRITE_METHODS = {"POST", "PATCH", "PUT", "DELETE"}
ORG_API = "/api/v1/orgs/{org}"
ORG_PAGES = "/orgs/{org}"


@dataclass
class Scene:
    """A fresh organisation, an API client and a coordinator's browser."""

    db: Database
    org: ApiOrg
    api: httpx.AsyncClient
    page: Browser

    def api_url(self, path: str = "") -> str:
        return self.org.url(path)

    def page_url(self, path: str) -> str:
        return f"/orgs/{self.org.slug}{path}"

    async def member_without_sign_in(self) -> tuple[int, str]:
        name = f"Offline {uuid.uuid4().hex[:6]}"
        new = await create_member(self.db, self.org.id, display_name=name, changed_by=None)
        assert new.member.id is not None
        return new.member.id, name

    async def an_exchange(self) -> int:
        posted = await ledger.post_exchange(
            self.db,
            self.org.id,
            giver_account_id=self.org.staff.account_id,
            receiver_account_id=self.org.member.account_id,
            minutes=30,
            occurred_on=today(),
            description="Gardening",
            recorded_by=self.org.staff.user_id,
            idempotency_key=new_key(),
        )
        return posted.id

    async def categories(self) -> list[str]:
        return (await get_organisation_details(self.db, self.org.id)).categories


def last_month() -> str:
    return month_label(add_months(today().replace(day=1), -1))


Perform = Callable[[Scene], Awaitable[httpx.Response]]


@dataclass(frozen=True)
class Case:
    kind: ChangeKind
    perform: Perform
    status: int  # what a success answers


def _coordinator(scene: Scene) -> dict[str, str]:
    return scene.org.coordinator.headers


async def _register_api(s: Scene) -> httpx.Response:
    return await s.api.post(s.api_url("/members"), json={"display_name": "New Person"}, headers=_coordinator(s))


async def _edit_api(s: Scene) -> httpx.Response:
    url = s.api_url(f"/members/{s.org.member.member_id}")
    return await s.api.patch(url, json={"email": "new@example.org"}, headers=_coordinator(s))


async def _role_api(s: Scene) -> httpx.Response:
    url = s.api_url(f"/members/{s.org.member.member_id}")
    return await s.api.patch(url, json={"role": "staff"}, headers=_coordinator(s))


async def _deactivate_api(s: Scene) -> httpx.Response:
    url = s.api_url(f"/members/{s.org.member.member_id}")
    return await s.api.patch(url, json={"is_active": False}, headers=_coordinator(s))


async def _reactivate_api(s: Scene) -> httpx.Response:
    url = s.api_url(f"/members/{s.org.member.member_id}")
    await s.api.patch(url, json={"is_active": False}, headers=_coordinator(s))
    return await s.api.patch(url, json={"is_active": True}, headers=_coordinator(s))


async def _erase_api(s: Scene) -> httpx.Response:
    member_id, name = await s.member_without_sign_in()
    url = s.api_url(f"/members/{member_id}/erasure")
    return await s.api.post(url, json={"confirm_display_name": name}, headers=_coordinator(s))


async def _settings_api(s: Scene) -> httpx.Response:
    return await s.api.patch(s.api_url(), json={"name": "Renamed centre"}, headers=_coordinator(s))


async def _category_added_api(s: Scene) -> httpx.Response:
    body = {"categories": [*await s.categories(), "Knitting"]}
    return await s.api.patch(s.api_url(), json=body, headers=_coordinator(s))


async def _category_renamed_api(s: Scene) -> httpx.Response:
    first, *rest = await s.categories()
    return await s.api.patch(s.api_url(), json={"categories": [first.upper(), *rest]}, headers=_coordinator(s))


async def _category_retired_api(s: Scene) -> httpx.Response:
    _, *rest = await s.categories()
    return await s.api.patch(s.api_url(), json={"categories": rest}, headers=_coordinator(s))


async def _rate_api(s: Scene) -> httpx.Response:
    body = {"amount": "12.60", "basis": "The National Living Wage"}
    return await s.api.post(s.api_url("/hourly-rates"), json=body, headers=_coordinator(s))


async def _reverse_api(s: Scene) -> httpx.Response:
    url = s.api_url(f"/exchanges/{await s.an_exchange()}/reversal")
    return await s.api.post(url, json={"reason": "Logged twice"}, headers=s.org.coordinator.posting())


async def _close_api(s: Scene) -> httpx.Response:
    url = s.api_url(f"/periods/{last_month()}/close")
    return await s.api.post(url, headers=s.org.coordinator.posting())


async def _create_org_api(s: Scene) -> httpx.Response:
    admin: Person = await add_site_admin(s.db)
    slug = f"hist-{uuid.uuid4().hex[:8]}"
    body = {
        "slug": slug,
        "name": "History centre",
        "first_coordinator": {"display_name": "First Coordinator", "username": slug, "password": "a long password 123"},
    }
    return await s.api.post("/api/v1/orgs", json=body, headers=admin.headers)


async def _register_page(s: Scene) -> httpx.Response:
    form = {"display_name": "Paged Person", "email": "", "joined_on": "", "username": "", "password": ""}
    return await s.page.post(s.page_url("/members/new"), form)


async def _edit_page(s: Scene) -> httpx.Response:
    form = {"display_name": "Renamed Member", "email": ""}
    return await s.page.post(s.page_url(f"/members/{s.org.member.member_id}/edit"), form)


async def _deactivate_page(s: Scene) -> httpx.Response:
    return await s.page.post(s.page_url(f"/members/{s.org.member.member_id}/deactivate"))


async def _reactivate_page(s: Scene) -> httpx.Response:
    await s.page.post(s.page_url(f"/members/{s.org.member.member_id}/deactivate"))
    return await s.page.post(s.page_url(f"/members/{s.org.member.member_id}/reactivate"))


async def _sign_in_page(s: Scene) -> httpx.Response:
    member_id, _ = await s.member_without_sign_in()
    form = {"username": f"offline-{uuid.uuid4().hex[:8]}", "password": "kfmt-wrpz-hnqa"}
    return await s.page.post(s.page_url(f"/members/{member_id}/sign-in"), form)


async def _password_page(s: Scene) -> httpx.Response:
    form = {"password": "kfmt-wrpz-hnqa"}
    return await s.page.post(s.page_url(f"/members/{s.org.member.member_id}/password"), form)


async def _close_page(s: Scene) -> httpx.Response:
    return await s.page.post(s.page_url("/reports/close"), {"month": last_month(), "idempotency_key": new_key()})


async def _locked_out(s: Scene) -> None:
    await record_failure(s.db, s.org.member.username, "10.1.2.3", window=dt.timedelta(minutes=15))


async def _lockout_api(s: Scene) -> httpx.Response:
    await _locked_out(s)
    url = s.api_url(f"/members/{s.org.member.member_id}/sign-in-lockout")
    return await s.api.delete(url, headers=_coordinator(s))


async def _lockout_page(s: Scene) -> httpx.Response:
    await _locked_out(s)
    return await s.page.post(s.page_url(f"/access/{s.org.member.member_id}/lockout"))


async def _role_page(s: Scene) -> httpx.Response:
    return await s.page.post(s.page_url(f"/access/{s.org.member.member_id}/role"), {"role": "staff"})


async def _access_deactivate_page(s: Scene) -> httpx.Response:
    return await s.page.post(s.page_url(f"/access/{s.org.member.member_id}/active"), {"active": "no"})


async def _reverse_page(s: Scene) -> httpx.Response:
    form = {"reason": "Logged twice", "idempotency_key": new_key()}
    return await s.page.post(s.page_url(f"/exchanges/{await s.an_exchange()}/reverse"), form)


def _setting_page(change: str, **form: str) -> Perform:
    async def perform(s: Scene) -> httpx.Response:
        fields = dict(form)
        if "category" in fields:  # by name here; the page takes the category's id
            [category] = [c for c in await list_categories(s.db, s.org.id) if c.name == fields["category"]]
            fields["category"] = str(category.id)
        return await s.page.post(s.page_url(f"/settings/{change}"), {**fields, "confirmed": "yes"})

    return perform


async def _restore_page(s: Scene) -> httpx.Response:
    await _setting_page("retire-category", category="Gardening")(s)
    return await _setting_page("restore-category", category="Gardening")(s)


def _route(method: str, prefix: str, path: str) -> tuple[str, str]:
    return method, prefix + path


# Every write route that changes people or settings, with each thing it can change.
CHANGES: dict[tuple[str, str], list[Case]] = {
    ("POST", "/api/v1/orgs"): [Case(ChangeKind.MEMBER_REGISTERED, _create_org_api, 201)],
    _route("PATCH", ORG_API, ""): [
        Case(ChangeKind.SETTINGS_CHANGED, _settings_api, 200),
        Case(ChangeKind.CATEGORY_ADDED, _category_added_api, 200),
        Case(ChangeKind.CATEGORY_RENAMED, _category_renamed_api, 200),
        Case(ChangeKind.CATEGORY_RETIRED, _category_retired_api, 200),
    ],
    _route("POST", ORG_API, "/members"): [Case(ChangeKind.MEMBER_REGISTERED, _register_api, 201)],
    _route("PATCH", ORG_API, "/members/{member_id}"): [
        Case(ChangeKind.DETAILS_EDITED, _edit_api, 200),
        Case(ChangeKind.ROLE_CHANGED, _role_api, 200),
        Case(ChangeKind.DEACTIVATED, _deactivate_api, 200),
        Case(ChangeKind.REACTIVATED, _reactivate_api, 200),
    ],
    _route("POST", ORG_API, "/members/{member_id}/erasure"): [Case(ChangeKind.MEMBER_ERASED, _erase_api, 200)],
    _route("POST", ORG_API, "/exchanges/{transaction_id}/reversal"): [
        Case(ChangeKind.TRANSACTION_REVERSED, _reverse_api, 201)
    ],
    _route("POST", ORG_API, "/periods/{month}/close"): [Case(ChangeKind.MONTH_CLOSED, _close_api, 201)],
    _route("POST", ORG_API, "/hourly-rates"): [Case(ChangeKind.HOURLY_RATE_CHANGED, _rate_api, 201)],
    _route("POST", ORG_PAGES, "/members/new"): [Case(ChangeKind.MEMBER_REGISTERED, _register_page, 303)],
    _route("POST", ORG_PAGES, "/members/{member_id}/edit"): [Case(ChangeKind.DETAILS_EDITED, _edit_page, 303)],
    _route("POST", ORG_PAGES, "/members/{member_id}/deactivate"): [Case(ChangeKind.DEACTIVATED, _deactivate_page, 303)],
    _route("POST", ORG_PAGES, "/members/{member_id}/reactivate"): [Case(ChangeKind.REACTIVATED, _reactivate_page, 303)],
    _route("POST", ORG_PAGES, "/members/{member_id}/sign-in"): [Case(ChangeKind.SIGN_IN_GIVEN, _sign_in_page, 303)],
    _route("POST", ORG_PAGES, "/members/{member_id}/password"): [Case(ChangeKind.PASSWORD_RESET, _password_page, 303)],
    _route("POST", ORG_PAGES, "/reports/close"): [Case(ChangeKind.MONTH_CLOSED, _close_page, 303)],
    _route("DELETE", ORG_API, "/members/{member_id}/sign-in-lockout"): [
        Case(ChangeKind.LOCKOUT_CLEARED, _lockout_api, 204)
    ],
    _route("POST", ORG_PAGES, "/access/{member_id}/lockout"): [Case(ChangeKind.LOCKOUT_CLEARED, _lockout_page, 303)],
    _route("POST", ORG_PAGES, "/access/{member_id}/role"): [Case(ChangeKind.ROLE_CHANGED, _role_page, 303)],
    _route("POST", ORG_PAGES, "/access/{member_id}/active"): [
        Case(ChangeKind.DEACTIVATED, _access_deactivate_page, 303)
    ],
    _route("POST", ORG_PAGES, "/exchanges/{transaction_id}/reverse"): [
        Case(ChangeKind.TRANSACTION_REVERSED, _reverse_page, 303)
    ],
    _route("POST", ORG_PAGES, "/settings/{change}"): [
        Case(ChangeKind.SETTINGS_CHANGED, _setting_page("name", value="A new name"), 303),
        Case(ChangeKind.SETTINGS_CHANGED, _setting_page("minimum-balance", value="5"), 303),
        Case(ChangeKind.HOURLY_RATE_CHANGED, _setting_page("hourly-value", value="12.60", basis="The wage"), 303),
        Case(ChangeKind.CATEGORY_ADDED, _setting_page("add-category", value="Knitting"), 303),
        Case(ChangeKind.CATEGORY_RENAMED, _setting_page("rename-category", category="Gardening", value="Garden"), 303),
        Case(ChangeKind.CATEGORY_RETIRED, _setting_page("retire-category", category="Gardening"), 303),
        Case(ChangeKind.CATEGORY_RESTORED, _restore_page, 303),
    ],
}

SIGNING_IN = "signing in and out opens and ends sessions; it changes no person or setting"
LEDGER = "a ledger posting: the ledger is its own append-only record of who recorded what, and when"
FORM_STEP = "a step of a form that shows a check page; nothing is written"
CORRECTIONS = (
    "a correction request or its answer: its own append-only record of who asked or answered, when and what "
    "(timebank/corrections); it changes no person, setting or entry"
)
OWN_PASSWORD = (
    "a person changing their own password: the login is global, not one organisation's, and the "
    "history records what others change about people"
)
NOT_CHANGES: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/auth/token"): SIGNING_IN,
    ("DELETE", "/api/v1/auth/token"): SIGNING_IN,
    ("POST", "/sign-in"): SIGNING_IN,
    ("POST", "/sign-out"): SIGNING_IN,
    ("POST", "/keep-alive"): "keeps a browser session alive; changes no person or setting",
    ("POST", "/api/v1/me/password"): OWN_PASSWORD,
    ("POST", "/change-password"): OWN_PASSWORD,
    _route("POST", ORG_API, "/exchanges"): LEDGER,
    _route("POST", ORG_PAGES, "/exchanges/new"): LEDGER,
    _route("POST", ORG_PAGES, "/group-activities/confirm"): LEDGER,
    _route("POST", ORG_PAGES, "/record-help/confirm"): LEDGER,
    _route("POST", ORG_PAGES, "/group-activities/new"): FORM_STEP,
    _route("POST", ORG_PAGES, "/record-help"): FORM_STEP,
    _route("POST", ORG_API, "/exchanges/{transaction_id}/corrections"): CORRECTIONS,
    _route("POST", ORG_API, "/corrections/{correction_id}/answer"): CORRECTIONS,
    _route("POST", ORG_PAGES, "/statement/entries/{transaction_id}/report"): CORRECTIONS,
    _route("POST", ORG_PAGES, "/corrections/{correction_id}/answer"): CORRECTIONS,
}


def write_routes(app: Litestar) -> set[tuple[str, str]]:
    found = set()
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            path = re.sub(r"\{(\w+):[^}]+\}", r"{\1}", route.path)
            found |= {(method, path) for method in route.methods & WRITE_METHODS}
    return found


def test_every_write_route_is_placed(app: Litestar) -> None:
    served = write_routes(app)
    assert CHANGES.keys().isdisjoint(NOT_CHANGES), "a route cannot both change and not change"
    assert served - CHANGES.keys() - NOT_CHANGES.keys() == set(), (
        "write routes in neither CHANGES nor NOT_CHANGES: if it changes people or settings, record the change "
        "in its service (timebank.history.service.record_change) and add a case; if not, say why"
    )
    assert (CHANGES.keys() | NOT_CHANGES.keys()) - served == set(), "rows for routes the app no longer serves"


def test_every_kind_has_a_case() -> None:
    covered = {case.kind for cases in CHANGES.values() for case in cases}
    assert set(ChangeKind) - covered == set()


async def _rows(db: Database, organisation_id: int) -> list[tuple[int, str]]:
    async with db.autocommit() as conn:
        result = await conn.execute(
            select(changes.c.id, changes.c.kind)
            .where(changes.c.organisation_id == organisation_id)
            .order_by(changes.c.id)
        )
        return [(row.id, row.kind) for row in result]


async def _organisation_id(db: Database, slug: str) -> int:
    async with db.autocommit() as conn:
        found = await conn.scalar(select(Organisation.__table__.c.id).where(Organisation.__table__.c.slug == slug))
    assert found is not None
    return found


CASES = [(route, case) for route, cases in CHANGES.items() for case in cases]


@pytest.mark.parametrize(("route", "case"), CASES, ids=[f"{m} {p} {c.kind.value}" for (m, p), c in CASES])
async def test_each_change_writes_exactly_one_row(
    db: Database, app: Litestar, route: tuple[str, str], case: Case
) -> None:
    org = await make_api_org(db)
    async with client_for(app) as api:
        page = await signed_in(app, db, org.coordinator)
        try:
            scene = Scene(db, org, api, page)
            before = await _rows(db, org.id)
            answer = await case.perform(scene)
        finally:
            await page.aclose()
    assert answer.status_code == case.status, answer.text
    if route == ("POST", "/api/v1/orgs"):
        rows = await _rows(db, await _organisation_id(db, answer.json()["slug"]))
        assert [kind for _, kind in rows] == [case.kind.value]
        return
    new = [kind for row_id, kind in await _rows(db, org.id) if row_id not in dict(before)]
    # What a case does first to have something to change (deactivate before reactivating...).
    preparation = {
        ChangeKind.REACTIVATED: [ChangeKind.DEACTIVATED.value],
        ChangeKind.MEMBER_ERASED: [ChangeKind.MEMBER_REGISTERED.value],
        ChangeKind.SIGN_IN_GIVEN: [ChangeKind.MEMBER_REGISTERED.value],
        ChangeKind.CATEGORY_RESTORED: [ChangeKind.CATEGORY_RETIRED.value],
    }.get(case.kind, [])
    assert new == [*preparation, case.kind.value]


async def test_a_restored_category_writes_one_row(db: Database, app: Litestar) -> None:
    org = await make_api_org(db)
    async with client_for(app) as api:
        names = (await api.get(org.url(), headers=org.coordinator.headers)).json()["categories"]
        await api.patch(org.url(), json={"categories": names[1:]}, headers=org.coordinator.headers)
        before = await _rows(db, org.id)
        answer = await api.patch(org.url(), json={"categories": names}, headers=org.coordinator.headers)
    assert answer.status_code == 200
    assert [kind for row_id, kind in await _rows(db, org.id) if row_id not in dict(before)] == ["category_restored"]
