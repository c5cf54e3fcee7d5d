"""A member's pages in a real browser: home, statement, and "Record help I received".

Every test registers its own people through the API (as staff would), so balances are
known and the seeded alice and bob, whom other tests count on, stay as they are.
"""

import datetime as dt
import itertools
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.api.live_server import PASSWORD
from tests.web.browser.conftest import Site, checked
from tests.web.browser.test_signing_in import sign_in

_numbers = itertools.count(1)


@dataclass(frozen=True)
class Someone:
    username: str
    name: str
    account_id: int


@dataclass
class Staff:
    site: Site

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.site.live.sign_in()}"}

    def register(self, name: str, *, signs_in: bool = True) -> Someone:
        username = f"m{next(_numbers)}-{name.split()[0].lower()}"
        body = {"display_name": name} | ({"username": username, "password": PASSWORD} if signs_in else {})
        answer = httpx.post(
            f"{self.site.base_url}/api/v1/orgs/{self.site.slug}/members/", json=body, headers=self._headers()
        )
        answer.raise_for_status()
        return Someone(username, name, answer.json()["account_id"])

    def exchange(self, giver: Someone, receiver: Someone, minutes: int, days_ago: int = 1) -> None:
        answer = httpx.post(
            f"{self.site.base_url}/api/v1/orgs/{self.site.slug}/exchanges/",
            json={
                "giver_account_id": giver.account_id,
                "receiver_account_id": receiver.account_id,
                "minutes": minutes,
                "occurred_on": (today() - dt.timedelta(days=days_ago)).isoformat(),
                "description": "Helped in the garden",
                "category": "Gardening",
            },
            headers={**self._headers(), "Idempotency-Key": f"browser-{next(_numbers)}-{giver.account_id}"},
        )
        answer.raise_for_status()

    def balance(self, who: Someone) -> int:
        answer = httpx.get(
            f"{self.site.base_url}/api/v1/orgs/{self.site.slug}/accounts/{who.account_id}", headers=self._headers()
        )
        answer.raise_for_status()
        return int(answer.json()["balance"]["minutes"])


def today() -> dt.date:
    return dt.datetime.now(ZoneInfo("Europe/London")).date()


def long_date(day: dt.date) -> str:
    return f"{day.day} {day.strftime('%B %Y')}"


@pytest.fixture(scope="module")
def staff(site: Site) -> Staff:
    return Staff(site)


def fill_the_form(page: Page, *, hours: str, minutes: str = "", description: str = "Dug the vegetable beds") -> None:
    page.get_by_label("Hours").fill(hours)
    page.get_by_label("Minutes").fill(minutes)
    page.get_by_label("What kind of help was it?").select_option("Gardening")
    page.get_by_label("What did they do?").fill(description)


class TestMemberHomeAndStatement:
    def test_a_member_sees_their_balance_and_statement(self, page: Page, site: Site, staff: Staff) -> None:
        member, helper = staff.register("Dora Member"), staff.register("Ivan Helper")
        # Both today, so that both are in this month's statement whatever the date.
        staff.exchange(helper, member, 90, days_ago=0)
        staff.exchange(member, helper, 30, days_ago=0)
        sign_in(page, member.username)
        expect(page.get_by_text("You have received 1 hour more than you have given")).to_be_visible()
        expect(
            page.get_by_text("You can go down to 20 hours below zero. So you can receive 19 hours more")
        ).to_be_visible()
        recent = page.locator(".tb-recent li")
        expect(recent.nth(0)).to_have_text(f"You helped Ivan Helper — Gardening — 30 minutes — {long_date(today())}")
        expect(recent.nth(1)).to_have_text(
            f"Ivan Helper helped you — Gardening — 1 hour 30 minutes — {long_date(today())}"
        )
        checked(page, "member-home-below-zero")

        page.get_by_role("link", name="Your statement").first.click()
        expect(page.get_by_role("heading", name=re.compile("Your statement"))).to_be_visible()
        rows = page.locator("table.tb-statement tbody tr")
        # The balance at the start, two entries with running balances, the balance at the end.
        expect(rows).to_have_count(4)
        table = page.locator("table.tb-statement")
        expect(table).to_contain_text("Ivan Helper helped you")
        expect(table).to_contain_text("1 hour 30 minutes below zero")
        expect(table).to_contain_text("1 hour below zero")
        checked(page, "statement")

        page.get_by_role("link", name=re.compile("Previous month")).click()
        expect(page).to_have_url(re.compile(r"month=\d{4}-\d{2}"))
        expect(page.get_by_text("Nothing was given or received in this period.")).to_be_visible()

    def test_the_statement_prints_without_the_navigation(self, page: Page, site: Site, staff: Staff) -> None:
        member = staff.register("Petra Printer")
        sign_in(page, member.username)
        page.goto(f"/orgs/{site.slug}/statement")
        page.emulate_media(media="print")
        expect(page.locator(".govuk-template__header")).to_be_hidden()
        expect(page.get_by_role("link", name=re.compile("Previous month"))).to_be_hidden()
        expect(page.get_by_role("heading", name=re.compile("Your statement"))).to_be_visible()

    def test_any_period_and_paging(self, page: Page, site: Site, staff: Staff) -> None:
        member, helper = staff.register("Paula Pages"), staff.register("Quentin Giver")
        for days_ago in range(1, 56):
            staff.exchange(helper, member, 5, days_ago=days_ago % 3 + 1)
        sign_in(page, member.username)
        start = today() - dt.timedelta(days=10)
        page.goto(f"/orgs/{site.slug}/statement?from={start.isoformat()}&to={today().isoformat()}")
        rows = page.locator("table.tb-statement tbody tr")
        # 50 entries on the first page, after the balance at the start.
        expect(rows).to_have_count(51)
        page.get_by_role("link", name="Next page of entries").click()
        # The last 5, then the balance at the end: 55 entries of 5 minutes = 4 hours 35 minutes.
        expect(rows).to_have_count(6)
        expect(rows.last).to_contain_text("4 hours 35 minutes below zero")


class TestRecordingHelpReceived:
    def test_with_suggestions_and_the_confirmation_step(self, page: Page, site: Site, staff: Staff) -> None:
        member, helper = staff.register("Rosa Receiver"), staff.register("Ezra Suggested")
        staff.exchange(member, helper, 5 * 60 + 30)
        sign_in(page, member.username)
        page.get_by_role("link", name="Record help I received").first.click()
        expect(page.get_by_role("heading", name="Record help you received")).to_be_visible()
        # The lookup answers names and account ids, never a balance.
        found = page.request.get(f"/orgs/{site.slug}/people?q=Ezra Sugg").json()
        assert found == [{"account_id": helper.account_id, "name": "Ezra Suggested"}]

        page.get_by_label("Who helped you?").fill("zra sugg")
        expect(page.get_by_role("option", name="Ezra Suggested")).to_be_visible()
        checked(page, "record-help-suggestions")
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Enter")
        expect(page.get_by_label("Who helped you?")).to_have_value("Ezra Suggested")
        # Today, in the organisation's time zone, is already filled in.
        expect(page.get_by_label("Day")).to_have_value(str(today().day))
        fill_the_form(page, hours="1", minutes="15")
        checked(page, "record-help")
        page.get_by_role("button", name="Continue").click()

        expect(page.get_by_role("heading", name="Check your answers")).to_be_visible()
        expect(page.get_by_text("After this you will have 4 hours 15 minutes")).to_be_visible()
        expect(page.locator(".govuk-summary-list")).to_contain_text("Ezra Suggested")
        checked(page, "record-help-check")
        page.get_by_role("button", name="Record this help").click()

        expect(page.get_by_role("heading", name="Help recorded")).to_be_visible()
        expect(page.get_by_text(f"Ezra Suggested gave you 1 hour 15 minutes on {long_date(today())}")).to_be_visible()
        checked(page, "record-help-done")
        assert staff.balance(member) == 4 * 60 + 15
        page.get_by_role("link", name="Back to your home page").click()
        expect(page.get_by_text("You have 4 hours 15 minutes", exact=True)).to_be_visible()
        expect(page.get_by_text("You have given 4 hours 15 minutes more than you have received.")).to_be_visible()
        expect(page.locator(".tb-recent li").first).to_contain_text(
            "Ezra Suggested helped you — Gardening — 1 hour 15 minutes"
        )

    def test_with_the_keyboard_alone(self, page: Page, site: Site, staff: Staff) -> None:
        member, helper = staff.register("Kim Keys"), staff.register("Kofi Keyboard")
        sign_in(page, member.username)
        page.goto(f"/orgs/{site.slug}/record-help")

        def tab_to(element_id: str) -> None:
            for _ in range(20):
                page.keyboard.press("Tab")
                if page.evaluate("document.activeElement.id") == element_id:
                    return
            raise AssertionError(f"Tab never reached #{element_id}")

        tab_to("giver")
        page.keyboard.type("kofi k")
        # Suggestions for all of it: a late answer for "kofi k" after ArrowDown would take the
        # highlight away again (person-field.js).
        expect(page.locator("[data-suggestions-for='kofi k']")).to_have_count(1)
        expect(page.get_by_role("option", name="Kofi Keyboard")).to_be_visible()
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Enter")
        tab_to("hours")
        page.keyboard.type("2")
        tab_to("category")
        page.keyboard.type("Gardening")
        tab_to("description")
        page.keyboard.type("Mended the fence")
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Check your answers")).to_be_visible()
        expect(page.locator(".govuk-summary-list")).to_contain_text("Kofi Keyboard")
        for _ in range(20):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.textContent.trim()") == "Record this help":
                break
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Help recorded")).to_be_visible()
        assert staff.balance(helper) == 120

    def test_change_your_answers_keeps_them(self, page: Page, site: Site, staff: Staff) -> None:
        member, helper = staff.register("Chana Changer"), staff.register("Gil Changed")
        sign_in(page, member.username)
        page.goto(f"/orgs/{site.slug}/record-help")
        page.get_by_label("Who helped you?").fill("Gil Changed")
        fill_the_form(page, hours="2")
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("button", name="Change your answers").click()
        expect(page.get_by_label("Who helped you?")).to_have_value("Gil Changed")
        expect(page.get_by_label("Hours")).to_have_value("2")
        page.get_by_label("Hours").fill("3")
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_text("After this you will have received 3 hours more than you have given")).to_be_visible()
        page.get_by_role("button", name="Record this help").click()
        expect(page.get_by_role("heading", name="Help recorded")).to_be_visible()
        assert staff.balance(member) == -180 and staff.balance(helper) == 180

    def test_a_refused_entry_keeps_the_form_and_says_what_to_do(self, page: Page, site: Site, staff: Staff) -> None:
        member, helper = staff.register("Lena Lowbalance"), staff.register("Omar Refused")
        staff.exchange(helper, member, 19 * 60)
        sign_in(page, member.username)
        page.goto(f"/orgs/{site.slug}/record-help")
        page.get_by_label("Who helped you?").fill("Omar Refused")
        fill_the_form(page, hours="2", description="Fixed my bicycle")
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("button", name="Record this help").click()

        expect(page.get_by_role("heading", name="There is a problem")).to_be_visible()
        problem = page.get_by_role("link", name=re.compile("cannot go lower than 20 hours below zero"))
        expect(problem).to_be_visible()
        expect(page.get_by_label("Who helped you?")).to_have_value("Omar Refused")
        expect(page.get_by_label("Hours")).to_have_value("2")
        expect(page.get_by_label("What did they do?")).to_have_value("Fixed my bicycle")
        expect(page).to_have_title(re.compile("^Error:"))
        checked(page, "record-help-refused")
        problem.click()
        expect(page.get_by_label("Hours")).to_be_focused()

        # A date in the future: the ledger's refusal, worded with the organisation's today.
        tomorrow = today() + dt.timedelta(days=1)
        page.get_by_label("Hours").fill("0")
        page.get_by_label("Minutes").fill("30")
        page.get_by_label("Day").fill(str(tomorrow.day))
        page.get_by_label("Month").fill(str(tomorrow.month))
        page.get_by_label("Year").fill(str(tomorrow.year))
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("button", name="Record this help").click()
        problem = page.get_by_role("link", name=re.compile("The date cannot be in the future"))
        expect(problem).to_contain_text(long_date(today()))
        problem.click()
        expect(page.get_by_label("Day")).to_be_focused()
        assert staff.balance(member) == -19 * 60

    def test_several_matches_ask_to_choose_one(self, page: Page, site: Site, staff: Staff) -> None:
        # A name typed without picking a suggestion: the server asks, as it does without JavaScript.
        member = staff.register("Mia Chooser")
        staff.register("Theo Twinname")
        chosen = staff.register("Tess Twinname")
        sign_in(page, member.username)
        page.goto(f"/orgs/{site.slug}/record-help")
        page.get_by_label("Who helped you?").fill("twinname")
        page.keyboard.press("Escape")
        fill_the_form(page, hours="1")
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("group", name="Who helped you?")).to_be_visible()
        checked(page, "record-help-choose")
        page.get_by_label("Tess Twinname").check()
        page.get_by_role("button", name="Continue").click()
        expect(page.locator(".govuk-summary-list")).to_contain_text("Tess Twinname")
        page.get_by_role("button", name="Record this help").click()
        expect(page.get_by_role("heading", name="Help recorded")).to_be_visible()
        assert staff.balance(chosen) == 60

    def test_someone_not_found_is_said_plainly(self, page: Page, site: Site, staff: Staff) -> None:
        member = staff.register("Nina Nobody")
        sign_in(page, member.username)
        page.goto(f"/orgs/{site.slug}/record-help")
        page.get_by_label("Who helped you?").fill("Zebedee Unknown")
        fill_the_form(page, hours="1")
        page.get_by_role("button", name="Continue").click()
        expect(
            page.get_by_role("link", name=re.compile("We could not find anyone called “Zebedee Unknown”"))
        ).to_be_visible()
        expect(page.get_by_label("Who helped you?")).to_have_value("Zebedee Unknown")
        checked(page, "record-help-not-found")

    def test_a_double_submit_posts_once(self, page: Page, site: Site, staff: Staff) -> None:
        member, helper = staff.register("Dana Double"), staff.register("Hugo Twice")
        sign_in(page, member.username)
        page.goto(f"/orgs/{site.slug}/record-help")
        page.get_by_label("Who helped you?").fill("Hugo Twice")
        fill_the_form(page, hours="1")
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("heading", name="Check your answers")).to_be_visible()
        form = page.locator("form[action$='/record-help/confirm']")
        fields = {
            name: form.locator(f"input[name='{name}']").input_value()
            for name in form.locator("input[type=hidden]").evaluate_all("inputs => inputs.map(i => i.name)")
        }
        # The same form sent twice, as a double click or a resubmission would.
        answers = [
            page.request.post(f"/orgs/{site.slug}/record-help/confirm", form=fields, max_redirects=0) for _ in range(2)
        ]
        assert [a.status for a in answers] == [303, 303]
        assert answers[0].headers["location"] == answers[1].headers["location"]
        assert staff.balance(member) == -60 and staff.balance(helper) == 60
        # And the button itself, after the two: still one posting.
        page.get_by_role("button", name="Record this help").click()
        expect(page.get_by_role("heading", name="Help recorded")).to_be_visible()
        assert page.url.endswith(answers[0].headers["location"])
        assert staff.balance(member) == -60


class TestWhatAMemberMayNotSee:
    def test_another_members_entry_or_another_organisation_is_not_found(
        self, page: Page, site: Site, staff: Staff
    ) -> None:
        member, other = staff.register("Uma Urls"), staff.register("Vic Private")
        staff.register("Walt Helps")
        sign_in(page, other.username)
        page.goto(f"/orgs/{site.slug}/record-help")
        page.get_by_label("Who helped you?").fill("Walt Helps")
        fill_the_form(page, hours="1")
        page.get_by_role("button", name="Continue").click()
        page.get_by_role("button", name="Record this help").click()
        expect(page.get_by_role("heading", name="Help recorded")).to_be_visible()
        their_entry = page.url
        page.get_by_role("button", name="Sign out").click()

        sign_in(page, member.username)
        for url in [
            their_entry,
            "/orgs/no-such-centre/",
            "/orgs/no-such-centre/statement",
            f"/orgs/{site.slug}/members/1",
        ]:
            answer = page.goto(url)
            assert answer is not None and answer.status == 404, url
            expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
            assert "Vic Private" not in page.content() and "Walt Helps" not in page.content()
        checked(page, "member-not-found")
        # The statement shows only their own account, whatever is added to the address.
        page.goto(f"/orgs/{site.slug}/statement?account_id={other.account_id}")
        expect(page.get_by_text("Nothing was given or received in this period.")).to_be_visible()


class TestWithoutJavaScript:
    def test_recording_help_with_the_choose_one_step(
        self, page_without_javascript: Page, site: Site, staff: Staff
    ) -> None:
        page = page_without_javascript
        member = staff.register("Yara Nojs")
        staff.register("Xavier Samename")
        chosen = staff.register("Xena Samename")
        sign_in(page, member.username)
        expect(page.get_by_text("You have 0 hours")).to_be_visible()
        page.get_by_role("link", name="Record help I received").first.click()
        page.get_by_label("Who helped you?").fill("samename")
        fill_the_form(page, hours="0", minutes="45")
        page.get_by_role("button", name="Continue").click()

        expect(page.get_by_role("group", name="Who helped you?")).to_be_visible()
        expect(page.get_by_label("Xavier Samename")).to_be_visible()
        # Nothing else typed is lost while choosing.
        expect(page.get_by_label("Minutes")).to_have_value("45")
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("link", name=re.compile("Choose who helped you"))).to_be_visible()
        page.get_by_label("Xena Samename").check()
        page.get_by_role("button", name="Continue").click()

        expect(
            page.get_by_text("After this you will have received 45 minutes more than you have given")
        ).to_be_visible()
        page.get_by_role("button", name="Record this help").click()
        expect(page.get_by_text(f"Xena Samename gave you 45 minutes on {long_date(today())}")).to_be_visible()
        assert staff.balance(chosen) == 45

        page.get_by_role("link", name="Your statement").first.click()
        expect(page.locator("table.tb-statement")).to_contain_text("Xena Samename helped you")

    def test_someone_else_types_the_name_again(self, page_without_javascript: Page, site: Site, staff: Staff) -> None:
        page = page_without_javascript
        member, helper = staff.register("Zora Retype"), staff.register("Kai Retyped")
        staff.register("Kai Other")
        sign_in(page, member.username)
        page.goto(f"/orgs/{site.slug}/record-help")
        page.get_by_label("Who helped you?").fill("Kai")
        fill_the_form(page, hours="1")
        page.get_by_role("button", name="Continue").click()
        page.get_by_label("Someone else: type their name again").check()
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_label("Who helped you?")).to_have_value("Kai")
        page.get_by_label("Who helped you?").fill("Kai Retyped")
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("heading", name="Check your answers")).to_be_visible()
        page.get_by_role("button", name="Record this help").click()
        expect(page.get_by_role("heading", name="Help recorded")).to_be_visible()
        assert staff.balance(helper) == 60
