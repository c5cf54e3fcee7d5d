""" "Report a mistake" in a real browser: a member reports an entry from their statement,
staff see it on "Corrections" and answer it, and the member sees the answer on their statement.

Each test registers its own people through the API, as the member pages' tests do.
"""

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.api.live_server import PASSWORD
from tests.web.browser.conftest import Site, checked
from tests.web.browser.test_member_pages import Someone, Staff, long_date, today
from tests.web.browser.test_signing_in import sign_in


@pytest.fixture(scope="module")
def staff(site: Site) -> Staff:
    return Staff(site)


def register_staff(site: Site, name: str) -> str:
    username = f"staff-{name.split()[0].lower()}"
    answer = httpx.post(
        f"{site.base_url}/api/v1/orgs/{site.slug}/members/",
        json={"display_name": name, "username": username, "password": PASSWORD, "role": "staff"},
        headers={"Authorization": f"Bearer {site.live.sign_in()}"},
    )
    answer.raise_for_status()
    return username


def report_the_entry(page: Page, site: Site, helper: Someone, *, check: bool = True) -> None:
    """From the statement: "Report a mistake" on the entry, a problem first, then sent.
    ``check``: axe-core and screenshots at each step (they need JavaScript)."""
    page.goto(f"/orgs/{site.slug}/statement")
    link = page.get_by_role("link", name=re.compile(f"Report a mistake in the entry of {long_date(today())}"))
    expect(link).to_have_accessible_name(
        f"Report a mistake in the entry of {long_date(today())}: {helper.name} helped you"
    )
    link.click()
    expect(page.get_by_role("heading", name="Report a mistake")).to_be_visible()
    if check:
        checked(page, "report-mistake")
    page.get_by_label("What should it be? (optional)").fill("It was 30 minutes")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("heading", name="There is a problem")).to_be_visible()
    expect(page.get_by_label("What should it be? (optional)")).to_have_value("It was 30 minutes")
    if check:
        checked(page, "report-mistake-problem")
    page.get_by_role("link", name="Say what is wrong with this entry").click()
    expect(page.get_by_label("What is wrong?")).to_be_focused()
    page.get_by_label("What is wrong?").fill("It was not an hour and a half")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_text("We have received your message. Staff will look at it.")).to_be_visible()
    if check:
        checked(page, "report-mistake-sent")


class TestReportAMistake:
    def test_a_member_reports_staff_answer_and_the_member_sees_the_answer(
        self, page: Page, site: Site, staff: Staff
    ) -> None:
        member, helper = staff.register("Uma Reporter"), staff.register("Vic Helper")
        staff.exchange(helper, member, 90, days_ago=0)
        staff_username = register_staff(site, "Wren Staff")
        sign_in(page, member.username)
        report_the_entry(page, site, helper)
        page.get_by_role("link", name="Back to your statement").click()
        expect(page.locator("table.tb-statement")).to_contain_text("Message received")
        expect(page.locator("table.tb-statement")).to_contain_text("Staff will look at it.")
        checked(page, "statement-message-received")
        assert staff.balance(member) == -90  # a request changes nothing

        page.get_by_role("button", name="Sign out").click()
        sign_in(page, staff_username)
        page.get_by_role("link", name="Corrections").first.click()
        request = page.locator("section.tb-correction", has_text="From Uma Reporter")
        expect(request).to_contain_text("It was not an hour and a half")
        expect(request).to_contain_text("It was 30 minutes")
        expect(request.get_by_role("link", name="Reverse this exchange")).to_have_count(0)  # staff do not reverse
        checked(page, "corrections")
        request.get_by_label("Your answer to Uma Reporter").fill("You are right. A coordinator will correct it today.")
        request.get_by_role("button", name="Send answer").click()
        expect(page.get_by_text("Your answer to Uma Reporter has been sent.")).to_be_visible()
        answered = page.locator("section.tb-correction", has_text="From Uma Reporter")
        expect(answered).to_contain_text("You are right. A coordinator will correct it today.")
        checked(page, "corrections-answered")

        page.get_by_role("button", name="Sign out").click()
        sign_in(page, member.username)
        page.get_by_role("link", name="Your statement").first.click()
        table = page.locator("table.tb-statement")
        expect(table).to_contain_text("Answered")
        expect(table).to_contain_text("Staff answered: “You are right. A coordinator will correct it today.”")
        checked(page, "statement-answered")

    def test_a_coordinator_reverses_from_the_request_and_the_member_sees_the_outcome(
        self, page: Page, site: Site, staff: Staff
    ) -> None:
        member, helper = staff.register("Xena Asker"), staff.register("Yuri Giver")
        staff.exchange(helper, member, 60, days_ago=0)
        sign_in(page, member.username)
        report_the_entry(page, site, helper, check=False)
        page.get_by_role("button", name="Sign out").click()
        sign_in(page, site.live.seeded.coordinator_username)
        page.goto(f"/orgs/{site.slug}/corrections")
        request = page.locator("section.tb-correction", has_text="From Xena Asker")
        reverse = request.get_by_role("link", name=re.compile("Reverse this exchange"))
        expect(reverse).to_have_attribute("href", re.compile(r"/exchanges/\d+/reverse\?correction=\d+$"))
        checked(page, "corrections-coordinator")

        reverse.click()
        page.get_by_label("Why is it being reversed?").fill("Xena reported it: logged by mistake")
        page.get_by_role("button", name="Reverse this exchange").click()
        # Back on the request, to answer it; the answer records the reversal.
        expect(page).to_have_url(re.compile(r"/corrections#correction-\d+$"))
        assert staff.balance(member) == 0
        request = page.locator("section.tb-correction", has_text="From Xena Asker")
        expect(request.get_by_role("link", name=re.compile("Reverse this exchange"))).to_have_count(0)
        request.get_by_label("Your answer to Xena Asker").fill("We have reversed it.")
        request.get_by_role("button", name="Send answer").click()
        expect(page.get_by_text("Your answer to Xena Asker has been sent.")).to_be_visible()

        page.get_by_role("button", name="Sign out").click()
        sign_in(page, member.username)
        page.get_by_role("link", name="Your statement").first.click()
        table = page.locator("table.tb-statement")
        expect(table).to_contain_text("We have reversed it.")
        expect(table).to_contain_text("This entry was reversed.")
        checked(page, "statement-reversed")


class TestWithoutJavaScript:
    def test_a_member_reports_a_mistake(self, page_without_javascript: Page, site: Site, staff: Staff) -> None:
        member, helper = staff.register("Zoe Nojs"), staff.register("Abe Helper")
        staff.exchange(helper, member, 45, days_ago=0)
        page = page_without_javascript
        sign_in(page, member.username)
        report_the_entry(page, site, helper, check=False)
