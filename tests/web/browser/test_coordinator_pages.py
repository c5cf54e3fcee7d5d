"""Coordinators in a real browser: reversing an exchange, changing the minimum balance,
changing a role and clearing a sign-in lockout; axe at 360 px and 1280 px on each new page.

Each test registers the members it uses (through the API, as a coordinator), so the seeded
members' balances and roles that other browser tests read stay as they were.
"""

import re
import uuid

import httpx
from playwright.sync_api import Browser, Page, expect

from tests.web.browser import test_staff_pages
from tests.web.browser.conftest import Console, Site, _context, checked
from tests.web.browser.test_signing_in import sign_in
from tests.web.browser.test_staff_pages import NewMember, member_page

new_member = test_staff_pages.new_member  # the fixture, shared


def _api(site: Site) -> httpx.Client:
    token = site.live.sign_in()
    return httpx.Client(
        base_url=f"{site.base_url}/api/v1/orgs/{site.slug}", headers={"Authorization": f"Bearer {token}"}
    )


def _account_id(api: httpx.Client, name: str) -> int:
    [found] = api.get("/members/", params={"q": name}).raise_for_status().json()["items"]
    return int(found["account_id"])


def _exchange(api: httpx.Client, giver: str, receiver: str, hours: str, description: str) -> int:
    answer = api.post(
        "/exchanges/",
        json={
            "giver_account_id": _account_id(api, giver),
            "receiver_account_id": _account_id(api, receiver),
            "hours": hours,
            "occurred_on": "2026-11-02",
            "description": description,
            "category": "Gardening",
        },
        headers={"Idempotency-Key": uuid.uuid4().hex},
    )
    return int(answer.raise_for_status().json()["id"])


def _member_id(api: httpx.Client, name: str) -> int:
    [found] = api.get("/members/", params={"q": name}).raise_for_status().json()["items"]
    return int(found["id"])


class TestReversing:
    def test_a_coordinator_reverses_an_exchange_and_both_statements_show_it(
        self, page: Page, site: Site, new_member: NewMember
    ) -> None:
        giver, receiver = new_member("Gina"), new_member("Hal")
        with _api(site) as api:
            _exchange(api, giver, receiver, "2", "Painted the fence")
        sign_in(page, "coordinator")
        member_page(page, site, giver)
        expect(page.get_by_text("Balance: 2 hours")).to_be_visible()
        page.get_by_role("link", name="2 November 2026").first.click()
        expect(page.get_by_text("Painted the fence")).to_be_visible()
        checked(page, "transaction")
        page.get_by_role("button", name="Reverse this exchange").click()
        expect(page.get_by_role("heading", name="Reverse this exchange")).to_be_visible()
        checked(page, "reverse-transaction")
        # Nothing typed: the page says what to do, linked to the field.
        page.get_by_role("button", name="Reverse this exchange").click()
        expect(page.get_by_role("link", name="Say why the entry is being reversed")).to_be_visible()
        checked(page, "reverse-transaction-refused")
        page.get_by_label("Why is it being reversed?").fill("Logged against the wrong member")
        page.get_by_role("button", name="Reverse this exchange").click()
        expect(page.get_by_text("The entry has been reversed")).to_be_visible()
        checked(page, "reversal")
        page.get_by_role("link", name="See the entry it cancels").click()
        expect(page.get_by_text("This entry has been reversed")).to_be_visible()
        for name in (giver, receiver):
            member_page(page, site, name)
            expect(page.get_by_text("Balance: 0 hours")).to_be_visible()
            expect(page.get_by_text("A correction that cancels an earlier entry").first).to_be_visible()


class TestTransactionPage:
    def test_a_member_sees_their_own_entry_and_no_button(self, page: Page, site: Site) -> None:
        # Seeded: alice helped bob for 1 hour 30 minutes.
        sign_in(page, "alice")
        page.goto(f"/orgs/{site.slug}/exchanges/{site.live.seeded.transaction_ids[0]}")
        expect(page.get_by_text("Your balance after this entry")).to_be_visible()
        expect(page.get_by_text("Bob").first).to_be_visible()
        expect(page.get_by_role("button", name="Reverse this exchange")).to_have_count(0)
        checked(page, "transaction-member")


class TestSettings:
    def test_a_tighter_minimum_balance_names_the_members_below_it(
        self, page: Page, site: Site, new_member: NewMember
    ) -> None:
        giver, receiver = new_member("Ivo"), new_member("Jo")
        with _api(site) as api:
            _exchange(api, giver, receiver, "5", "Moved house")
        sign_in(page, "coordinator")
        page.get_by_role("link", name="Settings").click()
        expect(page.get_by_role("heading", name="Settings")).to_be_visible()
        checked(page, "settings")
        page.get_by_role("link", name="Change the minimum balance").click()
        checked(page, "settings-minimum-balance")
        box = page.get_by_label("How many hours below zero may a member's balance go?")
        box.fill("2")
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("heading", name="Check this change")).to_be_visible()
        expect(page.get_by_text("1 member is already below the new minimum.")).to_be_visible()
        expect(page.locator("#below").get_by_role("link", name=receiver)).to_be_visible()
        checked(page, "settings-check")
        page.get_by_role("button", name="Save this change").click()
        expect(page.get_by_text("The change has been saved.")).to_be_visible()
        expect(page.locator("#settings")).to_contain_text("2 hours below zero")
        # As it was, for the other tests: the seeded centre allows 20 hours below zero.
        page.get_by_role("link", name="Change the minimum balance").click()
        box.fill("20")
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_text("Members will be able to spend more hours")).to_be_visible()
        page.get_by_role("button", name="Save this change").click()
        expect(page.locator("#settings")).to_contain_text("20 hours below zero")

    def test_retiring_a_category_says_how_many_entries_use_it(self, page: Page, site: Site) -> None:
        sign_in(page, "coordinator")
        page.goto(f"/orgs/{site.slug}/settings")
        page.get_by_role("link", name="Retire Events").click()
        expect(page.get_by_text("0 entries use “Events”.")).to_be_visible()
        checked(page, "settings-retire-category")
        page.get_by_role("button", name="Save this change").click()
        expect(page.get_by_role("link", name="Restore Events")).to_be_visible()
        page.get_by_role("link", name="Restore Events").click()
        page.get_by_role("button", name="Save this change").click()
        expect(page.get_by_role("link", name="Retire Events")).to_be_visible()

    def test_a_refused_value_keeps_what_was_typed(self, page: Page, site: Site) -> None:
        sign_in(page, "coordinator")
        page.goto(f"/orgs/{site.slug}/settings/timezone")
        page.get_by_label("Which time zone is the organisation in?").fill("Europe/Nowhere")
        page.get_by_role("button", name="Continue").click()
        expect(page.get_by_role("link", name="Enter a time zone name as it is written")).to_be_visible()
        expect(page.get_by_label("Which time zone is the organisation in?")).to_have_value("Europe/Nowhere")
        checked(page, "settings-refused")


class TestRolesAndAccess:
    def test_a_coordinator_changes_a_role_and_the_access_page_and_history_show_it(
        self, page: Page, site: Site, new_member: NewMember
    ) -> None:
        name = new_member("Kim")
        sign_in(page, "coordinator")
        page.get_by_role("link", name="Roles and access").click()
        expect(page.get_by_role("heading", name="Roles and access")).to_be_visible()
        checked(page, "access")
        page.get_by_role("link", name=name).click()
        checked(page, "access-person")
        page.get_by_label("Staff", exact=True).check()
        page.get_by_role("button", name="Save role").click()
        expect(page.get_by_text("The role has been changed.")).to_be_visible()
        page.get_by_role("link", name="Back to roles and access").click()
        row = page.locator("#access tr", has=page.get_by_role("link", name=name))
        expect(row.locator(".tb-role")).to_have_text("Staff")
        # And the History says who did it, and what it was before and after.
        page.get_by_role("link", name="History").click()
        newest = page.get_by_role("list", name="Changes, newest first").get_by_role("listitem").first
        expect(newest).to_contain_text(f"changed the role of {name}.")
        expect(newest).to_contain_text("Role changed from member to staff")

    def test_a_coordinator_clears_a_lockout_and_the_member_signs_in_at_once(
        self, page: Page, browser: Browser, site: Site, console: Console, new_member: NewMember
    ) -> None:
        username = new_member("Lena", sign_in=True)
        member = _context(browser, site, console).new_page()
        for _ in range(5):  # the per-username limit (config.py: sign_in_failures_per_user)
            sign_in(member, username, "not the password")
            expect(member.get_by_text("The username or password is not right").first).to_be_visible()
        sign_in(member, username)
        expect(member.get_by_text("You have tried to sign in too many times").first).to_be_visible()
        sign_in(page, "coordinator")
        page.goto(f"/orgs/{site.slug}/access")
        row = page.locator("#access tr", has=page.get_by_text(username))
        expect(row).to_contain_text("Locked out")
        row.get_by_role("link").click()
        page.get_by_role("button", name="Clear sign-in lockout").click()
        expect(page.get_by_text("can sign in again now")).to_be_visible()
        checked(page, "access-lockout-cleared")
        sign_in(member, username)
        # Signed in: on to their home page (or to choosing a password of their own).
        expect(member).to_have_url(re.compile(r"/(orgs/|change-password)"))
        member.context.close()
        page.goto(f"/orgs/{site.slug}/access")
        expect(page.locator("#access tr", has=page.get_by_text(username))).not_to_contain_text("Never signed in")

    def test_staff_do_not_see_settings_or_roles(self, page: Page, site: Site) -> None:
        sign_in(page, "staff")
        expect(page.get_by_role("link", name="Members").first).to_be_visible()
        expect(page.get_by_role("link", name="Settings")).to_have_count(0)
        expect(page.get_by_role("link", name="Roles and access")).to_have_count(0)
        for path in ("settings", "access"):
            assert page.goto(f"/orgs/{site.slug}/{path}").status == 403  # type: ignore[union-attr]
