"""What the three pages that post help to the ledger share ("Record help I received", "Log an
exchange", "Log a group activity"): the fields a person types and how each is checked
before the ledger sees it. The ledger's own rules (minimum balance, dates in the future or in
a closed month, who may post) are not here: the ledger refuses, and the page words its refusal
(``web/ledger_refusals.py``).
"""

import datetime as dt
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from timebank.db import Database
from timebank.ledger.posting import MAX_DESCRIPTION
from timebank.orgs.service import active_category_names
from timebank.web.context import PageContext
from timebank.web.people import PersonField


class EntryForm(BaseModel):
    """The fields of an entry: its key, who gave, how long, when, and what."""

    model_config = ConfigDict(populate_by_name=True)

    idempotency_key: str = ""
    giver: str = ""
    giver_account_id: str = ""
    giver_choosing: str = ""
    hours: str = ""
    minutes: str = ""
    day: str = Field("", alias="occurred_on-day")
    month: str = Field("", alias="occurred_on-month")
    year: str = Field("", alias="occurred_on-year")
    category: str = ""
    description: str = ""


FormT = TypeVar("FormT", bound=EntryForm)


def dated(form: FormT, day: dt.date) -> FormT:
    return form.model_copy(update={"day": str(day.day), "month": str(day.month), "year": str(day.year)})


def _whole_number(text: str) -> int | None:
    text = text.strip()
    if not text:
        return 0
    return int(text) if text.isdigit() and len(text) <= 6 else None


def minutes_typed(hours_text: str, minutes_text: str) -> tuple[int | None, dict[str, Any] | None]:
    """An hours and a minutes field as minutes, or the problem to show."""
    hours, minutes = _whole_number(hours_text), _whole_number(minutes_text)
    if hours is None:
        return None, {"kind": "hours_not_number", "field": "amount", "href": "#hours"}
    if minutes is None:
        return None, {"kind": "minutes_not_number", "field": "amount", "href": "#minutes"}
    if minutes > 59:
        return None, {"kind": "minutes_too_many", "field": "amount", "href": "#minutes"}
    if hours * 60 + minutes == 0:
        return None, {"kind": "no_time", "field": "amount", "href": "#hours"}
    return hours * 60 + minutes, None


def date_typed(form: EntryForm) -> tuple[dt.date | None, dict[str, Any] | None]:
    """The day, month and year fields as a date, or the problem to show."""
    parts = (form.day.strip(), form.month.strip(), form.year.strip())
    if not any(parts):
        return None, {"kind": "no_date", "field": "date", "href": "#occurred_on-day"}
    try:
        day, month, year = (int(part) for part in parts)
        return dt.date(year, month, day), None
    except ValueError:
        return None, {"kind": "date_not_real", "field": "date", "href": "#occurred_on-day"}


def person_problem(name: str, field: PersonField) -> dict[str, Any]:
    return {"kind": f"{name}_{field.problem}", "field": name, "href": f"#{name}", "typed": field.typed}


async def check_when_what(db: Database, ctx: PageContext, form: EntryForm) -> tuple[dt.date | None, list[dict]]:
    """The date, category and description, and what is wrong with them."""
    problems = []
    occurred_on, problem = date_typed(form)
    problems += [problem] if problem else []
    categories = await active_category_names(db, ctx.organisation_id)
    if categories and form.category not in categories:
        problems.append({"kind": "no_category", "field": "category", "href": "#category"})
    if not form.description.strip():
        problems.append({"kind": "no_description", "field": "description", "href": "#description"})
    elif len(form.description.strip()) > MAX_DESCRIPTION:
        problems.append(
            {"kind": "description_too_long", "field": "description", "href": "#description", "limit": MAX_DESCRIPTION}
        )
    return occurred_on, problems
