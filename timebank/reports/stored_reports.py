"""A closed month's report as stored: its figures for good, but no one's name or words.

A stored report refers to people by member number and to corrections by transaction id;
their names and descriptions are filled in from the members and transactions tables when
the report is read. So erasing a member who has left (``timebank.privacy``) leaves nothing
of them in any closed month without any exception to the append-only guard on
``period_closes``, and a member who changes their name is not shown under the old one.
The figures, categories and rates stay exactly as they were at the close.
"""

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.models import Member, Transaction

members = Member.__table__
transactions = Transaction.__table__

# Which key of a stored object names what: objects with a member_id carry that member's
# name; objects with a transaction_id (the corrections) carry its description.
_PERSONAL = {"member_id": "name", "transaction_id": "description"}


def without_personal_data(report: Any) -> Any:
    """The report's JSON to store: every name and description taken out."""
    if isinstance(report, list):
        return [without_personal_data(item) for item in report]
    if isinstance(report, dict):
        dropped = {text for ref, text in _PERSONAL.items() if ref in report}
        return {key: without_personal_data(value) for key, value in report.items() if key not in dropped}
    return report


async def with_personal_data(conn: AsyncConnection, organisation_id: int, stored: dict[str, Any]) -> dict[str, Any]:
    """A stored report with today's names and descriptions put back (an erased member's is
    the erasure marker, as everywhere else)."""
    wanted: dict[str, set[int]] = {ref: set() for ref in _PERSONAL}
    _collect(stored, wanted)
    names = dict(
        (
            await conn.execute(
                select(members.c.id, members.c.display_name).where(
                    members.c.organisation_id == organisation_id, members.c.id.in_(wanted["member_id"])
                )
            )
        ).all()
    )
    descriptions = dict(
        (
            await conn.execute(
                select(transactions.c.id, transactions.c.description).where(
                    transactions.c.organisation_id == organisation_id, transactions.c.id.in_(wanted["transaction_id"])
                )
            )
        ).all()
    )
    return _fill(stored, {"member_id": names, "transaction_id": descriptions})


def _collect(value: Any, wanted: dict[str, set[int]]) -> None:
    if isinstance(value, list):
        for item in value:
            _collect(item, wanted)
    elif isinstance(value, dict):
        for ref in _PERSONAL:
            if ref in value:
                wanted[ref].add(value[ref])
        for item in value.values():
            _collect(item, wanted)


def _fill(value: Any, found: dict[str, dict[int, str]]) -> Any:
    if isinstance(value, list):
        return [_fill(item, found) for item in value]
    if isinstance(value, dict):
        filled = {key: _fill(item, found) for key, item in value.items()}
        for ref, text in _PERSONAL.items():
            if ref in value:
                filled[text] = found[ref][value[ref]]
        return filled
    return value
