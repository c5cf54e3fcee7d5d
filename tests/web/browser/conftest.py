"""Browser tests: Playwright driving Debian's Chromium against a real ``timebank serve``.

The server runs on a fresh SQLite database seeded by tests/api/live_server.py (an
organisation with a coordinator, staff, and the members alice and bob, all with
PASSWORD). Playwright's own browser downloads are not used: /usr/bin/chromium
(``apt-get install chromium``) is. Without it these tests are skipped, unless
TIMEBANK_REQUIRE_BROWSER=1 (as .ci/run sets), which fails the run instead.

Every test gets a new browser context (no cookies) and fails if the console
reports a Content-Security-Policy violation. ``checked(page, name)`` runs axe-core
at 360 px and at 1280 px (failing on serious or critical violations) and saves
screenshots at both widths in test-artifacts/screenshots/.
"""

import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright, sync_playwright

from tests.api.live_server import LiveServer, live_server

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REQUIRE_BROWSER = os.environ.get("TIMEBANK_REQUIRE_BROWSER") == "1"
SCREENSHOTS = Path(__file__).parents[3] / "test-artifacts" / "screenshots"
WIDTHS = {"phone": 360, "desktop": 1280}
SERIOUS = {"serious", "critical"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/web/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing (apt-get install -y chromium)"
        if REQUIRE_BROWSER:
            pytest.fail(f"{message}, and TIMEBANK_REQUIRE_BROWSER=1")
        pytest.skip(f"{message}: browser tests skipped")
    return CHROMIUM


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory, chromium_path: Path) -> Iterator[LiveServer]:
    workdir = tmp_path_factory.mktemp("browser-server")
    url = f"sqlite+aiosqlite:///{workdir / 'timebank.sqlite3'}"
    # Plain HTTP on the loopback: the cookies cannot be Secure here.
    with live_server(url, workdir, cookie_secure="false") as live:
        yield live


@dataclass
class Site:
    """The running server, and a way to change its database behind it (as an administrator would)."""

    live: LiveServer
    database_file: Path

    @property
    def base_url(self) -> str:
        return self.live.base_url

    @property
    def slug(self) -> str:
        return self.live.seeded.slug

    def sql(self, statement: str, *parameters: object) -> None:
        with sqlite3.connect(self.database_file) as conn:
            conn.execute(statement, parameters)


@pytest.fixture(scope="module")
def short_idle_site(tmp_path_factory: pytest.TempPathFactory, chromium_path: Path) -> Iterator[Site]:
    """A second server whose sessions end after 12 idle seconds (the warning comes at 6)."""
    workdir = tmp_path_factory.mktemp("browser-short-idle")
    url = f"sqlite+aiosqlite:///{workdir / 'timebank.sqlite3'}"
    with live_server(url, workdir, cookie_secure="false", session_idle_minutes="0.2") as live:
        yield Site(live, workdir / "timebank.sqlite3")


@pytest.fixture(scope="package")
def site(server: LiveServer) -> Site:
    database_file = Path(server.log_file.parent / "timebank.sqlite3")
    return Site(server, database_file)


# Package-scoped: while Playwright's sync API runs, its event loop counts as running in this
# thread, and the rest of the suite (asyncio.run in fixtures) must not meet it.
@pytest.fixture(scope="package")
def playwright(server: LiveServer) -> Iterator[Playwright]:
    # After the server: seeding it uses asyncio.run, which cannot run inside Playwright's loop.
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="package")
def browser(playwright: Playwright, chromium_path: Path) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@dataclass
class Console:
    problems: list[str] = field(default_factory=list)

    def listen(self, message: ConsoleMessage) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            self.problems.append(text)


def _context(browser: Browser, site: Site, console: Console, **options: object) -> BrowserContext:
    context = browser.new_context(
        base_url=site.base_url, viewport={"width": WIDTHS["desktop"], "height": 900}, **options
    )
    context.on("console", console.listen)
    context.on("weberror", lambda error: console.problems.append(f"page error: {error.error}"))
    return context


@pytest.fixture
def console() -> Iterator[Console]:
    seen = Console()
    yield seen
    assert seen.problems == [], "the console reported Content-Security-Policy violations or errors"


@pytest.fixture
def page(browser: Browser, site: Site, console: Console) -> Iterator[Page]:
    context = _context(browser, site, console)
    yield context.new_page()
    context.close()


@pytest.fixture
def short_idle_page(browser: Browser, short_idle_site: Site, console: Console) -> Iterator[Page]:
    context = _context(browser, short_idle_site, console)
    yield context.new_page()
    context.close()


@pytest.fixture
def page_without_javascript(browser: Browser, site: Site, console: Console) -> Iterator[Page]:
    context = _context(browser, site, console, java_script_enabled=False)
    yield context.new_page()
    context.close()


_axe = Axe()


def checked(page: Page, name: str) -> None:
    """axe-core at phone and desktop widths (no serious or critical violations), with screenshots."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    problems = {}
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=SCREENSHOTS / f"{name}-{label}.png", full_page=True)
        scrolls_sideways = page.evaluate("document.documentElement.scrollWidth > document.documentElement.clientWidth")
        assert not scrolls_sideways, f"{name} scrolls sideways at {width} px"
        violations = _axe.run(page).response["violations"]
        serious = [
            f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']]}"
            for v in violations
            if v["impact"] in SERIOUS
        ]
        if serious:
            problems[label] = serious
    page.set_viewport_size({"width": WIDTHS["desktop"], "height": 900})
    assert problems == {}, f"axe-core found serious or critical problems on {name}"
