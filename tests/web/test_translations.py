"""Every text a person reads on the pages goes through gettext, and the catalogue holds them all.

The pseudo-locale test renders every page with a language that wraps each
translated text (and each Babel-formatted date and number) in ⟦ ⟧; whatever is
left outside the brackets must be data (names), digits or punctuation. A text
typed straight into a template or a handler fails it.
"""

import datetime as dt
import gettext
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from litestar import Litestar

from tests.api.conftest import PASSWORD, ApiOrg, make_api_org
from tests.api.conftest import test_settings as settings_for_tests
from tests.web.support import Browser, browser, signed_in, visible_text
from tests.web.test_page_authorisation import PAGE_MATRIX
from timebank.app import create_app
from timebank.db import Database
from timebank.orgs.service import DEFAULT_CATEGORIES
from timebank.web.i18n import TRANSLATIONS_DIR, PageLocale, load_locale

ROOT = Path(__file__).parents[2]
OPEN, CLOSE = "⟦", "⟧"


class PseudoTranslations(gettext.NullTranslations):
    def gettext(self, message: str) -> str:
        return f"{OPEN}{message}{CLOSE}"

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return f"{OPEN}{singular if n == 1 else plural}{CLOSE}"


@dataclass(frozen=True)
class PseudoLocale(PageLocale):
    def format_date(self, value):  # type: ignore[no-untyped-def]
        return f"{OPEN}{super().format_date(value)}{CLOSE}"

    def format_month(self, value):  # type: ignore[no-untyped-def]
        return f"{OPEN}{super().format_month(value)}{CLOSE}"

    def format_number(self, value: int) -> str:
        return f"{OPEN}{super().format_number(value)}{CLOSE}"


def untranslated(html: str, data: set[str]) -> str:
    """What is visible on the page but came from no translation (data and punctuation removed)."""
    text = visible_text(html)
    inner = re.compile(f"{OPEN}[^{OPEN}{CLOSE}]*{CLOSE}")
    while inner.search(text):
        text = inner.sub(" ", text)
    for value in sorted(data, key=len, reverse=True):
        text = text.replace(value, " ")
    return re.sub(r"[\s\d.,:;!?()\u2013\u2014-]+", " ", text).strip()


def test_the_catalogue_holds_every_text_of_the_templates_and_code() -> None:
    method_map = [("timebank/web/**.py", "python"), ("timebank/web/templates/**.html", "jinja2")]
    options = {"timebank/web/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    found = set()
    for _, _, message, _, _ in extract_from_dir(str(ROOT), method_map, options):
        found.add(message if isinstance(message, str) else message[0])
    with (TRANSLATIONS_DIR / "en_GB" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalogue = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(po) if m.id}
    assert found - catalogue == set(), "texts missing from messages.po: run scripts/translations"
    assert catalogue - found == set(), "texts in messages.po that nothing uses: run scripts/translations"


# What a member and staff write in "Report a mistake" and its answer: data, not for translation.
REPORTED = "I was not there"
ANSWERED = "We have checked it"


@pytest.fixture(scope="module")
def pseudo_app(db: Database) -> Litestar:
    english = load_locale()
    app = create_app(settings_for_tests(), database=db, language=PseudoLocale(PseudoTranslations(), english.locale))
    app.state.db = db
    return app


@pytest.fixture(scope="module")
async def pseudo_org(db: Database) -> ApiOrg:
    return await make_api_org(db)


async def pages_of(app: Litestar, db: Database, org: ApiOrg) -> dict[str, str]:
    """Every GET page for each kind of person, and the pages that only a mistake shows."""
    rendered = {}
    for who, person in [
        ("anonymous", None),
        ("member", org.member),
        ("staff", org.staff),
        ("coordinator", org.coordinator),
    ]:
        for method, path in PAGE_MATRIX:
            if method != "GET":
                continue
            page: Browser = await signed_in(app, db, person)
            url = re.sub(r"\{org:str\}", org.slug, path).replace("{member_id:int}", str(org.other_member.member_id))
            answer = await page.get(url)
            # Pages only: the people lookup answers JSON (names, which are data), a CSV's column names are
            # not for translation.
            if answer.status_code == 200 and answer.headers["content-type"].startswith("text/html"):
                rendered[f"{who} {url}"] = answer.text
    anonymous = browser(app)
    rendered["wrong password"] = (await anonymous.post("/sign-in", {"username": "x", "password": "y"})).text
    rendered["signed out"] = (await anonymous.get("/?notice=signed_out")).text
    rendered["not found"] = (await anonymous.get("/no/such/page")).text
    rendered["expired form"] = (await anonymous.http.post("/sign-in", data={"username": "x"})).text
    member = await signed_in(app, db, org.member)
    short = await member.post("/change-password", {"current_password": PASSWORD, "new_password": "x"})
    rendered["short password"] = short.text
    refused = await member.post(f"/orgs/{org.slug}/record-help", {"giver": "Nobody at all", "minutes": "75"})
    rendered["record help refused"] = refused.text
    choose = await member.post(f"/orgs/{org.slug}/record-help", {"giver": "member", "hours": "1"})
    rendered["record help choose"] = choose.text
    staff = await signed_in(app, db, org.staff)
    exchanges = f"/orgs/{org.slug}/exchanges/new"
    rendered["log exchange refused"] = (await staff.post(exchanges, {"giver": "Nobody at all", "minutes": "75"})).text
    rendered["log exchange choose"] = (await staff.post(exchanges, {"giver": "member", "hours": "1"})).text
    today = dt.date.today() - dt.timedelta(days=1)
    logged = await staff.post(
        exchanges,
        {
            "idempotency_key": f"pseudo-{org.slug}",
            "giver": "Member Other",
            "receiver": "Member Self",
            "hours": "1",
            "occurred_on-day": str(today.day),
            "occurred_on-month": str(today.month),
            "occurred_on-year": str(today.year),
            "category": "Gardening",
            "description": "Dug the beds",
        },
    )
    assert logged.status_code == 303, logged.text
    rendered["exchange logged"] = (await staff.get(logged.headers["location"])).text
    entry = logged.headers["location"].removesuffix("/logged")
    groups = f"/orgs/{org.slug}/group-activities/new"
    rendered["group refused"] = (
        await staff.post(groups, {"receiver-0": "Nobody at all", "receiver-0-hours": "x"})
    ).text
    group = {
        "giver-0": "Member Other",
        "giver-0-hours": "2",
        "receiver-0": "Member Self",
        "receiver-0-hours": "1",
        "occurred_on-day": str(today.day),
        "occurred_on-month": str(today.month),
        "occurred_on-year": str(today.year),
        "category": "Gardening",
        "description": "Dug the beds",
    }
    rendered["group check"] = (await staff.post(groups, group)).text
    rendered["group totals differ"] = (
        await staff.post(f"/orgs/{org.slug}/group-activities/confirm", {**group, "idempotency_key": "g-" + org.slug})
    ).text
    logged = await staff.post(
        f"/orgs/{org.slug}/group-activities/confirm",
        {**group, "giver-0-hours": "1", "idempotency_key": "g2-" + org.slug},
    )
    assert logged.status_code == 303, logged.text
    rendered["group logged"] = (await staff.get(logged.headers["location"])).text
    rendered["member with entries"] = (await staff.get(f"/orgs/{org.slug}/members/{org.member.member_id}")).text
    group_id = int(logged.headers["location"].split("/")[-2])
    rendered.update(await correction_pages(app, db, org, member, staff, entry=group_id))
    rendered.update(await coordinator_pages(app, db, org, entry))
    return rendered


async def correction_pages(
    app: Litestar, db: Database, org: ApiOrg, member: Browser, staff: Browser, *, entry: int
) -> dict[str, str]:
    """ "Report a mistake" in each of its states, and "Corrections" before and after an answer."""
    rendered = {}
    report = f"/orgs/{org.slug}/statement/entries/{entry}/report"
    rendered["report a mistake"] = (await member.get(report)).text
    rendered["report a mistake refused"] = (await member.post(report, {"what_it_should_be": REPORTED})).text
    sent = await member.post(report, {"idempotency_key": f"r-{org.slug}", "what_is_wrong": REPORTED})
    assert sent.status_code == 303, sent.text
    rendered["report sent"] = (await member.get(sent.headers["location"])).text
    rendered["statement, message received"] = (await member.get(f"/orgs/{org.slug}/statement")).text
    coordinator = await signed_in(app, db, org.coordinator)
    page = await coordinator.get(f"/orgs/{org.slug}/corrections")
    rendered["corrections waiting, coordinator"] = page.text
    [correction_id] = re.findall(r"/corrections/(\d+)/answer", page.text)
    answer = f"/orgs/{org.slug}/corrections/{correction_id}/answer"
    rendered["corrections refused"] = (await staff.post(answer, {"answer": ""})).text
    answered = await staff.post(answer, {"idempotency_key": f"a-{org.slug}", "answer": ANSWERED})
    assert answered.status_code == 303, answered.text
    rendered["corrections answered"] = (await staff.get(answered.headers["location"])).text
    rendered["statement, answered"] = (await member.get(f"/orgs/{org.slug}/statement")).text
    return rendered


async def coordinator_pages(app: Litestar, db: Database, org: ApiOrg, entry: str) -> dict[str, str]:
    """A transaction, its reversal, the settings and access pages, as a coordinator sees them."""
    coordinator = await signed_in(app, db, org.coordinator)
    rendered = {
        "entry": (await coordinator.get(entry)).text,
        "reverse": (await coordinator.get(entry + "/reverse")).text,
    }
    rendered["reverse refused"] = (
        await coordinator.post(entry + "/reverse", {"idempotency_key": "r-" + org.slug})
    ).text
    reversed_ = await coordinator.post(
        entry + "/reverse", {"idempotency_key": "r-" + org.slug, "reason": "Dug the beds"}
    )
    assert reversed_.status_code == 303, reversed_.text
    rendered["reversal"] = (await coordinator.get(reversed_.headers["location"])).text
    rendered["reversed entry"] = (await coordinator.get(entry)).text
    settings = f"/orgs/{org.slug}/settings"
    for change in ("name", "timezone", "minimum-balance", "hourly-value", "add-category"):
        rendered[f"settings {change}"] = (await coordinator.get(f"{settings}/{change}")).text
        rendered[f"settings {change} refused"] = (await coordinator.post(f"{settings}/{change}", {"value": ""})).text
    checks = {
        "name": {"value": "Dug the beds"},
        "timezone": {"value": "Pacific/Kiritimati"},
        "minimum-balance": {"value": "0"},
        "hourly-value": {"value": "12.60", "basis": "Dug the beds"},
        "add-category": {"value": "Dug the beds"},
    }
    for change, form in checks.items():
        rendered[f"settings {change} check"] = (await coordinator.post(f"{settings}/{change}", form)).text
    rendered["access"] = (await coordinator.get(f"/orgs/{org.slug}/access")).text
    person = f"/orgs/{org.slug}/access/{org.coordinator.member_id}"
    rendered["access person"] = (await coordinator.get(person)).text
    rendered["last coordinator"] = (await coordinator.post(person + "/role", {"role": "staff"})).text
    return rendered


async def test_every_page_shows_only_translated_text(pseudo_app: Litestar, db: Database, pseudo_org: ApiOrg) -> None:
    # Names are data: the organisation's, its people's and its categories'.
    data = {
        f"Test centre {pseudo_org.slug}",
        "Member Self",
        "Member Other",
        pseudo_org.other_member.username,
        pseudo_org.member.username,
        pseudo_org.staff.username,
        pseudo_org.coordinator.username,
        "Europe/London",
        "Pacific/Kiritimati",
        "Dug the beds",
        REPORTED,
        ANSWERED,
        *DEFAULT_CATEGORIES,
    } | {p.display_name for p in (pseudo_org.coordinator, pseudo_org.staff, pseudo_org.member)}
    pages = await pages_of(pseudo_app, db, pseudo_org)
    assert len(pages) >= 10, sorted(pages)
    leftovers = {name: untranslated(html, data) for name, html in pages.items()}
    assert {name: text for name, text in leftovers.items() if text} == {}
