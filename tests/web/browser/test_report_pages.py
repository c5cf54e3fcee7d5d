"""The report page in a real browser: read at phone and desktop widths, closed by a coordinator
through its confirmation page, downloaded as CSV."""

import datetime as dt
import uuid

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.web.browser.conftest import SCREENSHOTS, Site, checked
from tests.web.browser.test_signing_in import sign_in
from timebank.reports.service import add_months, month_label
from timebank.web.i18n import load_locale


@pytest.fixture(scope="module")
def month_with_data(site: Site) -> dt.date:
    """Two months ago: alice and bob each helped the other for 2 hours (posted through the API)."""
    first = add_months(dt.date.today().replace(day=1), -2)
    token = site.live.sign_in()
    alice, bob = site.live.seeded.account_ids[2:4]
    # Both ways, so everyone's balance stays as the other browser tests expect it.
    for giver, receiver in ((alice, bob), (bob, alice)):
        answer = httpx.post(
            f"{site.base_url}/api/v1/orgs/{site.slug}/exchanges",
            json={
                "giver_account_id": giver,
                "receiver_account_id": receiver,
                "minutes": 120,
                "occurred_on": (first + dt.timedelta(days=14)).isoformat(),
                "description": "Helped with the allotment",
                "category": "Gardening",
            },
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex},
        )
        assert answer.status_code == 201, answer.text
    return first


class TestTheReportPage:
    def test_staff_read_the_report_and_download_it(self, page: Page, site: Site, month_with_data: dt.date) -> None:
        sign_in(page, "staff")
        page.get_by_role("link", name="Reports").click()
        expect(page.get_by_role("heading", level=1)).to_contain_text("Activity report for")
        page.get_by_label("Month", exact=True).fill(month_label(month_with_data))
        page.get_by_role("button", name="Show the report").click()
        name = load_locale().format_month(month_with_data)
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Activity report for {name}")
        expect(
            page.get_by_role("img", name="Bar chart of the hours exchanged in each of the 12 months")
        ).to_be_visible()
        expect(page.get_by_role("row", name="Gardening")).to_contain_text("4.00")
        # The charts are images that loaded (under their own CSP), not broken ones. Asked with
        # expect() on each image: wait_for_function compiles its predicate inside the page when
        # it has to poll, which the page's CSP (no 'unsafe-eval') refuses, and the console check
        # then fails (seen once, on a loaded machine, when the charts were still loading).
        images = page.locator("img").all()
        assert images
        for image in images:
            expect(image).to_have_js_property("complete", True)
            expect(image).not_to_have_js_property("naturalWidth", 0)
        checked(page, "report")
        with page.expect_download() as download:
            page.get_by_role("link", name="Download as CSV", exact=True).click()
        text = download.value.path().read_bytes().decode("utf-8-sig")
        assert text.startswith("figure,value\r\nmonth," + month_label(month_with_data))
        assert "Alice" in text
        with page.expect_download() as download:
            page.get_by_role("link", name="Download as CSV without names").click()
        assert "Alice" not in download.value.path().read_bytes().decode("utf-8-sig")

    def test_a_coordinator_closes_the_month_after_reading_what_it_means(
        self, page: Page, site: Site, month_with_data: dt.date
    ) -> None:
        sign_in(page, "coordinator")
        page.goto(f"/orgs/{site.slug}/reports?month={month_label(month_with_data)}")
        page.get_by_role("link", name="Close this month").click()
        name = load_locale().format_month(month_with_data)
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Close {name}")
        expect(page.get_by_text("There is no reopening.")).to_be_visible()
        checked(page, "report-close")
        page.get_by_role("button", name=f"Close {name}").click()
        expect(page.get_by_text(f"{name} is closed.")).to_be_visible()
        expect(page.get_by_role("link", name="Close this month")).to_have_count(0)
        checked(page, "report-closed")

    def test_the_report_prints_without_navigation_or_forms(
        self, page: Page, site: Site, month_with_data: dt.date
    ) -> None:
        sign_in(page, "staff")
        page.goto(f"/orgs/{site.slug}/reports?month={month_label(month_with_data)}")
        page.emulate_media(media="print")
        expect(page.get_by_role("button", name="Show the report")).to_be_hidden()
        expect(page.get_by_role("button", name="Sign out")).to_be_hidden()
        expect(page.get_by_role("heading", name="Every member")).to_be_visible()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.pdf(path=str(SCREENSHOTS / "report-print.pdf"))
