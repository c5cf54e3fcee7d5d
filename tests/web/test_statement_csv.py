"""The statement page's "Download as CSV": the member's own statement, as the API writes it."""

import datetime as dt
import uuid

from tests.api.conftest import make_api_org
from tests.conftest import today
from tests.web.support import signed_in
from timebank import ledger
from timebank.db import Database


class TestTheStatementCsv:
    async def test_is_the_apis_csv_of_the_period_the_page_shows(self, app, client, db: Database) -> None:
        org = await make_api_org(db)
        first = today().replace(day=1)
        await ledger.post_exchange(
            db,
            org.id,
            giver_account_id=org.member.account_id,
            receiver_account_id=org.other_member.account_id,
            minutes=90,
            occurred_on=first,
            description='=HYPERLINK("http://evil.example")',
            category=None,
            recorded_by=None,
            idempotency_key=uuid.uuid4().hex,
        )
        last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
        page = await signed_in(app, db, org.member)
        shown = await page.get(f"/orgs/{org.slug}/statement")
        link = f"/orgs/{org.slug}/statement/csv?from={first.isoformat()}&amp;to={last.isoformat()}"
        assert link in shown.text
        ours = await page.get(link.replace("&amp;", "&"))
        assert ours.status_code == 200
        assert ours.headers["content-type"].startswith("text/csv")
        assert "attachment" in ours.headers["content-disposition"]
        api = await client.get(
            f"/api/v1/orgs/{org.slug}/accounts/{org.member.account_id}/statement",
            params={"from": first.isoformat(), "to": last.isoformat(), "format": "csv"},
            headers=org.member.headers,
        )
        assert api.status_code == 200
        assert ours.content == api.content
        assert "'=HYPERLINK" in ours.text

    async def test_is_always_the_readers_own(self, app, client, db: Database) -> None:
        org = await make_api_org(db)
        page = await signed_in(app, db, org.member)
        ours = await page.get(f"/orgs/{org.slug}/statement/csv")
        assert f"account-{org.member.account_id}-" in ours.headers["content-disposition"]
