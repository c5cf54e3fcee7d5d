"""Seeding, browser sign-in and the pages phase for scripts/bench (run.py; docs/performance.md).

SQLite phase (run.py's ``sqlite_run``): one ``timebank serve`` worker on a fresh SQLite file (the default
configuration: WAL, ``synchronous=FULL``), exchange writes through HTTP at each
concurrency of ``--sqlite-scan`` against the SQLite ceiling (``ceiling_sqlite.py``: the
same statements from a minimal aiosqlite client) at the same concurrency, then balance
reads with writes alongside, then a burst of sign-ins (each an argon2 hash of 19 MiB, which
the worker takes one at a time) with the worker's peak memory meanwhile, then
``timebank verify`` on what was written.

Pages phase: the member home (``GET /orgs/{org}/``, signed in as a member with a
browser session cookie) and the staff "Log an exchange" form's POST
(``/orgs/{org}/exchanges/new`` with the CSRF token and the fields a browser sends once
both people were picked from the suggestions; the 303 to the confirmation is not
followed), on an organisation of ``--members`` members, one worker, on both databases.
"""

import datetime as dt
import html.parser
import random
import statistics
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

from scripts.benchmark import ceiling_sqlite
from scripts.benchmark.measure import wrk
from timebank.db import create_database
from timebank.ledger import shared_account_id
from timebank.members.service import create_member
from timebank.models import AccountKind, Role
from timebank.orgs.service import create_organisation

PASSWORD = "benchmark staff password"
TIMEZONE = "Europe/London"


class Seeded:
    """What a seeded organisation gives the phases: its slug, accounts and two logins."""

    def __init__(self) -> None:
        self.org_id = 0
        self.slug = ""
        self.accounts: list[int] = []  # members' accounts in order, then the agency account
        self.names: dict[int, str] = {}
        self.staff_username = ""
        self.member_username = ""


async def seed_organisation(url: str, members: int) -> Seeded:
    """One organisation with a staff login, ``members`` members (the last can sign in) and the centre."""
    seeded = Seeded()
    db = create_database(url)
    try:
        slug = f"bench-{random.randbytes(3).hex()}"
        organisation = await create_organisation(
            db, slug=slug, name="Benchmark centre", timezone=TIMEZONE, min_balance_minutes=-10_000 * 60, changed_by=None
        )
        assert organisation.id is not None
        seeded.org_id, seeded.slug = organisation.id, slug
        seeded.staff_username, seeded.member_username = f"staff-{slug}", f"member-{slug}"
        await create_member(
            db,
            organisation.id,
            display_name="Bench staff",
            role=Role.STAFF,
            username=seeded.staff_username,
            password=PASSWORD,
            changed_by=None,
        )
        for n in range(members):
            # The member who signs in (the pages phase) is the last one: the write phases
            # hammer the first accounts (four hot ones, the SQLite writers' first 50), and a
            # member home over tens of thousands of postings is not an ordinary member's.
            login = {"username": seeded.member_username, "password": PASSWORD} if n == members - 1 else {}
            new = await create_member(db, organisation.id, display_name=f"Member {n:05d}", changed_by=None, **login)  # type: ignore[arg-type]
            assert new.account.id is not None
            seeded.accounts.append(new.account.id)
            seeded.names[new.account.id] = f"Member {n:05d}"
        seeded.accounts.append(await shared_account_id(db, organisation.id, AccountKind.AGENCY))
    finally:
        await db.dispose()
    return seeded


async def seed_sqlite_history(path: Path, seeded: Seeded, exchanges: int) -> None:
    """Past exchanges through the ceiling's statements, without waiting for the disk at each one."""
    conn = await ceiling_sqlite.connect(str(path))
    await conn.execute("PRAGMA synchronous=OFF")
    rng = random.Random(1)
    today = dt.datetime.now(ZoneInfo(TIMEZONE)).date()
    for n in range(exchanges):
        giver, receiver = rng.sample(seeded.accounts, 2)
        day = (today - dt.timedelta(days=rng.randrange(365))).isoformat()
        await ceiling_sqlite.post_one(conn, seeded.org_id, giver, receiver, day, f"history-{n}")
    await conn.execute("ANALYZE")
    await conn.close()


# --------------------------------------------------------------------------- browser sessions


class _FormFields(html.parser.HTMLParser):
    """The fields a browser would submit from the form posting to ``action`` (inputs, selects, textareas)."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action
        self.fields: dict[str, str] = {}
        self._in_form = False
        self._done = False
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("method") == "post" and a.get("action") == self.action and not self._done:
            self._in_form = True
        if not self._in_form:
            return
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in ("submit", "button", "radio", "checkbox"):
            self.fields.setdefault(name, a.get("value", ""))
        elif tag == "textarea" and name:
            self.fields.setdefault(name, "")
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and a.get("value") and self.fields.get(self._select, "") == "":
            self.fields[self._select] = a["value"]  # the first real choice

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        if tag == "form" and self._in_form:
            self._in_form, self._done = False, True


def form_fields(page: str, action: str) -> dict[str, str]:
    parser = _FormFields(action)
    parser.feed(page)
    return parser.fields


def sign_in(base_url: str, username: str) -> str:
    """An API sign-in with the bench's password: the bearer token."""
    response = httpx.post(
        f"{base_url}/api/v1/auth/token", json={"username": username, "password": PASSWORD}, timeout=30
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def browser_sign_in(base_url: str, username: str) -> httpx.Client:
    """A client holding a browser session (and CSRF) cookie, signed in through the sign-in form."""
    client = httpx.Client(base_url=base_url, timeout=10)
    start = client.get("/")
    fields = form_fields(start.text, "/sign-in")
    answer = client.post("/sign-in", data={**fields, "username": username, "password": PASSWORD})
    if answer.status_code != 303:
        raise RuntimeError(f"signing in as {username} answered {answer.status_code}")
    return client


def cookie_header(client: httpx.Client) -> str:
    return "; ".join(f"{name}={value}" for name, value in client.cookies.items())


# --------------------------------------------------------------------------- phases


def sign_in_burst(base_url: str, username: str, people: int) -> dict:
    """``people`` API sign-ins at once, as when a room signs in after a session: their times."""

    def one(_: int) -> float:
        began = time.perf_counter()
        sign_in(base_url, username)
        return (time.perf_counter() - began) * 1000

    with ThreadPoolExecutor(max_workers=people) as pool:
        times = list(pool.map(one, range(people)))
    return {"sign_ins": people, "median_ms": round(statistics.median(times), 1), "slowest_ms": round(max(times), 1)}


def pages(base_url: str, seeded: "Seeded", connections: int, seconds: float, nonce: str) -> dict:
    """p50/p99 of the member home GET and of the Log an exchange POST, each alone at ``connections``."""
    member = browser_sign_in(base_url, seeded.member_username)
    staff = browser_sign_in(base_url, seeded.staff_username)
    home = f"/orgs/{seeded.slug}/"
    if member.get(home).status_code != 200:
        raise RuntimeError("the member home did not answer 200")
    log_exchange = f"/orgs/{seeded.slug}/exchanges/new"
    fields = form_fields(staff.get(log_exchange).text, log_exchange)
    for name in ("idempotency_key", "giver", "giver_account_id", "receiver", "receiver_account_id"):
        fields.pop(name, None)  # pages.lua fills these for each submit
    fields.update(hours="0", minutes="30", description="Benchmark")
    people = ",".join(
        f"{account}|{urllib.parse.quote_plus(name)}" for account, name in list(seeded.names.items())[:200]
    )
    results = {}
    results["member_home"], _ = wrk(
        "pages.lua",
        base_url,
        connections,
        seconds,
        {"TB_PATH": home, "TB_COOKIE": cookie_header(member), "TB_EXPECT": "200"},
    )
    results["log_exchange_post"], _ = wrk(
        "pages.lua",
        base_url,
        connections,
        seconds,
        {
            "TB_PATH": log_exchange,
            "TB_COOKIE": cookie_header(staff),
            "TB_EXPECT": "303",
            "TB_FORM": urllib.parse.urlencode(fields),
            "TB_PEOPLE": people,
            "TB_RUN": nonce,
        },
    )
    member.close()
    staff.close()
    return results
