"""The history of every change to people and settings (``changes``).

Append-only like the ledger: the database refuses UPDATE and DELETE, with one
exception, as for transactions in 0006: erasure may replace ``actor_name``,
``before_state`` or ``after_state`` by the erasure marker, every other column
unchanged (see docs/architecture.md, "History").

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Also in timebank/history/service.py (a migration does not import the app's code). The
# JSON columns hold it as a JSON string, hence the quotes there.
ERASED = "[removed: personal data erased]"
ERASABLE = ("actor_name", "before_state", "after_state")
# Every other column of changes. A migration that adds a column must add it here (SQLite)
# too: tests/history/test_history_guards.py tries to change each column.
_FIXED_COLUMNS = ("id", "organisation_id", "changed_at", "actor_user_id", "kind", "member_id", "transaction_id")

_ERASABLE_ARRAY = ",".join(ERASABLE)
_GUARD_POSTGRES = f"""
CREATE FUNCTION timebank_keep_history() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The one change allowed: erasure replacing personal data by the marker.
    IF TG_OP = 'UPDATE' THEN
        IF to_jsonb(NEW) - '{{{_ERASABLE_ARRAY}}}'::text[] = to_jsonb(OLD) - '{{{_ERASABLE_ARRAY}}}'::text[]
           AND (NEW.actor_name IS NOT DISTINCT FROM OLD.actor_name OR NEW.actor_name = '{ERASED}')
           AND (NEW.before_state::text IS NOT DISTINCT FROM OLD.before_state::text
                OR NEW.before_state::text = '"{ERASED}"')
           AND (NEW.after_state::text IS NOT DISTINCT FROM OLD.after_state::text
                OR NEW.after_state::text = '"{ERASED}"') THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'the history is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END $$
"""


def _sqlite_guards() -> list[str]:
    unchanged = " AND ".join(f"NEW.{column} IS OLD.{column}" for column in _FIXED_COLUMNS)
    erasable = " AND ".join(
        f"(NEW.{column} IS OLD.{column} OR NEW.{column} = '{ERASED}')"
        if column == "actor_name"
        else f"(NEW.{column} IS OLD.{column} OR NEW.{column} = '\"{ERASED}\"')"
        for column in ERASABLE
    )
    return [
        f"CREATE TRIGGER changes_kept_update BEFORE UPDATE ON changes WHEN NOT ({unchanged} AND {erasable}) "
        "BEGIN SELECT RAISE(ABORT, 'the history is append-only: UPDATE on changes is refused'); END",
        "CREATE TRIGGER changes_kept_delete BEFORE DELETE ON changes "
        "BEGIN SELECT RAISE(ABORT, 'the history is append-only: DELETE on changes is refused'); END",
    ]


def upgrade() -> None:
    op.create_table(
        "changes",
        sa.Column("id", ID, nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_user_id", ID, nullable=True),
        sa.Column("actor_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("member_id", ID, nullable=True),
        sa.Column("transaction_id", ID, nullable=True),
        sa.Column("before_state", sa.JSON(), nullable=True),
        sa.Column("after_state", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["actor_user_id"], ["users.id"], name=op.f("fk_changes_actor_user_id_users")),
        sa.ForeignKeyConstraint(
            ["organisation_id", "member_id"],
            ["members.organisation_id", "members.id"],
            name=op.f("fk_changes_organisation_id_member_id_members"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id", "transaction_id"],
            ["transactions.organisation_id", "transactions.id"],
            name=op.f("fk_changes_organisation_id_transaction_id_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_changes_organisation_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_changes")),
    )
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.create_index("ix_changes_organisation_id_id", ["organisation_id", "id"], unique=False)
        batch_op.create_index(
            "ix_changes_organisation_id_member_id_id", ["organisation_id", "member_id", "id"], unique=False
        )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_GUARD_POSTGRES)
        op.execute(
            "CREATE TRIGGER changes_kept BEFORE UPDATE OR DELETE ON changes "
            "FOR EACH ROW EXECUTE FUNCTION timebank_keep_history()"
        )
        op.execute(
            "CREATE TRIGGER changes_kept_truncate BEFORE TRUNCATE ON changes "
            "FOR EACH STATEMENT EXECUTE FUNCTION timebank_keep_history()"
        )
    else:
        for statement in _sqlite_guards():
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS changes_kept_truncate ON changes")
        op.execute("DROP TRIGGER IF EXISTS changes_kept ON changes")
        op.execute("DROP FUNCTION IF EXISTS timebank_keep_history()")
    else:
        op.execute("DROP TRIGGER IF EXISTS changes_kept_update")
        op.execute("DROP TRIGGER IF EXISTS changes_kept_delete")
    with op.batch_alter_table("changes", schema=None) as batch_op:
        batch_op.drop_index("ix_changes_organisation_id_member_id_id")
        batch_op.drop_index("ix_changes_organisation_id_id")
    op.drop_table("changes")
