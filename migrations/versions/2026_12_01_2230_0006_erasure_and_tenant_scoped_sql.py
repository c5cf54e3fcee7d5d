"""Erasure and tenant-scoped SQL.

1. The append-only guard on transactions lets exactly one change through: a
   description replaced by the erasure marker, every other column unchanged
   (UK GDPR erasure of a member who has left; see docs/architecture.md, "Erasure").
   Postings stay untouchable, so no balance or report can move.
2. Every statement inside the database's own functions names its organisation, as
   a distributed database (Citus) routes by it: ``timebank_post``'s balance update
   and the zero-sum check of ``timebank_check_balanced``.
3. The foreign key from accounts to members includes the organisation, like every
   other foreign key between tenant tables.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 22:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Also in timebank/privacy/service.py (a migration does not import the app's code).
ERASED_DESCRIPTION = "[removed: personal data erased]"

# Every column of transactions as of this revision but the description. A migration that
# adds a column to transactions must add it here (on SQLite) too: tests/operations/
# test_erasure.py tries to change each column and fails if one gets through.
_FIXED_COLUMNS = (
    "id",
    "organisation_id",
    "kind",
    "occurred_on",
    "recorded_at",
    "recorded_by_user_id",
    "category_id",
    "idempotency_key",
    "request_fingerprint",
    "reverses_id",
)

_REFUSE_CHANGE_POSTGRES = f"""
CREATE OR REPLACE FUNCTION timebank_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- The one change allowed: erasing a description (nothing else on the row may differ).
    IF TG_OP = 'UPDATE' AND TG_TABLE_NAME = 'transactions' THEN
        IF NEW.description = '{ERASED_DESCRIPTION}'
           AND to_jsonb(NEW) - 'description' = to_jsonb(OLD) - 'description' THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'the ledger is append-only: % on % is refused (post a reversal instead)',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END $$
"""
_REFUSE_CHANGE_POSTGRES_0001 = """
CREATE OR REPLACE FUNCTION timebank_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on % is refused (post a reversal instead)',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END $$
"""

_CHECK_BALANCED = """
CREATE OR REPLACE FUNCTION timebank_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    txn_id bigint;
    total numeric;
    legs integer;
BEGIN
    -- Each branch is planned only when taken, so NEW needs only the field it uses.
    IF TG_TABLE_NAME = 'postings' THEN
        txn_id := NEW.transaction_id;
    ELSE
        txn_id := NEW.id;
    END IF;
    SELECT coalesce(sum(minutes), 0), count(*) INTO total, legs
      FROM postings WHERE organisation_id = NEW.organisation_id AND transaction_id = txn_id;
    IF legs < 2 OR total <> 0 THEN
        RAISE EXCEPTION 'transaction % is unbalanced: % postings summing to % minutes',
            txn_id, legs, total USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$
"""
_CHECK_BALANCED_0001 = _CHECK_BALANCED.replace(
    "WHERE organisation_id = NEW.organisation_id AND transaction_id = txn_id", "WHERE transaction_id = txn_id"
)

# timebank_post is patched rather than restated, so that changes other migrations make to
# it survive: only its balance update gains the organisation.
_POST_UNSCOPED = "WHERE a.id = leg.id;"
_POST_SCOPED = "WHERE a.organisation_id = p_organisation_id AND a.id = leg.id;"


def _sqlite_update_guard(allow_erasure: bool) -> list[str]:
    unchanged = " AND ".join(f"NEW.{column} IS OLD.{column}" for column in _FIXED_COLUMNS)
    when = f"WHEN NOT (NEW.description = '{ERASED_DESCRIPTION}' AND {unchanged})" if allow_erasure else ""
    return [
        "DROP TRIGGER IF EXISTS transactions_append_only_update",
        f"""
        CREATE TRIGGER transactions_append_only_update BEFORE UPDATE ON transactions {when}
        BEGIN
            SELECT RAISE(ABORT,
                'the ledger is append-only: UPDATE on transactions is refused (post a reversal instead)');
        END
        """,
    ]


def _patch_timebank_post(old: str, new: str) -> None:
    bind = op.get_bind()
    definition = bind.exec_driver_sql("SELECT pg_get_functiondef('timebank_post'::regproc)").scalar()
    if definition.count(old) != 1:
        raise RuntimeError(f"timebank_post does not contain {old!r} exactly once: update migration 0006")
    op.execute(definition.replace(old, new))


def _composite_member_key() -> None:
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.create_unique_constraint(op.f("uq_members_organisation_id_id"), ["organisation_id", "id"])
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint("fk_accounts_member_id_members", type_="foreignkey")
        batch_op.create_foreign_key(
            op.f("fk_accounts_organisation_id_member_id_members"),
            "members",
            ["organisation_id", "member_id"],
            ["organisation_id", "id"],
        )


def _single_member_key() -> None:
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_constraint("fk_accounts_organisation_id_member_id_members", type_="foreignkey")
        batch_op.create_foreign_key(op.f("fk_accounts_member_id_members"), "members", ["member_id"], ["id"])
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_members_organisation_id_id"), type_="unique")


def upgrade() -> None:
    _composite_member_key()
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_REFUSE_CHANGE_POSTGRES)
        op.execute(_CHECK_BALANCED)
        _patch_timebank_post(_POST_UNSCOPED, _POST_SCOPED)
    else:
        for statement in _sqlite_update_guard(allow_erasure=True):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _patch_timebank_post(_POST_SCOPED, _POST_UNSCOPED)
        op.execute(_CHECK_BALANCED_0001)
        op.execute(_REFUSE_CHANGE_POSTGRES_0001)
    else:
        for statement in _sqlite_update_guard(allow_erasure=False):
            op.execute(statement)
    _single_member_key()
