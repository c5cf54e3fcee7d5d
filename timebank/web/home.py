"""The organisation's home page, for the person's role."""

from litestar import get
from litestar.response import Template

from timebank import ledger
from timebank.api.dependencies import DatabaseDep
from timebank.web.context import PageContextDep
from timebank.web.responses import page


@get("/", name="org-home")
async def org_home(ctx: PageContextDep, db: DatabaseDep) -> Template:
    balance = None if ctx.is_staff else await ledger.current_balance(db, ctx.organisation_id, ctx.account_id)
    return page("pages/org_home.html", ctx=ctx, balance_minutes=balance)


ROUTES = [org_home]
