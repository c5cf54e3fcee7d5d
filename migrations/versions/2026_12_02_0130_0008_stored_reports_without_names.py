"""Stored reports of closed months keep no one's name or words.

From this revision a closed month's stored report refers to members by number and to
corrections by transaction id; names and descriptions are filled in when it is read
(``timebank/reports/stored_reports.py``), so erasing a member leaves nothing of them in a
closed month. This takes the names and descriptions out of the reports closed before it.
The figures are not touched. The append-only guard on period_closes is lifted for this
one statement and put back as it was.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:30:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As in timebank/reports/stored_reports.py (a migration does not import the app's code).
_PERSONAL = {"member_id": "name", "transaction_id": "description"}

# Revision 0007's guard on SQLite, recreated word for word.
_SQLITE_UPDATE_GUARD = (
    "CREATE TRIGGER period_closes_kept_update BEFORE UPDATE ON period_closes BEGIN "
    "SELECT RAISE(ABORT, 'closed months and rate history are kept as they are: UPDATE on period_closes is refused'); "
    "END"
)

period_closes = sa.table("period_closes", sa.column("id", sa.BigInteger()), sa.column("report", sa.JSON()))


def _without_personal_data(report: Any) -> Any:
    if isinstance(report, list):
        return [_without_personal_data(item) for item in report]
    if isinstance(report, dict):
        dropped = {text for ref, text in _PERSONAL.items() if ref in report}
        return {key: _without_personal_data(value) for key, value in report.items() if key not in dropped}
    return report


def _fill(value: Any, found: dict[str, dict[int, str]]) -> Any:
    if isinstance(value, list):
        return [_fill(item, found) for item in value]
    if isinstance(value, dict):
        filled = {key: _fill(item, found) for key, item in value.items()}
        for ref, text in _PERSONAL.items():
            if ref in value:
                filled[text] = found[ref].get(value[ref], "")
        return filled
    return value


def _rewrite_reports(change: Any) -> None:
    """Apply ``change(report)`` to every stored report, with the append-only guard lifted."""
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    op.execute(
        "ALTER TABLE period_closes DISABLE TRIGGER period_closes_kept"
        if postgres
        else "DROP TRIGGER period_closes_kept_update"
    )
    for close_id, report in bind.execute(sa.select(period_closes.c.id, period_closes.c.report)).all():
        bind.execute(sa.update(period_closes).where(period_closes.c.id == close_id).values(report=change(report)))
    op.execute("ALTER TABLE period_closes ENABLE TRIGGER period_closes_kept" if postgres else _SQLITE_UPDATE_GUARD)


def upgrade() -> None:
    _rewrite_reports(_without_personal_data)


def downgrade() -> None:
    # Revision 0007 reads names and descriptions from the stored report: put today's back.
    bind = op.get_bind()
    found = {
        "member_id": dict(bind.execute(sa.text("SELECT id, display_name FROM members")).all()),
        "transaction_id": dict(bind.execute(sa.text("SELECT id, description FROM transactions")).all()),
    }
    _rewrite_reports(lambda report: _fill(report, found))
