"""The idle timeout on shared computers: a warning that keeps the session and what was typed, then the end.

Against a server whose sessions end after 12 idle seconds (the warning shows at 6).
The waits are for what the page shows, never fixed sleeps.
"""

import re

from playwright.sync_api import Page, expect

from tests.api.live_server import PASSWORD
from tests.web.browser.conftest import checked
from tests.web.browser.test_signing_in import sign_in

WAIT_MS = 30_000


def test_the_warning_keeps_the_session_and_the_typing_then_the_session_ends(short_idle_page: Page) -> None:
    page = short_idle_page
    sign_in(page, "alice")
    page.goto("/change-password")
    field = page.get_by_label("Your current password")
    field.fill("half-typed")
    warning = page.get_by_role("dialog", name="You will be signed out soon")
    expect(warning).to_be_visible(timeout=WAIT_MS)
    checked(page, "idle-warning")
    page.get_by_role("button", name="Stay signed in").click()
    expect(warning).to_be_hidden()
    expect(field).to_have_value("half-typed")
    # Still signed in on the server: the warning comes back later, and the form still posts.
    expect(warning).to_be_visible(timeout=WAIT_MS)
    # Ignored this time: at the end the page goes to the start page, which says why.
    expect(page.get_by_text("You were signed out because you had not done anything")).to_be_visible(timeout=WAIT_MS)
    expect(page).to_have_url(re.compile(r"/$"))
    page.goto("/change-password")
    expect(page.get_by_role("heading", name="Welcome to Timebank")).to_be_visible()
    assert PASSWORD  # the seeded password is unchanged by this test
