"""Staff at the desk in a real browser: logging exchanges and group activities, registering
members, deactivating them and resetting passwords; with the keyboard alone and without JavaScript.

Each test registers the members it uses (through the API, as a coordinator), so the seeded
members' balances that other browser tests read stay as they were.
"""

import itertools
import re
from collections.abc import Callable

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.api.live_server import PASSWORD
from tests.web.browser.conftest import Console, Site, _context, checked
from tests.web.browser.test_signing_in import sign_in

_numbers = itertools.count(1)

NewMember = Callable[..., str]


@pytest.fixture
def new_member(site: Site) -> NewMember:
    """Register a member through the API; with ``sign_in`` they get the username and PASSWORD."""
    token = site.live.sign_in()

    def register(first_name: str, *, sign_in: bool = False) -> str:
        number = next(_numbers)
        name = f"{first_name} Desk{number}"
        body: dict[str, str] = {"display_name": name}
        if sign_in:
            body |= {"username": f"{first_name.lower()}{number}", "password": PASSWORD}
        answer = httpx.post(
            f"{site.base_url}/api/v1/orgs/{site.slug}/members/",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        answer.raise_for_status()
        return name if not sign_in else body["username"]

    return register


def pick_suggestion(page: Page, label: str, typed: str, name: str) -> None:
    box = page.get_by_label(label, exact=True)
    # Typed only once person-field.js has turned the box into accessible-autocomplete.
    expect(box).to_have_class(re.compile("autocomplete__input"))
    box.fill(typed)

    page.get_by_role("option", name=name).click()
    expect(box).to_have_value(name)


def fill_the_rest(page: Page, *, hours: str = "", minutes: str = "", description: str = "Dug the beds") -> None:
    page.get_by_label("Hours", exact=True).fill(hours)
    page.get_by_label("Minutes", exact=True).fill(minutes)
    page.get_by_label("What kind of help was it?").select_option("Gardening")
    page.get_by_label("What was done?").fill(description)


def member_page(page: Page, site: Site, name: str) -> None:
    page.goto(f"/orgs/{site.slug}/members?q={name}")
    page.get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()


class TestLogAnExchange:
    def test_staff_find_both_people_through_the_suggestions_then_log_another(
        self, page: Page, site: Site, new_member: NewMember
    ) -> None:
        giver, receiver = new_member("Dora"), new_member("Ellis")
        sign_in(page, "staff")
        page.get_by_role("link", name="Log an exchange").first.click()
        expect(page.get_by_role("heading", name="Log an exchange")).to_be_visible()
        checked(page, "log-exchange")
        pick_suggestion(page, "Who gave the help?", "dora", giver)
        pick_suggestion(page, "Who received the help?", "elli", receiver)
        fill_the_rest(page, hours="1", minutes="30")
        page.get_by_role("button", name="Log exchange").click()
        expect(page.get_by_role("heading", name="Exchange logged")).to_be_visible()
        expect(page.get_by_text(f"{giver} gave {receiver} 1 hour 30 minutes")).to_be_visible()
        expect(page.get_by_text("1 hour 30 minutes below zero")).to_be_visible()
        checked(page, "exchange-logged")
        page.get_by_role("link", name="Log another exchange").click()
        expect(page.get_by_label("What kind of help was it?")).to_have_value("Gardening")
        # The centre on the giving side this time.
        pick_suggestion(page, "Who gave the help?", "live test", "Live test centre")
        pick_suggestion(page, "Who received the help?", "ellis", receiver)
        page.get_by_label("Hours", exact=True).fill("1")
        page.get_by_label("What was done?").fill("Tea at the open day")
        page.get_by_role("button", name="Log exchange").click()
        expect(page.get_by_text(f"Live test centre gave {receiver} 1 hour")).to_be_visible()
        expect(page.get_by_text("2 hours 30 minutes below zero")).to_be_visible()

    def test_a_refusal_keeps_the_form_and_links_to_the_field(
        self, page: Page, site: Site, new_member: NewMember
    ) -> None:
        giver, receiver = new_member("Fern"), new_member("Gil")
        sign_in(page, "staff")
        page.goto(f"/orgs/{site.slug}/exchanges/new")
        pick_suggestion(page, "Who gave the help?", "fern", giver)
        pick_suggestion(page, "Who received the help?", "gil", receiver)
        fill_the_rest(page, hours="30", description="Far too long a walk")
        page.get_by_role("button", name="Log exchange").click()
        summary = page.get_by_role("link", name=re.compile(f"This would take {receiver} to 30 hours below zero"))
        expect(summary).to_be_visible()
        expect(page.get_by_label("What was done?")).to_have_value("Far too long a walk")
        expect(page.get_by_label("Who gave the help?")).to_have_value(giver)
        checked(page, "log-exchange-refused")
        summary.click()
        expect(page.get_by_label("Hours", exact=True)).to_be_focused()

    def test_the_whole_flow_with_the_keyboard_alone(self, page: Page, site: Site, new_member: NewMember) -> None:
        giver, receiver = new_member("Hana"), new_member("Ivo")
        sign_in(page, "staff")
        page.goto(f"/orgs/{site.slug}/exchanges/new")
        expect(page.get_by_label("Who gave the help?")).to_have_class(re.compile("autocomplete__input"))
        for _ in range(30):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "giver":
                break
        assert page.evaluate("document.activeElement.id") == "giver"
        # All of the name, in lower case (other tests of this site register people too), then the
        # answer to all of it, not to "h" or "hana": a list drawn for a prefix can look the
        # same, and the later answer arriving after ArrowDown would take the highlight away.
        page.keyboard.type(giver.lower())
        expect(page.locator(f"[data-suggestions-for='{giver.lower()}']")).to_have_count(1)
        expect(page.locator("#giver__listbox [role=option]")).to_have_count(1)
        expect(page.get_by_role("option", name=giver)).to_be_visible()
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Enter")
        expect(page.get_by_label("Who gave the help?")).to_have_value(giver)
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "receiver"
        page.keyboard.type(receiver.lower())
        expect(page.locator(f"[data-suggestions-for='{receiver.lower()}']")).to_have_count(1)
        expect(page.locator("#receiver__listbox [role=option]")).to_have_count(1)
        expect(page.get_by_role("option", name=receiver)).to_be_visible()
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Enter")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "hours"
        page.keyboard.type("2")
        page.keyboard.press("Tab")
        page.keyboard.type("15")
        # The date is today already: on through day, month and year to the category.
        for _ in range(4):
            page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "category"
        page.keyboard.type("Gardening")
        page.keyboard.press("Tab")
        page.keyboard.type("Weeded the front")
        page.keyboard.press("Tab")
        page.keyboard.press("Enter")
        expect(page.get_by_text(f"{giver} gave {receiver} 2 hours 15 minutes")).to_be_visible()
        for _ in range(30):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "log-another":
                break
        page.keyboard.press("Enter")
        expect(page.get_by_role("heading", name="Log an exchange")).to_be_visible()

    def test_without_javascript_a_plain_search_step(
        self, page_without_javascript: Page, site: Site, new_member: NewMember
    ) -> None:
        page = page_without_javascript
        giver, receiver = new_member("Jude"), new_member("Kit")
        sign_in(page, "staff")
        page.goto(f"/orgs/{site.slug}/exchanges/new")
        page.get_by_label("Who gave the help?").fill("jude")
        page.get_by_label("Who received the help?").fill(receiver)
        fill_the_rest(page, hours="1")
        page.get_by_role("button", name="Log exchange").click()
        # Part of a name: choose from what matches (a step, not an error).
        expect(page.get_by_role("group", name="Who gave the help?")).to_be_visible()
        page.get_by_label(giver).check()
        page.get_by_role("button", name="Log exchange").click()
        expect(page.get_by_text(f"{giver} gave {receiver} 1 hour")).to_be_visible()


class TestLogAGroupActivity:
    def test_staff_log_a_group_activity_with_the_totals_as_they_go(
        self, page: Page, site: Site, new_member: NewMember
    ) -> None:
        volunteer, first, second = new_member("Lou"), new_member("Mo"), new_member("Ned")
        sign_in(page, "staff")
        page.get_by_role("link", name="Log a group activity").first.click()
        expect(page.get_by_role("heading", name="Log a group activity")).to_be_visible()
        pick_suggestion(page, "Giver 1", "lou", volunteer)
        page.get_by_label("Hours", exact=True).first.fill("2")
        pick_suggestion(page, "Attendee 1", "mo d", first)
        page.locator("#receiver-0-hours").fill("1")
        expect(page.locator("#group-totals")).to_contain_text("Given: 2 hours. Received: 1 hour.")
        expect(page.locator("#group-totals")).to_contain_text("must be the same")
        pick_suggestion(page, "Attendee 2", "ned", second)
        page.locator("#receiver-1-minutes").fill("60")
        page.locator("#receiver-1-minutes").fill("")
        page.locator("#receiver-1-hours").fill("1")
        expect(page.locator("#group-totals")).to_contain_text("The totals match.")
        page.get_by_label("What kind of help was it?").select_option("Gardening")
        page.get_by_label("What was done?").fill("Gardening club")
        checked(page, "log-group-activity")
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("heading", name="Check the group activity")).to_be_visible()
        checked(page, "log-group-activity-check")
        page.get_by_role("button", name="Log group activity").click()
        expect(page.get_by_role("heading", name="Group activity logged")).to_be_visible()
        expect(page.get_by_text("1 hour; balance now 1 hour below zero").first).to_be_visible()
        checked(page, "group-activity-logged")

    def test_without_javascript_more_rows_and_a_check_step(
        self, page_without_javascript: Page, site: Site, new_member: NewMember
    ) -> None:
        page = page_without_javascript
        volunteer, attendees = new_member("Oona"), [new_member(name) for name in ("Pat", "Quin", "Rae", "Sol", "Tam")]
        sign_in(page, "staff")
        page.goto(f"/orgs/{site.slug}/group-activities/new")
        page.get_by_label("Giver 1").fill(volunteer)
        page.locator("#giver-0-hours").fill("5")
        page.get_by_role("button", name="Add another attendee").click()
        for number, name in enumerate(attendees):
            page.get_by_label(f"Attendee {number + 1}", exact=True).fill(name)
            page.locator(f"#receiver-{number}-hours").fill("1")
        page.get_by_label("What was done?").fill("Walking group")
        page.get_by_label("What kind of help was it?").select_option("Gardening")
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("heading", name="Check the group activity")).to_be_visible()
        expect(page.get_by_text("5 hours").first).to_be_visible()
        page.get_by_role("button", name="Log group activity").click()
        expect(page.get_by_role("heading", name="Group activity logged")).to_be_visible()


class TestMembers:
    def test_staff_register_a_member_with_a_sign_in_who_must_change_the_password(
        self, page: Page, site: Site, browser: Browser, console: Console
    ) -> None:
        sign_in(page, "staff")
        page.get_by_role("link", name="Members").first.click()
        expect(page.get_by_role("heading", name="Members")).to_be_visible()
        checked(page, "members")
        page.get_by_role("link", name="Register a member").click()
        checked(page, "register-member")
        page.get_by_label("Name", exact=True).fill("Uma Newcomer")
        page.get_by_label("Username", exact=True).fill("uma")
        temporary = page.get_by_label("Temporary password").input_value()
        assert re.fullmatch(r"[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}", temporary)
        page.get_by_role("button", name="Register member").click()
        expect(page.get_by_role("heading", name="Uma Newcomer")).to_be_visible()
        expect(page.get_by_text("The member has been registered.")).to_be_visible()
        checked(page, "member")
        # Uma signs in on another computer with the temporary password.
        context = _context(browser, site, console)
        uma = context.new_page()
        sign_in(uma, "uma", temporary)
        expect(uma).to_have_url(re.compile("/change-password$"))
        expect(uma.get_by_text("You signed in with a temporary password")).to_be_visible()
        uma.get_by_label("Your temporary password").fill(temporary)
        uma.get_by_label("New password").fill("my own secret words")
        uma.get_by_role("button", name="Change password").click()
        expect(uma.get_by_role("heading", name="Your password has been changed")).to_be_visible()
        context.close()

    def test_staff_edit_details(self, page: Page, site: Site, new_member: NewMember) -> None:
        name = new_member("Vic")
        sign_in(page, "staff")
        member_page(page, site, name)
        page.get_by_role("link", name="Edit details").click()
        page.get_by_label("Name", exact=True).fill("")
        page.get_by_role("button", name="Save details").click()
        expect(page.get_by_role("link", name="Enter the member's name")).to_be_visible()
        checked(page, "edit-member-refused")
        page.get_by_label("Name", exact=True).fill(f"{name} Renamed")
        page.get_by_role("button", name="Save details").click()
        expect(page.get_by_role("heading", name=f"{name} Renamed")).to_be_visible()

    def test_deactivation_ends_the_members_open_session(
        self, page: Page, site: Site, browser: Browser, console: Console, new_member: NewMember
    ) -> None:
        username = new_member("Wyn", sign_in=True)
        context = _context(browser, site, console)
        member = context.new_page()
        sign_in(member, username)
        expect(member.get_by_text("You have 0 hours")).to_be_visible()
        sign_in(page, "staff")
        member_page(page, site, re.sub(r"^wyn", "Wyn Desk", username))
        page.get_by_role("button", name="Deactivate member").click()
        expect(page.get_by_text("The member has been deactivated.")).to_be_visible()
        member.reload()
        expect(member.get_by_role("heading", name="Welcome to Timebank")).to_be_visible()
        expect(member.get_by_text("You have 0 hours")).to_have_count(0)
        page.get_by_role("button", name="Reactivate member").click()
        expect(page.get_by_text("The member has been reactivated.")).to_be_visible()
        context.close()

    def test_a_password_reset_ends_the_members_open_session(
        self, page: Page, site: Site, browser: Browser, console: Console, new_member: NewMember
    ) -> None:
        username = new_member("Xan", sign_in=True)
        context = _context(browser, site, console)
        member = context.new_page()
        sign_in(member, username)
        expect(member.get_by_text("You have 0 hours")).to_be_visible()
        sign_in(page, "staff")
        member_page(page, site, re.sub(r"^xan", "Xan Desk", username))
        page.get_by_role("link", name="Reset their password").click()
        checked(page, "reset-password")
        temporary = page.get_by_label("Temporary password").input_value()
        page.get_by_role("button", name="Reset password").click()
        expect(page.get_by_text("The password has been reset")).to_be_visible()
        member.reload()
        expect(member.get_by_role("heading", name="Welcome to Timebank")).to_be_visible()
        sign_in(member, username, temporary)
        expect(member).to_have_url(re.compile("/change-password$"))
        context.close()

    def test_staff_cannot_reset_a_coordinators_password_or_edit_them(self, page: Page, site: Site) -> None:
        sign_in(page, "staff")
        member_page(page, site, "Coordinator")
        expect(page.get_by_role("link", name="Edit details")).to_have_count(0)
        expect(page.get_by_role("link", name="Reset their password")).to_have_count(0)
        page.goto(f"/orgs/{site.slug}/members/{site.live.seeded.coordinator_member_id}/password")
        expect(page.get_by_role("heading", name="You cannot see this page")).to_be_visible()

    def test_a_member_gets_not_allowed_on_staff_pages(self, page: Page, site: Site) -> None:
        sign_in(page, "bob")
        for path in ("members", "exchanges/new", "group-activities/new", "members/new"):
            page.goto(f"/orgs/{site.slug}/{path}")
            expect(page.get_by_role("heading", name="You cannot see this page")).to_be_visible()
        checked(page, "staff-page-not-allowed")
