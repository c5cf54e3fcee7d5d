"""The report pages: the figures the page shows are the API's, its CSV is the API's, and closing a month
through the confirmation page is the API's close."""

import datetime as dt
import re
import uuid
from html.parser import HTMLParser
from xml.etree import ElementTree

import pytest

from tests.api.conftest import ApiOrg, Person, add_person, make_api_org
from tests.conftest import today
from tests.reports.support import KnownOrg, build_known_org
from tests.web.support import signed_in
from timebank import ledger
from timebank.db import Database
from timebank.models import Role
from timebank.reports.service import add_months, month_label
from timebank.security import CHART_CSP
from timebank.web.formatting import hours_in_words
from timebank.web.i18n import load_locale


class Tables(HTMLParser):
    """Every table of a page as rows of cell texts, and every summary list as (term, value) pairs."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[str]]] = []
        self.pairs: dict[str, str] = {}  # the first value of each term
        self.values: list[str] = []
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._term: str | None = None
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th", "dt", "dd"):
            self._cell, self._in = [], tag

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.tables[-1].append(self._row)
            self._row = None
        elif tag in ("dt", "dd") and self._cell is not None:
            text = " ".join("".join(self._cell).split())
            if tag == "dt":
                self._term = text
            elif self._term is not None:
                self.pairs.setdefault(self._term, text)
                self.values.append(text)
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def read_page(html: str) -> Tables:
    parser = Tables()
    parser.feed(html)
    return parser


def table_starting(tables: Tables, first_header: str, second_header: str) -> list[list[str]]:
    for table in tables.tables:
        if table and table[0][:2] == [first_header, second_header]:
            return table[1:]
    raise AssertionError(f"no table headed {first_header}, {second_header}")


@pytest.fixture(scope="module")
async def known(db: Database) -> KnownOrg:
    return await build_known_org(db)


@pytest.fixture(scope="module")
async def known_staff(db: Database, known: KnownOrg) -> Person:
    return await add_person(db, known.org, Role.STAFF)


def report_url(slug: str, path: str = "") -> str:
    return f"/orgs/{slug}/reports{path}"


class TestTheReportPage:
    async def test_shows_exactly_the_figures_of_the_api(self, app, client, db, known, known_staff) -> None:
        month = month_label(known.m)
        api = await client.get(
            f"/api/v1/orgs/{known.org.slug}/reports/monthly", params={"month": month}, headers=known_staff.headers
        )
        assert api.status_code == 200, api.text
        expected = api.json()
        page = await signed_in(app, db, known_staff)
        answer = await page.get(report_url(known.org.slug, f"?month={month}"))
        assert answer.status_code == 200, answer.text
        seen = read_page(answer.text)
        language = load_locale()

        assert [row for row in table_starting(seen, "Member", "Opening balance")] == [
            [
                m["name"],
                m["opening_balance"]["hours"],
                m["given"]["hours"],
                m["received"]["hours"],
                m["other"]["hours"],
                m["closing_balance"]["hours"],
            ]
            for m in expected["members"]
        ]
        assert table_starting(seen, "Month", "Hours") == [
            [
                language.format_month(dt.date.fromisoformat(t["month"] + "-01")),
                t["hours"],
                str(t["exchanges"]),
                str(t["active_members"]),
            ]
            for t in expected["trend"]
        ]
        by_kind = table_starting(seen, "Kind", "Number")
        assert [(count, hours) for _, count, hours in by_kind] == [
            (str(figures["count"]), figures["hours"]) for figures in expected["by_kind"].values()
        ]
        assert [[row[1], row[2]] for row in table_starting(seen, "Category", "Exchanges")] == [
            [str(c["exchanges"]), c["hours"]] for c in expected["by_category"]
        ]
        assert [row[0] for row in table_starting(seen, "Category", "Exchanges")] == [
            c["category"] if c["category_id"] is not None else "No category" for c in expected["by_category"]
        ]
        givers = [t for t in seen.tables if t and t[0] == ["Member", "Hours"]]
        assert [table[1:] for table in givers] == [
            [[r["name"], r["hours"]] for r in expected[side]]
            for side in ("top_givers", "top_receivers")
            if expected[side]
        ]
        assert seen.pairs["Exchanges"] == str(expected["exchanges"])
        assert seen.pairs["Active members"] == str(expected["active_members"])
        assert seen.pairs["Corrections (reversals)"] == str(expected["reversals"])
        assert seen.pairs["New members"] == str(len(expected["new_members"]))
        assert seen.pairs["Dormant members"] == str(len(expected["dormant_members"]))
        assert seen.pairs["Members never active"] == str(len(expected["never_active"]))
        assert seen.pairs["Hours exchanged"] == hours_in_words(expected["hours_exchanged"]["minutes"], language)
        for text in expected["definitions"].values():
            assert text in seen.values
        assert "The check held" in answer.text
        assert answer.headers["cache-control"] == "no-store"

    async def test_a_range_of_months_is_the_range_report(self, app, client, db, known, known_staff) -> None:
        first, last = month_label(add_months(known.m, -1)), month_label(add_months(known.m, 1))
        api = await client.get(
            f"/api/v1/orgs/{known.org.slug}/reports/monthly",
            params={"from": first, "to": last},
            headers=known_staff.headers,
        )
        page = await signed_in(app, db, known_staff)
        answer = await page.get(report_url(known.org.slug, f"?from={first}&to={last}"))
        assert answer.status_code == 200, answer.text
        assert read_page(answer.text).pairs["Exchanges"] == str(api.json()["exchanges"])

    async def test_a_month_that_is_not_a_month_says_how_to_write_one(self, app, db, known, known_staff) -> None:
        page = await signed_in(app, db, known_staff)
        answer = await page.get(report_url(known.org.slug, "?month=November"))
        assert answer.status_code == 400
        assert "There is a problem" in answer.text
        assert 'value="November"' in answer.text

    async def test_a_range_the_wrong_way_round_says_so_on_its_field(self, app, db, known, known_staff) -> None:
        page = await signed_in(app, db, known_staff)
        answer = await page.get(report_url(known.org.slug, "?month=&from=2026-05&to=2026-01"))
        assert answer.status_code == 400
        assert 'href="#from"' in answer.text
        assert "the first not after the last" in answer.text

    async def test_the_social_value_is_an_estimate_with_its_basis(self, app, client, db) -> None:
        last = add_months(today().replace(day=1), -1)
        org = await org_with_an_exchange_on(db, last)
        rate = await client.post(
            f"/api/v1/orgs/{org.slug}/hourly-rates/",
            json={"amount": "12.60", "basis": "The UK National Living Wage"},
            headers=org.coordinator.headers,
        )
        assert rate.status_code == 201, rate.text
        page = await signed_in(app, db, org.staff)
        answer = await page.get(report_url(org.slug, f"?month={month_label(last)}"))
        assert "About 12.60 GBP" in answer.text  # one hour at 12.60
        assert "This is an estimate, not money received" in answer.text
        assert "The UK National Living Wage" in answer.text

    async def test_the_csv_links_give_the_apis_csv(self, app, client, db, known, known_staff) -> None:
        month = month_label(known.m)
        page = await signed_in(app, db, known_staff)
        for version, anonymised in (("named", "false"), ("anonymised", "true")):
            api = await client.get(
                f"/api/v1/orgs/{known.org.slug}/reports/monthly",
                params={"month": month, "format": "csv", "anonymised": anonymised},
                headers=known_staff.headers,
            )
            ours = await page.get(report_url(known.org.slug, f"/csv?month={month}&version={version}"))
            assert ours.status_code == 200
            assert ours.headers["content-type"].startswith("text/csv")
            assert "attachment" in ours.headers["content-disposition"]
            assert ours.content == api.content
        assert "Member " in (await page.get(report_url(known.org.slug, f"/csv?month={month}&version=anonymised"))).text

    @pytest.mark.parametrize("name", ["trend", "categories"])
    async def test_each_chart_is_an_svg_without_script_under_its_own_csp(
        self, app, db, known, known_staff, name
    ) -> None:
        page = await signed_in(app, db, known_staff)
        answer = await page.get(report_url(known.org.slug, f"/charts/{name}.svg?month={month_label(known.m)}"))
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("image/svg+xml")
        assert answer.headers.get_list("content-security-policy") == [CHART_CSP]
        svg = ElementTree.fromstring(answer.text)
        assert svg.tag == "{http://www.w3.org/2000/svg}svg"
        assert not [e for e in svg.iter() if str(e.tag).endswith("script")]
        assert "<script" not in answer.text

    async def test_an_unknown_chart_is_not_found(self, app, db, known, known_staff) -> None:
        page = await signed_in(app, db, known_staff)
        answer = await page.get(report_url(known.org.slug, "/charts/pie.svg"))
        assert answer.status_code == 404
        assert answer.headers["content-type"].startswith("text/html")

    async def test_the_page_itself_keeps_the_page_csp(self, app, db, known, known_staff) -> None:
        page = await signed_in(app, db, known_staff)
        answer = await page.get(report_url(known.org.slug))
        assert "'unsafe-inline'" not in answer.headers["content-security-policy"]
        assert re.search(r"<img src=\"/orgs/[^\"]+/reports/charts/trend\.svg\?month=", answer.text)


async def org_with_an_exchange_on(db: Database, on: dt.date) -> ApiOrg:
    org = await make_api_org(db)
    await ledger.post_exchange(
        db,
        org.id,
        giver_account_id=org.member.account_id,
        receiver_account_id=org.other_member.account_id,
        minutes=60,
        occurred_on=on,
        description="Gardening",
        category=None,
        recorded_by=None,
        idempotency_key=uuid.uuid4().hex,
    )
    return org


def close_key(html: str) -> str:
    found = re.search(r'name="idempotency_key" value="([0-9a-f]+)"', html)
    assert found, html
    return found.group(1)


class TestClosingAMonth:
    async def test_a_coordinator_reads_what_closing_means_then_closes(self, app, client, db) -> None:
        first = add_months(today().replace(day=1), -2)
        org = await org_with_an_exchange_on(db, first + dt.timedelta(days=3))
        page = await signed_in(app, db, org.coordinator)
        report = await page.get(report_url(org.slug, f"?month={month_label(first)}"))
        assert "Close this month" in report.text
        shown = await page.get(report_url(org.slug, f"/close?month={month_label(first)}"))
        assert shown.status_code == 200
        assert "There is no reopening" in shown.text
        form = {"month": month_label(first), "idempotency_key": close_key(shown.text)}
        done = await page.post(report_url(org.slug, "/close"), form)
        assert done.status_code == 303
        assert done.headers["location"] == report_url(org.slug, f"?month={month_label(first)}&closed=true")
        after = await page.get(done.headers["location"])
        assert "is closed" in after.text and "Close this month" not in after.text
        api = await client.get(
            f"/api/v1/orgs/{org.slug}/reports/monthly", params={"month": month_label(first)}, headers=org.staff.headers
        )
        assert api.json()["closed"] is True
        # The same form sent twice (a double click) closes once, and lands on the same report.
        again = await page.post(report_url(org.slug, "/close"), form)
        assert again.status_code == 303

    async def test_refusals_are_worded_for_people(self, app, db) -> None:
        this_month = today().replace(day=1)
        org = await org_with_an_exchange_on(db, add_months(this_month, -2))
        page = await signed_in(app, db, org.coordinator)

        async def refusal(month: dt.date) -> str:
            shown = await page.get(report_url(org.slug, f"/close?month={month_label(month)}"))
            answer = await page.post(
                report_url(org.slug, "/close"),
                {"month": month_label(month), "idempotency_key": close_key(shown.text)},
            )
            assert answer.status_code == 409, answer.text
            return answer.text

        language = load_locale()
        earlier = language.format_month(add_months(this_month, -2))
        assert f"Close {earlier} first" in await refusal(add_months(this_month, -1))
        assert "has not ended yet" in await refusal(this_month)

    async def test_staff_read_reports_but_do_not_close(self, app, db) -> None:
        org = await make_api_org(db)
        page = await signed_in(app, db, org.staff)
        last = month_label(add_months(today().replace(day=1), -1))
        assert "Close this month" not in (await page.get(report_url(org.slug))).text
        assert (await page.get(report_url(org.slug, f"/close?month={last}"))).status_code == 403
