"""The README's screenshots, taken from the demo centre in Debian's Chromium (scripts/readme-screenshots)."""

import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from scripts.drills.live_server import ServerProcess
from tests.web.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from timebank.demo import DEMO_SLUG

OUT = Path(__file__).parents[1] / "docs" / "screenshots"


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        # Plain HTTP on loopback: the session cookie may not be marked Secure here.
        server = ServerProcess(f"sqlite+aiosqlite:///{workdir / 'demo.sqlite3'}", workdir, cookie_secure="false")
        server.migrate()
        server.cli("demo")
        with server, sync_playwright() as playwright:
            server.start()
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            shots = [
                ("alice", "demo-member-pass", 360, f"/orgs/{DEMO_SLUG}/", "member-home-phone.png"),
                (
                    "staff",
                    "demo-staff-pass",
                    1280,
                    f"/orgs/{DEMO_SLUG}/exchanges/new",
                    "staff-log-an-exchange-desktop.png",
                ),
            ]
            for username, password, width, path, name in shots:
                page = browser.new_context(viewport={"width": width, "height": 800}).new_page()
                page.goto(server.base_url + "/")
                page.fill("#username", username)
                page.fill("#password", password)
                page.click("button:has-text('Sign in')")
                page.goto(server.base_url + path)
                page.screenshot(path=str(OUT / name), full_page=True)
                print(f"wrote {OUT / name}")
            browser.close()


if __name__ == "__main__":
    main()
