"""Monthly and range reports, computed with SQL by the date the help was given.

Every figure has one definition, written once in ``DEFINITIONS`` and returned with
the report. Opening balances start from the balances stored at the newest close
before the period (see ``closing.py``), so a report reads only the postings after
it: reports do not slow down as history grows.
"""

import datetime as dt
import re
from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import Date, case, distinct, func, select, type_coerce
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.db import Database
from timebank.db.snapshot import read_snapshot
from timebank.ledger import errors
from timebank.ledger.amounts import minutes_to_hours
from timebank.models import (
    Account,
    AccountKind,
    Category,
    ClosedBalance,
    HourlyRate,
    Member,
    Organisation,
    PeriodClose,
    Posting,
    Transaction,
    TransactionKind,
)
from timebank.reports import schemas
from timebank.reports.stored_reports import with_personal_data

accounts = Account.__table__
members = Member.__table__
transactions = Transaction.__table__
postings = Posting.__table__
categories = Category.__table__
organisations = Organisation.__table__
period_closes = PeriodClose.__table__
closed_balances = ClosedBalance.__table__
hourly_rates = HourlyRate.__table__

EXCHANGE_KINDS = (TransactionKind.EXCHANGE.value, TransactionKind.GROUP.value)
DORMANT_DAYS = 90
TOP_MEMBERS = 10
TREND_MONTHS = 12
MAX_RANGE_MONTHS = 120
# Years 1900 to 2999: enough for any ledger, and every month arithmetic stays within dates.
_MONTH = re.compile(r"(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])", re.ASCII)

DEFINITIONS: dict[str, str] = {
    "counting": "Everything is counted by the date the help was given (occurred_on, the organisation's local "
    "date), never by when it was typed in.",
    "member": "Member accounts of any role (members, staff and coordinators all give and receive hours); the "
    "centre's agency account and the community pot are not members.",
    "exchanges": "Transactions of kind exchange or group activity dated in the period, each counted once however "
    "many legs it has.",
    "reversals": "The number of reversals (corrections) dated in the period. A reversal counts in the month of its "
    "own date, so a closed month never changes.",
    "hours_exchanged": "The credit (giving) side of the exchanges and group activities dated in the period, minus "
    "the credit side of the reversals of exchanges and group activities dated in the period (net).",
    "hours_exchanged_gross": "The credit (giving) side of the exchanges and group activities dated in the period, "
    "before reversals.",
    "by_kind": "Count and credit-side hours of the transactions dated in the period, by kind: person to person, "
    "person to agency, agency to person, group (any group activity, whoever gives), pot donation, pot grant, "
    "reversal, opening balance.",
    "active_members": "Members who gave or received in an exchange or group activity dated in the period. Pot "
    "donations and grants, opening balances and reversals do not make anyone active.",
    "members_who_gave": "Members credited in an exchange or group activity dated in the period.",
    "members_who_received": "Members debited in an exchange or group activity dated in the period.",
    "new_members": "Members who joined (joined_on) in the period.",
    "dormant_members": f"Members active at some time up to the period's end who had no exchange or group activity "
    f"in the {DORMANT_DAYS} days up to it (the period's last day and the {DORMANT_DAYS - 1} days before), with the "
    "date of their last one.",
    "never_active": "Members (joined by the period's end) who have never had an exchange or group activity dated "
    "up to the period's end.",
    "by_category": "Exchanges and group activities dated in the period by category (matched by the category's id; "
    "the name is as it is now, or as it was at the close), net of their reversals dated in the period.",
    "top_givers": f"The {TOP_MEMBERS} members with the most hours given in exchanges and group activities in the "
    "period; ties in alphabetical order of name.",
    "top_receivers": f"The {TOP_MEMBERS} members with the most hours received in exchanges and group activities in "
    "the period; ties in alphabetical order of name.",
    "members": "For every member: the opening balance (as of the day before the period, by occurred_on), hours "
    "given and received in exchanges and group activities, other movements (pot donations and grants, opening "
    "balances, reversals; signed), and the closing balance; each row satisfies opening + given - received + other "
    "= closing.",
    "corrections": "Each reversal dated in the period, with the transaction it corrects, which may be dated in an "
    "earlier (even closed) month.",
    "trend": f"The {TREND_MONTHS} months ending with the period's last month: net hours exchanged, exchanges and "
    "active members of each month, as defined above.",
    "trial_balance": "The organisation's accounts (members, agency account, pot) sum to zero as of the period's "
    "last day, by occurred_on.",
    "social_value": "An estimate: net hours exchanged multiplied by the hourly value a coordinator sets, with its "
    "basis in words. A closed month keeps the rate it was closed with.",
    "closed": "True when the period's months are closed: nothing may be dated in them any more, and a closed month's "
    "report is served as it was stored at the close.",
}


# --------------------------------------------------------------------------- periods


def parse_month(text: str, name: str = "month") -> dt.date:
    """'2026-10' -> 2026-10-01; anything else is refused with a message naming ``name``."""
    if not isinstance(text, str) or not _MONTH.fullmatch(text):
        raise errors.InvalidEntry(
            f"{name} must be a month written YYYY-MM, such as 2026-10 (years 1900 to 2999)", field=name
        )
    return dt.date(int(text[:4]), int(text[5:]), 1)


def add_months(first: dt.date, months: int) -> dt.date:
    index = first.year * 12 + first.month - 1 + months
    return dt.date(index // 12, index % 12 + 1, 1)


def month_end(first: dt.date) -> dt.date:
    return add_months(first, 1) - dt.timedelta(days=1)


def month_label(first: dt.date) -> str:
    return f"{first.year:04d}-{first.month:02d}"


@dataclass(frozen=True)
class Period:
    """Whole months: ``first`` and ``last`` are the first days of the first and last month."""

    first: dt.date
    last: dt.date

    @classmethod
    def month(cls, text: str) -> "Period":
        first = parse_month(text)
        return cls(first, first)

    @classmethod
    def range(cls, start: str, end: str) -> "Period":
        first, last = parse_month(start, "from"), parse_month(end, "to")
        if first > last:
            raise errors.InvalidEntry(f"'from' ({start}) is after 'to' ({end})")
        if (last.year - first.year) * 12 + last.month - first.month >= MAX_RANGE_MONTHS:
            raise errors.InvalidEntry(f"a report may cover at most {MAX_RANGE_MONTHS} months")
        return cls(first, last)

    @property
    def start(self) -> dt.date:
        return self.first

    @property
    def end(self) -> dt.date:
        return month_end(self.last)

    @property
    def is_one_month(self) -> bool:
        return self.first == self.last

    def months(self) -> list[dt.date]:
        found, month = [], self.first
        while month <= self.last:
            found.append(month)
            month = add_months(month, 1)
        return found


# --------------------------------------------------------------------------- money


_hours = lru_cache(maxsize=8192)(minutes_to_hours)


def amount(minutes: int) -> dict[str, Any]:
    """An amount as the report holds it. Rows are built as plain data and validated once, in
    pydantic's core, when the report is made: a report has thousands of amounts."""
    return {"minutes": minutes, "hours": _hours(minutes)}


@dataclass(frozen=True)
class Rate:
    amount_pence: int
    currency: str
    basis: str
    set_on: dt.date


def money(pence: int, currency: str) -> schemas.Money:
    sign = "-" if pence < 0 else ""
    return schemas.Money(amount=f"{sign}{abs(pence) // 100}.{abs(pence) % 100:02d}", currency=currency)


def value_in_pence(minutes: int, rate_pence: int) -> int:
    """Minutes at an hourly rate, to the nearest penny (halves away from zero)."""
    return int((Decimal(minutes) * rate_pence / 60).quantize(Decimal(1), rounding=ROUND_HALF_UP))


async def current_rate(conn: AsyncConnection, organisation_id: int) -> Rate | None:
    row = (
        await conn.execute(
            select(hourly_rates.c.amount_pence, hourly_rates.c.currency, hourly_rates.c.basis, hourly_rates.c.set_on)
            .where(hourly_rates.c.organisation_id == organisation_id)
            .order_by(hourly_rates.c.id.desc())
            .limit(1)
        )
    ).first()
    return Rate(*row) if row is not None else None


# --------------------------------------------------------------------------- the report


@dataclass(slots=True)
class _Account:
    id: int
    kind: AccountKind
    member_id: int | None
    name: str
    joined_on: dt.date | None
    opening: int = 0
    given: int = 0
    received: int = 0
    other: int = 0
    total: int = 0
    last_active_before: dt.date | None = None
    last_active_in: dt.date | None = None
    # Any posting dated up to the period's end (balances that net to zero included).
    has_postings: bool = False

    @property
    def closing(self) -> int:
        return self.opening + self.total

    @property
    def last_active(self) -> dt.date | None:
        return self.last_active_in or self.last_active_before


@dataclass
class ComputedReport:
    """The report, and what a close stores beside it."""

    report: schemas.MonthlyReport
    closing_balances: dict[int, tuple[int, dt.date | None]]  # account id -> (balance, last active)
    minutes_exchanged: int
    social_value_pence: int | None


_IS_EXCHANGE = transactions.c.kind.in_(EXCHANGE_KINDS)
_CREDIT = func.sum(case((postings.c.minutes > 0, postings.c.minutes), else_=0))


async def monthly_report(db: Database, organisation_id: int, period: Period) -> schemas.MonthlyReport:
    """The report for ``period``: a closed month's as stored at its close, anything else computed now."""
    async with read_snapshot(db) as conn:
        if period.is_one_month:
            stored = await conn.scalar(
                select(period_closes.c.report).where(
                    period_closes.c.organisation_id == organisation_id, period_closes.c.month == period.first
                )
            )
            if stored is not None:
                report = await with_personal_data(conn, organisation_id, stored)
                return schemas.MonthlyReport.model_validate({**report, "closed": True})
        computed = await compute_report(conn, organisation_id, period)
    return computed.report


async def compute_report(conn: AsyncConnection, organisation_id: int, period: Period) -> ComputedReport:
    """Compute the report from the ledger on ``conn`` (which the caller keeps consistent)."""
    closed_through = await conn.scalar(
        select(organisations.c.books_closed_through).where(organisations.c.id == organisation_id)
    )
    book = await _accounts(conn, organisation_id)
    stored_months = await _stored_months(conn, organisation_id, period.last)
    base = max(
        (m for m in stored_months.values() if m.closed_through < period.start),
        key=lambda m: m.closed_through,
        default=None,
    )
    await _opening_balances(conn, organisation_id, period.start, book, base)
    if conn.dialect.name == "postgresql" and base is not None and period.is_one_month:
        # What follows reads one month or two of postings: a few thousand rows through the
        # indexes, where starting parallel workers costs more than they save (about half).
        await conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
    await _movements(conn, organisation_id, period, book)
    agency_id = next(a.id for a in book.values() if a.kind is AccountKind.AGENCY)
    by_kind, by_category, counts = await _by_kind_and_category(conn, organisation_id, period, agency_id)
    rate = await current_rate(conn, organisation_id)

    end = period.end
    people = [
        a
        for a in book.values()
        if a.kind is AccountKind.MEMBER and ((a.joined_on is not None and a.joined_on <= end) or a.has_postings)
    ]
    people.sort(key=lambda a: (a.name.casefold(), a.member_id))
    active = sum(1 for a in people if a.given or a.received)
    dormant_before = period.end - dt.timedelta(days=DORMANT_DAYS)
    net = counts["gross"] - counts["reversed"]
    social_value, value_pence = _social_value(period, net, stored_months, rate)
    # A one-month report already has its own month's trend figures: no second pass over its postings.
    this_month = (
        {period.first: _StoredMonth(counts["exchanges"], net, active, None, None, period.end)}
        if period.is_one_month
        else {}
    )
    total = sum(a.closing for a in book.values())

    report = schemas.MonthlyReport(
        month=month_label(period.first) if period.is_one_month else None,
        from_month=None if period.is_one_month else month_label(period.first),
        to_month=None if period.is_one_month else month_label(period.last),
        exchanges=counts["exchanges"],
        reversals=by_kind["reversal"].count,
        hours_exchanged=amount(net),
        hours_exchanged_gross=amount(counts["gross"]),
        by_kind=schemas.ByKind(**by_kind),
        active_members=active,
        members_who_gave=sum(1 for a in people if a.given),
        members_who_received=sum(1 for a in people if a.received),
        new_members=[
            {"member_id": a.member_id, "name": a.name, "joined_on": a.joined_on}
            for a in sorted(people, key=lambda a: (a.joined_on, a.name.casefold(), a.member_id))
            if a.joined_on is not None and period.start <= a.joined_on <= end
        ],
        dormant_members=[
            {"member_id": a.member_id, "name": a.name, "last_active_on": a.last_active}
            for a in sorted(people, key=lambda a: (a.last_active or dt.date.min, a.name.casefold(), a.member_id))
            if a.last_active is not None and a.last_active <= dormant_before
        ],
        never_active=[{"member_id": a.member_id, "name": a.name} for a in people if a.last_active is None],
        by_category=await _category_rows(conn, organisation_id, by_category),
        top_givers=_ranked(people, "given"),
        top_receivers=_ranked(people, "received"),
        members=[
            {
                "member_id": a.member_id,
                "name": a.name,
                "account_id": a.id,
                "opening_balance": amount(a.opening),
                "given": amount(a.given),
                "received": amount(a.received),
                "other": amount(a.other),
                "closing_balance": amount(a.closing),
            }
            for a in people
        ],
        corrections=await _corrections(conn, organisation_id, period),
        trend=await _trend(conn, organisation_id, period.last, stored_months, this_month),
        trial_balance=schemas.TrialBalance(
            as_of=period.end,
            total=amount(total),
            held=total == 0,
            member_rows_held=all(a.opening + a.given - a.received + a.other == a.closing for a in people),
        ),
        social_value=social_value,
        definitions=DEFINITIONS,
        closed=closed_through is not None and period.end <= closed_through,
    )
    return ComputedReport(
        report=report,
        closing_balances={a.id: (a.closing, a.last_active) for a in book.values()},
        minutes_exchanged=net,
        social_value_pence=value_pence,
    )


async def _accounts(conn: AsyncConnection, organisation_id: int) -> dict[int, _Account]:
    rows = await conn.execute(
        select(accounts.c.id, accounts.c.kind, accounts.c.member_id, members.c.display_name, members.c.joined_on)
        .select_from(accounts.outerjoin(members, members.c.id == accounts.c.member_id))
        .where(accounts.c.organisation_id == organisation_id)
    )
    kinds = {kind.value: kind for kind in AccountKind}
    return {
        account_id: _Account(account_id, kinds[kind], member_id, name or "", joined_on)
        for account_id, kind, member_id, name, joined_on in rows
    }


def _per_account(condition: Any) -> Any:
    """Sums per account of the postings of the transactions matching ``condition``."""
    return (
        select(
            postings.c.account_id,
            func.sum(case((_IS_EXCHANGE & (postings.c.minutes > 0), postings.c.minutes), else_=0)).label("given"),
            func.sum(case((_IS_EXCHANGE & (postings.c.minutes < 0), -postings.c.minutes), else_=0)).label("received"),
            func.sum(case((_IS_EXCHANGE, 0), else_=postings.c.minutes)).label("other"),
            func.sum(postings.c.minutes).label("total"),
            type_coerce(func.max(case((_IS_EXCHANGE, postings.c.occurred_on), else_=None)), Date).label("last_active"),
        )
        .select_from(transactions.join(postings, postings.c.transaction_id == transactions.c.id))
        .where(condition)
        .group_by(postings.c.account_id)
    )


async def _opening_balances(
    conn: AsyncConnection, organisation_id: int, start: dt.date, book: dict[int, _Account], base: "_StoredMonth | None"
) -> None:
    """Balances and last activity as of the day before ``start``: the close ``base`` (the newest
    before it), plus what follows; with no close, the whole history before ``start``."""
    since = transactions.c.occurred_on < start
    if base is not None:
        for account_id, balance, last_active in await conn.execute(
            select(
                closed_balances.c.account_id, closed_balances.c.balance_minutes, closed_balances.c.last_active_on
            ).where(closed_balances.c.period_close_id == base.close_id)
        ):
            account = book[account_id]
            account.opening, account.last_active_before = balance, last_active
            account.has_postings = balance != 0 or last_active is not None
        since = since & (transactions.c.occurred_on > base.closed_through)
    for row in await conn.execute(_per_account((transactions.c.organisation_id == organisation_id) & since)):
        account = book[row.account_id]
        account.opening += int(row.total)
        account.has_postings = True
        if row.last_active is not None:
            account.last_active_before = max(filter(None, (account.last_active_before, row.last_active)))


async def _movements(conn: AsyncConnection, organisation_id: int, period: Period, book: dict[int, _Account]) -> None:
    in_period = (transactions.c.organisation_id == organisation_id) & transactions.c.occurred_on.between(
        period.start, period.end
    )
    for row in await conn.execute(_per_account(in_period)):
        account = book[row.account_id]
        account.given, account.received = int(row.given), int(row.received)
        account.other, account.total = int(row.other), int(row.total)
        account.last_active_in = row.last_active
        account.has_postings = True


_KIND_NAMES = {
    TransactionKind.GROUP.value: "group",
    TransactionKind.DONATION.value: "pot_donation",
    TransactionKind.GRANT.value: "pot_grant",
    TransactionKind.REVERSAL.value: "reversal",
    TransactionKind.OPENING_BALANCE.value: "opening_balance",
}
BY_KIND_KEYS = (
    "person_to_person",
    "person_to_agency",
    "agency_to_person",
    "group",
    "pot_donation",
    "pot_grant",
    "reversal",
    "opening_balance",
)


def _per_transaction(organisation_id: int, start: dt.date, end: dt.date, agency_id: int, *columns: Any) -> Any:
    """One row per transaction dated ``start``..``end``: its kind, what it reverses, its credit side."""
    original = transactions.alias("original")
    return (
        select(
            transactions.c.id,
            transactions.c.kind,
            transactions.c.category_id,
            original.c.kind.label("reverses_kind"),
            _CREDIT.label("credit"),
            func.max(case(((postings.c.account_id == agency_id) & (postings.c.minutes > 0), 1), else_=0)).label(
                "agency_gave"
            ),
            func.max(case(((postings.c.account_id == agency_id) & (postings.c.minutes < 0), 1), else_=0)).label(
                "agency_received"
            ),
            *columns,
        )
        .select_from(
            transactions.join(postings, postings.c.transaction_id == transactions.c.id).outerjoin(
                original, original.c.id == transactions.c.reverses_id
            )
        )
        .where(transactions.c.organisation_id == organisation_id, transactions.c.occurred_on.between(start, end))
        .group_by(transactions.c.id, transactions.c.kind, transactions.c.category_id, original.c.kind, *columns)
        .subquery()
    )


def kind_key(kind: str, agency_gave: bool, agency_received: bool) -> str:
    """The ``by_kind`` key of a transaction."""
    if kind == TransactionKind.EXCHANGE.value:
        if agency_gave:
            return "agency_to_person"
        return "person_to_agency" if agency_received else "person_to_person"
    return _KIND_NAMES[kind]


async def _by_kind_and_category(
    conn: AsyncConnection, organisation_id: int, period: Period, agency_id: int
) -> tuple[dict[str, schemas.KindFigures], dict[int | None, list[int]], dict[str, int]]:
    each = _per_transaction(organisation_id, period.start, period.end, agency_id)
    rows = await conn.execute(
        select(
            each.c.kind,
            each.c.category_id,
            each.c.reverses_kind,
            each.c.agency_gave,
            each.c.agency_received,
            func.count().label("n"),
            func.sum(each.c.credit).label("credit"),
        ).group_by(each.c.kind, each.c.category_id, each.c.reverses_kind, each.c.agency_gave, each.c.agency_received)
    )
    kinds: dict[str, list[int]] = {key: [0, 0] for key in BY_KIND_KEYS}
    by_category: dict[int | None, list[int]] = defaultdict(lambda: [0, 0])  # [exchanges, net minutes]
    counts = {"exchanges": 0, "gross": 0, "reversed": 0}
    for row in rows:
        credit = int(row.credit)
        figures = kinds[kind_key(row.kind, bool(row.agency_gave), bool(row.agency_received))]
        figures[0] += row.n
        figures[1] += credit
        if row.kind in EXCHANGE_KINDS:
            counts["exchanges"] += row.n
            counts["gross"] += credit
            by_category[row.category_id][0] += row.n
            by_category[row.category_id][1] += credit
        elif row.kind == TransactionKind.REVERSAL.value and row.reverses_kind in EXCHANGE_KINDS:
            counts["reversed"] += credit
            by_category[row.category_id][1] -= credit
    by_kind = {
        key: schemas.KindFigures(count=n, minutes=minutes, hours=minutes_to_hours(minutes))
        for key, (n, minutes) in kinds.items()
    }
    return by_kind, by_category, counts


async def _category_rows(
    conn: AsyncConnection, organisation_id: int, by_category: dict[int | None, list[int]]
) -> list[schemas.CategoryFigures]:
    names = dict(
        (
            await conn.execute(
                select(categories.c.id, categories.c.name).where(categories.c.organisation_id == organisation_id)
            )
        ).all()  # type: ignore[arg-type]
    )
    rows = [
        schemas.CategoryFigures(
            category_id=category_id,
            category=names.get(category_id, "No category") if category_id is not None else "No category",
            exchanges=n,
            minutes=minutes,
            hours=minutes_to_hours(minutes),
        )
        for category_id, (n, minutes) in by_category.items()
    ]
    rows.sort(key=lambda r: (-r.minutes, r.category.casefold(), r.category_id or 0))
    return rows


def _ranked(people: list[_Account], side: str) -> list[schemas.RankedMember]:
    ranked = sorted(
        (a for a in people if getattr(a, side)), key=lambda a: (-getattr(a, side), a.name.casefold(), a.member_id)
    )
    return [
        schemas.RankedMember(
            member_id=a.member_id, name=a.name, minutes=getattr(a, side), hours=minutes_to_hours(getattr(a, side))
        )
        for a in ranked[:TOP_MEMBERS]
    ]


async def _corrections(conn: AsyncConnection, organisation_id: int, period: Period) -> list[schemas.Correction]:
    original = transactions.alias("original")
    rows = await conn.execute(
        select(
            transactions.c.id,
            transactions.c.occurred_on,
            transactions.c.reverses_id,
            transactions.c.description,
            original.c.occurred_on.label("reverses_occurred_on"),
            original.c.kind.label("reverses_kind"),
            _CREDIT.label("credit"),
        )
        .select_from(
            transactions.join(original, original.c.id == transactions.c.reverses_id).join(
                postings, postings.c.transaction_id == transactions.c.id
            )
        )
        .where(
            transactions.c.organisation_id == organisation_id,
            transactions.c.kind == TransactionKind.REVERSAL.value,
            transactions.c.occurred_on.between(period.start, period.end),
        )
        .group_by(
            transactions.c.id,
            transactions.c.occurred_on,
            transactions.c.reverses_id,
            transactions.c.description,
            original.c.occurred_on,
            original.c.kind,
        )
        .order_by(transactions.c.occurred_on, transactions.c.id)
    )
    return [
        schemas.Correction(
            transaction_id=row.id,
            occurred_on=row.occurred_on,
            reverses_id=row.reverses_id,
            reverses_occurred_on=row.reverses_occurred_on,
            reverses_kind=row.reverses_kind,
            minutes=int(row.credit),
            hours=minutes_to_hours(int(row.credit)),
            description=row.description,
        )
        for row in rows
    ]


@dataclass(frozen=True)
class _StoredMonth:
    exchanges: int
    minutes: int
    active_members: int
    social_value_pence: int | None
    close_id: int | None
    closed_through: dt.date


async def _stored_months(conn: AsyncConnection, organisation_id: int, last: dt.date) -> dict[dt.date, _StoredMonth]:
    """The headline figures of every closed month up to ``last`` (few rows: one per month)."""
    rows = await conn.execute(
        select(
            period_closes.c.month,
            period_closes.c.exchanges,
            period_closes.c.minutes_exchanged,
            period_closes.c.active_members,
            period_closes.c.social_value_pence,
            period_closes.c.id,
            period_closes.c.closed_through,
        ).where(period_closes.c.organisation_id == organisation_id, period_closes.c.month <= last)
    )
    return {row.month: _StoredMonth(*row[1:]) for row in rows}


def _month_of(conn: AsyncConnection, column: Any) -> Any:
    if conn.dialect.name == "postgresql":
        return func.to_char(column, "YYYY-MM")
    return func.strftime("%Y-%m", column)


async def _trend(
    conn: AsyncConnection,
    organisation_id: int,
    last: dt.date,
    stored: dict[dt.date, _StoredMonth],
    known: dict[dt.date, _StoredMonth],
) -> list[schemas.TrendMonth]:
    """Closed months from their stored figures, ``known`` ones as given, the rest from the ledger."""
    stored = {**stored, **known}
    months = [add_months(last, -n) for n in range(TREND_MONTHS - 1, -1, -1)]
    figures = {
        month_label(m): [stored[m].minutes, stored[m].exchanges, stored[m].active_members]
        for m in months
        if m in stored
    }
    live = [m for m in months if m not in stored]
    if live:
        start, end = live[0], month_end(live[-1])
        agency_id = next(
            iter(
                await conn.execute(
                    select(accounts.c.id).where(
                        accounts.c.organisation_id == organisation_id, accounts.c.kind == AccountKind.AGENCY.value
                    )
                )
            )
        ).id
        each = _per_transaction(
            organisation_id, start, end, agency_id, _month_of(conn, transactions.c.occurred_on).label("m")
        )
        computed: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for row in await conn.execute(
            select(
                each.c.m,
                each.c.kind,
                each.c.reverses_kind,
                func.count().label("n"),
                func.sum(each.c.credit).label("credit"),
            ).group_by(each.c.m, each.c.kind, each.c.reverses_kind)
        ):
            if row.kind in EXCHANGE_KINDS:
                computed[row.m][0] += int(row.credit)
                computed[row.m][1] += row.n
            elif row.kind == TransactionKind.REVERSAL.value and row.reverses_kind in EXCHANGE_KINDS:
                computed[row.m][0] -= int(row.credit)
        month = _month_of(conn, postings.c.occurred_on)
        for row in await conn.execute(
            select(month.label("m"), func.count(distinct(postings.c.account_id)).label("active"))
            .select_from(
                transactions.join(postings, postings.c.transaction_id == transactions.c.id).join(
                    accounts, accounts.c.id == postings.c.account_id
                )
            )
            .where(
                transactions.c.organisation_id == organisation_id,
                transactions.c.occurred_on.between(start, end),
                _IS_EXCHANGE,
                accounts.c.kind == AccountKind.MEMBER.value,
            )
            .group_by(month)
        ):
            computed[row.m][2] = row.active
        for m in live:
            figures[month_label(m)] = computed.get(month_label(m), [0, 0, 0])
    return [
        schemas.TrendMonth(
            month=label, minutes=minutes, hours=minutes_to_hours(minutes), exchanges=exchanges, active_members=active
        )
        for label, (minutes, exchanges, active) in sorted(figures.items())
    ]


def _social_value(
    period: Period, net_minutes: int, stored: dict[dt.date, _StoredMonth], rate: Rate | None
) -> tuple[schemas.SocialValue, int | None]:
    """Closed months keep the value they were closed with; the rest are valued at the current rate."""
    closed = [stored[m] for m in period.months() if m in stored]
    open_minutes = net_minutes - sum(m.minutes for m in closed)
    closed_values = [m.social_value_pence for m in closed if m.social_value_pence is not None]
    pence: int | None = None
    if rate is not None:
        pence = value_in_pence(open_minutes, rate.amount_pence) + sum(closed_values)
    elif closed_values and open_minutes == 0:
        pence = sum(closed_values)
    currency = rate.currency if rate is not None else "GBP"
    if rate is None:
        basis = "No hourly value has been set yet: a coordinator can set one, with its basis, in the settings."
    else:
        basis = (
            f"Estimate: net hours exchanged x {money(rate.amount_pence, rate.currency).amount} {rate.currency} an "
            f"hour, the value set on {rate.set_on.isoformat()}: {rate.basis}"
        )
        if closed:
            basis += ". Closed months are valued at the rate they were closed with"
    return (
        schemas.SocialValue(
            rate=money(rate.amount_pence, rate.currency) if rate is not None else None,
            basis=basis,
            set_on=rate.set_on if rate is not None else None,
            value=money(pence, currency) if pence is not None else None,
        ),
        pence,
    )


def anonymised(report: schemas.MonthlyReport) -> schemas.MonthlyReport:
    """The same report with every member's name replaced by their member number."""
    body = report.model_dump(by_alias=True)
    for section in ("new_members", "dormant_members", "never_active", "top_givers", "top_receivers", "members"):
        for row in body[section]:
            row["name"] = member_number(row["member_id"])
    return schemas.MonthlyReport.model_validate(body)


def member_number(member_id: int) -> str:
    return f"Member {member_id}"
