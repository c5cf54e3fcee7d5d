"""The History page in a real browser: a coordinator changes someone's role, then reads who did
it and what it was before and after, filters by kind and by person, and downloads the CSV."""

import uuid

import httpx
from playwright.sync_api import Page, expect

from tests.web.browser.conftest import Site, checked
from tests.web.browser.test_signing_in import sign_in


def a_member_made_staff(site: Site) -> str:
    """Register someone and change their role, through the API as the coordinator."""
    headers = {"Authorization": f"Bearer {site.live.sign_in()}"}
    name = f"Rosa History{uuid.uuid4().hex[:4]}"
    created = httpx.post(
        f"{site.base_url}/api/v1/orgs/{site.slug}/members/", json={"display_name": name}, headers=headers
    )
    created.raise_for_status()
    changed = httpx.patch(
        f"{site.base_url}/api/v1/orgs/{site.slug}/members/{created.json()['id']}",
        json={"role": "staff"},
        headers=headers,
    )
    changed.raise_for_status()
    return name


class TestTheHistoryPage:
    def test_a_coordinator_reads_a_role_change_and_downloads_it(self, page: Page, site: Site) -> None:
        name = a_member_made_staff(site)
        sign_in(page, "coordinator")
        page.get_by_role("link", name="History").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("History")
        newest = page.get_by_role("list", name="Changes, newest first").get_by_role("listitem").first
        expect(newest).to_contain_text(f"changed the role of {name}.")
        expect(newest).to_contain_text("Role changed from member to staff")
        checked(page, "history")

        page.get_by_label("Kind of change").select_option("Member registered")
        page.get_by_role("button", name="Show").click()
        expect(page.get_by_text(f"registered {name}.")).to_be_visible()
        expect(page.get_by_text("Role changed from member to staff")).to_have_count(0)

        page.get_by_label("Kind of change").select_option("Every kind of change")
        page.get_by_label("Person").select_option(name)
        page.get_by_role("button", name="Show").click()
        expect(page.get_by_text("2 changes.")).to_be_visible()
        checked(page, "history-of-one-person")
        with page.expect_download() as download:
            page.get_by_role("link", name="Download as CSV").click()
        text = download.value.path().read_bytes().decode("utf-8-sig")
        assert text.startswith("id,changed_at,by_user_id,by,kind,")
        assert "role_changed" in text and "member_registered" in text

    def test_staff_read_it_too(self, page: Page, site: Site) -> None:
        sign_in(page, "staff")
        page.get_by_role("link", name="History").click()
        expect(page.get_by_role("heading", level=1)).to_have_text("History")
