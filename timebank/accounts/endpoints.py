"""Balances and statements. Members see their own; staff and coordinators see everyone's."""

import datetime as dt
from typing import Annotated
from zoneinfo import ZoneInfo

from litestar import Controller, Request, get
from litestar.params import FromPath, Parameter, QueryParameter

from timebank import ledger
from timebank.accounts.schemas import AccountPage, AccountPublic, StatementLine, StatementPublic
from timebank.api.dependencies import DatabaseDep, OrgAccessDep, OrgContextDep
from timebank.api.schemas import amount, decode_cursor, encode_cursor, error_responses
from timebank.auth.context import OrgContext
from timebank.auth.sign_in_cache import SignInCheck
from timebank.ledger import errors
from timebank.ledger.reading import get_account, list_accounts
from timebank.reports.endpoints import CSV_TOO, FormatParam, wants_csv
from timebank.reports.exports import statement_csv

# Answers stay small however long the period: a statement is answered a page at a time.
MAX_STATEMENT_PAGE = 500


class AccountController(Controller):
    path = "/accounts"
    tags = ["accounts"]

    @get(
        "/",
        summary="Every account, with balances: agency, pot, members (staff, coordinators)",
        responses=error_responses(400, 401, 403, 404, 503),
    )
    async def list_all(
        self,
        ctx: OrgContextDep,
        db: DatabaseDep,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
        offset: Annotated[int, Parameter(ge=0, le=1_000_000)] = 0,
    ) -> AccountPage:
        ctx.require_staff()
        views, total = await list_accounts(db, ctx.organisation_id, limit=limit, offset=offset)
        return AccountPage(items=[AccountPublic.of(v) for v in views], total=total, limit=limit, offset=offset)

    @get(
        "/{account_id:int}",
        summary="An account and its balance (its owner, staff, coordinators)",
        responses=error_responses(401, 403, 404, 503),
    )
    async def get_one(self, account_id: FromPath[int], access: OrgAccessDep, db: DatabaseDep) -> AccountPublic:
        # The hottest read of all: the caller's standing may come from the worker's memory,
        # confirmed by the balance read itself (auth/context.py: OrgAccess).
        async def read(ctx: OrgContext, sign_in: SignInCheck | None) -> AccountPublic:
            if account_id != ctx.account_id:
                ctx.require_staff()
            return AccountPublic.of(await get_account(db, ctx.organisation_id, account_id, sign_in=sign_in))

        return await access.run(read)

    @get(
        "/{account_id:int}/statement",
        summary="A statement for any period, with running balance (its owner, staff, coordinators)",
        description="Entries are dated by when the help was given (occurred_on), in the organisation's "
        "time zone. Defaults: from the first of this month to today. Any period may be asked for, from before "
        "the account's first posting on. A period with more entries than `limit` is answered a page at a "
        "time: pass `next_cursor` back as `cursor` for the next page. Each page's running balances continue "
        "from the page before; `opening_balance` and `closing_balance` are always those of the whole period. "
        "`?format=csv` (or `Accept: text/csv`) gives every entry of the period as CSV, streamed.",
        responses=error_responses(400, 401, 403, 404, 503),
        operation_class=CSV_TOO,
    )
    async def statement(
        self,
        account_id: FromPath[int],
        ctx: OrgContextDep,
        db: DatabaseDep,
        request: Request,
        from_date: Annotated[dt.date | None, QueryParameter(name="from", description="First day (YYYY-MM-DD).")] = None,
        to_date: Annotated[dt.date | None, QueryParameter(name="to", description="Last day (YYYY-MM-DD).")] = None,
        cursor: Annotated[str | None, Parameter(max_length=100, description="next_cursor of the page before.")] = None,
        limit: Annotated[int, Parameter(ge=1, le=MAX_STATEMENT_PAGE, description="Entries per page.")] = 100,
        format_: FormatParam = None,
    ) -> StatementPublic:
        if account_id != ctx.account_id:
            ctx.require_staff()
        today = dt.datetime.now(ZoneInfo(ctx.timezone)).date()
        end = to_date or today
        start = from_date or end.replace(day=1)
        if start > end:
            raise errors.InvalidEntry(f"'from' ({start}) is after 'to' ({end})")
        if wants_csv(request, format_):  # streamed: any period, every entry
            return await statement_csv(db, ctx.organisation_id, ctx.slug, account_id, start, end)  # type: ignore[return-value]
        after = ledger.StatementCursor(*decode_cursor(cursor)) if cursor else None
        found = await ledger.statement(db, ctx.organisation_id, account_id, start, end, after=after, limit=limit)
        return StatementPublic(
            account_id=found.account_id,
            from_date=found.start,
            to_date=found.end,
            opening_balance=amount(found.opening_balance),
            entries=[
                StatementLine(
                    transaction_id=e.transaction_id,
                    kind=e.kind,
                    occurred_on=e.occurred_on,
                    recorded_at=e.recorded_at,
                    description=e.description,
                    category=e.category,
                    counterparts=list(e.counterparts),
                    minutes=e.minutes,
                    hours=ledger.minutes_to_hours(e.minutes),
                    running_balance=amount(e.running_balance),
                )
                for e in found.entries
            ],
            closing_balance=amount(found.closing_balance),
            next_cursor=encode_cursor(found.next_page.occurred_on, found.next_page.transaction_id)
            if found.next_page
            else None,
        )
