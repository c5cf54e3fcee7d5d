"""Correction requests ("Report a mistake") and their answers.

A member reports an entry of their own account as wrong; staff or a coordinator
answer it. Both tables are append-only, like the ledger: the database refuses to
delete their rows or change them, with one exception, as for transactions (0006):
erasing a member who has left replaces the words of their requests, and of the
answers to them, with the erasure marker, every other column unchanged.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 01:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# Also in timebank/privacy/service.py (a migration does not import the app's code).
ERASED = "[removed: personal data erased]"
# The words erasure may blank, per table; every other column is fixed.
ERASABLE = {
    "correction_requests": ("what_is_wrong", "what_it_should_be"),
    "correction_answers": ("answer",),
}
FIXED = {
    "correction_requests": (
        "id", "organisation_id", "transaction_id", "account_id", "member_id", "requested_by_user_id",
        "created_at", "idempotency_key", "request_fingerprint",
    ),
    "correction_answers": (
        "id", "organisation_id", "correction_id", "reversal_id", "answered_by_user_id", "answered_at",
        "idempotency_key", "request_fingerprint",
    ),
}  # fmt: skip

_GUARD_FUNCTION_POSTGRES = f"""
CREATE FUNCTION timebank_keep_corrections() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The one change allowed: erasure blanking the words (nothing else on the row may differ).
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'correction_requests' THEN
        IF NEW.what_is_wrong = '{ERASED}'
           AND (NEW.what_it_should_be IS NULL OR NEW.what_it_should_be = '{ERASED}')
           AND to_jsonb(NEW) - 'what_is_wrong' - 'what_it_should_be'
               = to_jsonb(OLD) - 'what_is_wrong' - 'what_it_should_be' THEN
            RETURN NEW;
        END IF;
    END IF;
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'correction_answers' THEN
        IF NEW.answer = '{ERASED}' AND to_jsonb(NEW) - 'answer' = to_jsonb(OLD) - 'answer' THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'correction requests and their answers are kept as they are: % on % is refused',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END $$
"""


def _sqlite_guards(table: str) -> list[str]:
    refuse = (
        f"SELECT RAISE(ABORT, 'correction requests and their answers are kept as they are: %s on {table} is refused')"
    )
    words = ERASABLE[table]
    not_erased = " OR ".join(f"(NEW.{column} IS NOT NULL AND NEW.{column} != '{ERASED}')" for column in words)
    return [
        f"CREATE TRIGGER {table}_kept_delete BEFORE DELETE ON {table} BEGIN {refuse % 'DELETE'}; END",
        f"CREATE TRIGGER {table}_kept_update BEFORE UPDATE OF {', '.join(FIXED[table])} ON {table} "
        f"BEGIN {refuse % 'UPDATE'}; END",
        f"CREATE TRIGGER {table}_kept_words BEFORE UPDATE OF {', '.join(words)} ON {table} "
        f"WHEN {not_erased} BEGIN {refuse % 'UPDATE'}; END",
    ]


def _guards(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return [_GUARD_FUNCTION_POSTGRES] + [
            f"CREATE TRIGGER {table}_kept BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION timebank_keep_corrections()"
            for table in ERASABLE
        ]
    return [statement for table in ERASABLE for statement in _sqlite_guards(table)]


def _drop_guards(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {table}_kept ON {table}" for table in ERASABLE] + [
            "DROP FUNCTION IF EXISTS timebank_keep_corrections()"
        ]
    return [
        f"DROP TRIGGER IF EXISTS {table}_kept_{what}" for table in ERASABLE for what in ("delete", "update", "words")
    ]


def upgrade() -> None:
    op.create_table(
        "correction_requests",
        sa.Column("id", ID, nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("transaction_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("member_id", ID, nullable=False),
        sa.Column("requested_by_user_id", ID, nullable=False),
        sa.Column("what_is_wrong", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("what_it_should_be", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("request_fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id", "account_id"],
            ["accounts.organisation_id", "accounts.id"],
            name=op.f("fk_correction_requests_organisation_id_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id", "member_id"],
            ["members.organisation_id", "members.id"],
            name=op.f("fk_correction_requests_organisation_id_member_id_members"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id", "transaction_id"],
            ["transactions.organisation_id", "transactions.id"],
            name=op.f("fk_correction_requests_organisation_id_transaction_id_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_correction_requests_organisation_id_organisations")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_user_id"], ["users.id"], name=op.f("fk_correction_requests_requested_by_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_correction_requests")),
        sa.UniqueConstraint("organisation_id", "id", name=op.f("uq_correction_requests_organisation_id_id")),
        sa.UniqueConstraint(
            "organisation_id", "idempotency_key", name=op.f("uq_correction_requests_organisation_id_idempotency_key")
        ),
    )
    with op.batch_alter_table("correction_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_correction_requests_organisation_id_created_at", ["organisation_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_correction_requests_organisation_id_transaction_id", ["organisation_id", "transaction_id"], unique=False
        )

    op.create_table(
        "correction_answers",
        sa.Column("id", ID, nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("correction_id", ID, nullable=False),
        sa.Column("answer", sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column("reversal_id", ID, nullable=True),
        sa.Column("answered_by_user_id", ID, nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("request_fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["answered_by_user_id"], ["users.id"], name=op.f("fk_correction_answers_answered_by_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id", "correction_id"],
            ["correction_requests.organisation_id", "correction_requests.id"],
            name=op.f("fk_correction_answers_organisation_id_correction_id_correction_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id", "reversal_id"],
            ["transactions.organisation_id", "transactions.id"],
            name=op.f("fk_correction_answers_organisation_id_reversal_id_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_correction_answers_organisation_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_correction_answers")),
        sa.UniqueConstraint(
            "organisation_id", "correction_id", name=op.f("uq_correction_answers_organisation_id_correction_id")
        ),
        sa.UniqueConstraint(
            "organisation_id", "idempotency_key", name=op.f("uq_correction_answers_organisation_id_idempotency_key")
        ),
    )
    for statement in _guards(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in _drop_guards(op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_table("correction_answers")
    with op.batch_alter_table("correction_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_correction_requests_organisation_id_transaction_id")
        batch_op.drop_index("ix_correction_requests_organisation_id_created_at")
    op.drop_table("correction_requests")
