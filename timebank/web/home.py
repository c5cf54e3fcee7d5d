"""The organisation's home page, for the person's role."""

from litestar import get
from litestar.response import Template

from timebank.api.dependencies import DatabaseDep
from timebank.exchanges.endpoints import present
from timebank.ledger.reading import get_account, list_transactions
from timebank.web.context import PageContextDep
from timebank.web.responses import page

RECENT_EXCHANGES = 5


@get("/", name="org-home")
async def org_home(ctx: PageContextDep, db: DatabaseDep) -> Template:
    if ctx.is_staff:
        return page("pages/org_home.html", ctx=ctx)
    account = await get_account(db, ctx.organisation_id, ctx.account_id)
    recent = await list_transactions(db, ctx.organisation_id, account_id=ctx.account_id, limit=RECENT_EXCHANGES)
    return page(
        "pages/member_home.html",
        ctx=ctx,
        balance_minutes=account.balance_minutes,
        min_balance_minutes=account.min_balance_minutes,
        # As the API shows them to a member: the visibility rule of timebank/ledger/visibility.py.
        recent=await present(db, ctx, recent),
    )


ROUTES = [org_home]
