"""The posting functions tell the planner they return a row per leg (two), not a thousand.

A write's statement (ledger/postgres_function.py) joins the rows of ``timebank_post_as``
with ``accounts`` and ``members`` for the names its answer carries. PostgreSQL plans a
function's result at its declared ``ROWS``, 1,000 by default, and for a thousand rows
it read every account and every member of the organisation into hash tables, on every
write: 0.5 to 0.7 ms of the database's CPU per write with 1,000 members (measured with
scripts/benchmark/statement_cost.py, --revision 0012 against 0013), and growing with the
organisation. Told two (an exchange's legs), it looks each one up by its key.

Only the planner's estimate changes: the functions' bodies and results are as they were.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 19:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# As of revision 0012 (whose _LEGS this repeats: a migration keeps meaning what it meant).
_LEGS = "bigint, text, bigint[], bigint[], text[], date, text, text, bigint, text, text, timestamptz"
_FUNCTIONS = (f"timebank_post({_LEGS})", f"timebank_post_as(bigint, bigint, {_LEGS})")


def _estimate(rows: int) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite has no stored functions: its writer joins in Python
    for function in _FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function} ROWS {rows}")


def upgrade() -> None:
    _estimate(2)


def downgrade() -> None:
    _estimate(1000)  # PostgreSQL's default, which the functions were created with
