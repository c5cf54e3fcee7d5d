"""The ledger's refusals as problems a page words for people (templates/macros/refusals.html).

A page hands the refusal and the ids of its fields; the problem names its kind, the field
it is about (for the error summary's link) and the details the words need. The refusal
itself comes from the ledger (timebank/ledger/refusals.py), as it does for the API.
"""

import datetime as dt
from typing import Any

from timebank.ledger import errors


def ledger_problem(refusal: errors.LedgerError, fields: dict[str, str]) -> dict[str, Any]:
    """``fields`` maps "amount", "date", "giver", "category" to the ids of the page's fields."""

    def problem(kind: str, field: str, **details: Any) -> dict[str, Any]:
        return {"kind": kind, "field": field, "href": f"#{fields.get(field, field)}", **details}

    extra = refusal.extra
    match refusal:
        case errors.InsufficientBalance():
            return problem(
                "below_minimum",
                "amount",
                balance=extra["balance_minutes"],
                minimum=extra["min_balance_minutes"],
                requested=extra["requested_minutes"],
            )
        case errors.FutureDate():
            return problem("future_date", "date", today=_date(extra.get("today")))
        case errors.PeriodClosed():
            return problem("period_closed", "date", closed_through=_date(extra.get("books_closed_through")))
        case errors.UnknownCategory():
            return problem("unknown_category", "category")
        case errors.UnknownAccount() | errors.AccountInactive():
            return problem("person_unavailable", "giver")
        case errors.IdempotencyConflict():
            return problem("already_recorded", "amount")
        case _:
            return problem("not_recorded", "amount")


def _date(iso: str | None) -> dt.date | None:
    return dt.date.fromisoformat(iso) if iso else None
