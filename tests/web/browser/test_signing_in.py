"""Signing in and out in a real browser, as people at a day centre do it."""

import re

from playwright.sync_api import Page, expect

from tests.api.live_server import PASSWORD
from tests.web.browser.conftest import Site, checked


def sign_in(page: Page, username: str, password: str = PASSWORD) -> None:
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


class TestSigningIn:
    def test_a_member_signs_in_and_sees_their_balance_in_words(self, page: Page, site: Site) -> None:
        page.goto("/")
        expect(page.get_by_role("heading", name="Welcome to Timebank")).to_be_visible()
        checked(page, "start")
        sign_in(page, "alice")
        expect(page).to_have_url(re.compile(f"/orgs/{site.slug}/$"))
        # Seeded: alice gave 1 h 30 twice and received 1 h 30 twice.
        expect(page.get_by_text("You have 0 hours")).to_be_visible()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        checked(page, "member-home")

    def test_staff_sign_in_to_their_home(self, page: Page, site: Site) -> None:
        sign_in(page, "staff")
        expect(page.get_by_role("heading", name="Hello, Staff")).to_be_visible()
        checked(page, "staff-home")

    def test_a_wrong_password_says_so_and_keeps_the_username(self, page: Page, site: Site) -> None:
        sign_in(page, "alice", "not my password")
        expect(page.get_by_role("heading", name="There is a problem")).to_be_visible()
        expect(page.get_by_role("link", name="The username or password is not right")).to_be_visible()
        expect(page.get_by_label("Username")).to_have_value("alice")
        checked(page, "sign-in-wrong-password")
        # The error summary's link takes the keyboard to the field.
        page.get_by_role("link", name="The username or password is not right").click()
        expect(page.get_by_label("Password", exact=True)).to_be_focused()

    def test_after_sign_out_back_shows_no_hours(self, page: Page, site: Site) -> None:
        sign_in(page, "alice")
        expect(page.get_by_text("You have 0 hours")).to_be_visible()
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_text("You have signed out.")).to_be_visible()
        checked(page, "signed-out")
        page.go_back()
        expect(page.get_by_role("heading", name="Welcome to Timebank")).to_be_visible()
        assert "You have 0 hours" not in page.content()
        assert "Sign out" not in page.inner_text("body")

    def test_signing_in_with_the_keyboard_alone(self, page: Page, site: Site) -> None:
        page.goto("/")
        for _ in range(10):
            page.keyboard.press("Tab")
            if page.evaluate("document.activeElement.id") == "username":
                break
        page.keyboard.type("alice")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "password"
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Enter")
        expect(page.get_by_text("You have 0 hours")).to_be_visible()
        # Sign out is reachable by keyboard too.
        page.get_by_role("button", name="Sign out").focus()
        page.keyboard.press("Enter")
        expect(page.get_by_text("You have signed out.")).to_be_visible()

    def test_signing_in_works_without_javascript(self, page_without_javascript: Page, site: Site) -> None:
        sign_in(page_without_javascript, "alice")
        expect(page_without_javascript.get_by_text("You have 0 hours")).to_be_visible()
        page_without_javascript.get_by_role("button", name="Sign out").click()
        expect(page_without_javascript.get_by_text("You have signed out.")).to_be_visible()


class TestTemporaryPasswords:
    def test_must_be_changed_before_anything_else(self, page: Page, site: Site) -> None:
        site.sql("UPDATE users SET must_change_password = 1 WHERE username = 'bob'")
        sign_in(page, "bob")
        expect(page).to_have_url(re.compile("/change-password$"))
        expect(page.get_by_text("You signed in with a temporary password")).to_be_visible()
        page.goto(f"/orgs/{site.slug}/")
        expect(page).to_have_url(re.compile("/change-password$"))
        checked(page, "change-password")
        page.get_by_label("Your temporary password").fill(PASSWORD)
        page.get_by_label("New password").fill("short")
        page.get_by_role("button", name="Change password").click()
        expect(page.get_by_role("link", name="at least 8 characters")).to_be_visible()
        checked(page, "change-password-error")
        page.get_by_label("Your temporary password").fill(PASSWORD)
        # Changed back to the seeded password, so other tests can still sign in as bob.
        page.get_by_label("New password").fill(PASSWORD)
        page.get_by_role("button", name="Change password").click()
        expect(page.get_by_role("heading", name="Your password has been changed")).to_be_visible()
        checked(page, "password-changed")
        page.get_by_role("link", name="Continue").click()
        expect(page).to_have_url(re.compile(f"/orgs/{site.slug}/$"))


class TestErrorPages:
    def test_not_found_and_expired_forms_are_friendly_pages(self, page: Page, site: Site) -> None:
        page.goto("/no/such/page")
        expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
        checked(page, "not-found")
        page.goto("/")
        page.context.clear_cookies()
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Password", exact=True).fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="This form has expired")).to_be_visible()
        checked(page, "expired-form")

    def test_another_organisations_page_is_not_found(self, page: Page, site: Site) -> None:
        sign_in(page, "alice")
        page.goto("/orgs/somewhere-else/")
        expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
