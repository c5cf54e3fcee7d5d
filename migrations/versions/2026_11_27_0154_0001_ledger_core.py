"""The ledger core: organisations, users, members, accounts, categories, transactions, postings.

Also the database's own guards of the ledger contract (see _LEDGER_GUARDS_*).

Revision ID: 0001
Revises:
Create Date: 2026-11-27 01:54:30.949634
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

# PostgreSQL: append-only journal and zero-sum transactions, enforced by the database.
_LEDGER_GUARDS_POSTGRES = [
    """
    CREATE FUNCTION timebank_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the ledger is append-only: % on % is refused (post a reversal instead)',
            TG_OP, TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
    END $$
    """,
    # Runs at commit (deferred), once the whole transaction is written.
    """
    CREATE FUNCTION timebank_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
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
          FROM postings WHERE transaction_id = txn_id;
        IF legs < 2 OR total <> 0 THEN
            RAISE EXCEPTION 'transaction % is unbalanced: % postings summing to % minutes',
                txn_id, legs, total USING ERRCODE = 'check_violation';
        END IF;
        RETURN NULL;
    END $$
    """,
    """
    CREATE CONSTRAINT TRIGGER postings_sum_to_zero AFTER INSERT ON postings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION timebank_check_balanced()
    """,
    """
    CREATE CONSTRAINT TRIGGER transactions_have_balanced_postings AFTER INSERT ON transactions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION timebank_check_balanced()
    """,
    *(
        f"""
        CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION timebank_refuse_change()
        """
        for table in ("transactions", "postings")
    ),
    *(
        f"""
        CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
        FOR EACH STATEMENT EXECUTE FUNCTION timebank_refuse_change()
        """
        for table in ("transactions", "postings")
    ),
]

# SQLite triggers cannot be deferred, so zero-sum is checked by the ledger service
# (all legs in one statement) and by `timebank verify`; append-only is enforced here.
_LEDGER_GUARDS_SQLITE = [
    f"""
    CREATE TRIGGER {table}_append_only_{op_name.lower()} BEFORE {op_name} ON {table}
    BEGIN
        SELECT RAISE(ABORT, 'the ledger is append-only: {op_name} on {table} is refused (post a reversal instead)');
    END
    """
    for table in ("transactions", "postings")
    for op_name in ("UPDATE", "DELETE")
]

_DROP_GUARDS_POSTGRES = [
    "DROP TRIGGER IF EXISTS postings_sum_to_zero ON postings",
    "DROP TRIGGER IF EXISTS transactions_have_balanced_postings ON transactions",
    *(f"DROP TRIGGER IF EXISTS {t}_append_only ON {t}" for t in ("transactions", "postings")),
    *(f"DROP TRIGGER IF EXISTS {t}_no_truncate ON {t}" for t in ("transactions", "postings")),
    "DROP FUNCTION IF EXISTS timebank_check_balanced()",
    "DROP FUNCTION IF EXISTS timebank_refuse_change()",
]
_DROP_GUARDS_SQLITE = [
    f"DROP TRIGGER IF EXISTS {t}_append_only_{o}" for t in ("transactions", "postings") for o in ("update", "delete")
]


def _is_postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "organisations",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("slug", sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("timezone", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("min_balance_minutes", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("books_closed_through", sa.Date(), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("min_balance_minutes <= 0", name=op.f("ck_organisations_min_balance_not_positive")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
        sa.UniqueConstraint("slug", name=op.f("uq_organisations_slug")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("username", sqlmodel.sql.sqltypes.AutoString(length=150), nullable=False),
        sa.Column("password_hash", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("is_site_admin", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "categories",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("organisation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_categories_organisation_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_categories")),
        sa.UniqueConstraint("organisation_id", "id", name=op.f("uq_categories_organisation_id_id")),
        sa.UniqueConstraint("organisation_id", "name", name=op.f("uq_categories_organisation_id_name")),
    )
    op.create_table(
        "members",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("organisation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "role", sa.Enum("member", "staff", "coordinator", name="role", native_enum=False, length=20), nullable=False
        ),
        sa.Column("display_name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("email", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
        sa.Column("joined_on", sa.Date(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_members_organisation_id_organisations")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_members_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
        sa.UniqueConstraint("organisation_id", "user_id", name=op.f("uq_members_organisation_id_user_id")),
    )
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_members_organisation_id"), ["organisation_id"], unique=False)

    op.create_table(
        "accounts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("organisation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "kind", sa.Enum("member", "agency", "pot", name="accountkind", native_enum=False, length=20), nullable=False
        ),
        sa.Column("member_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("balance_minutes", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("min_balance_minutes", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("version", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(kind = 'member') = (member_id IS NOT NULL)", name=op.f("ck_accounts_member_accounts_have_a_member")
        ),
        sa.CheckConstraint(
            "min_balance_minutes IS NULL OR balance_minutes >= min_balance_minutes",
            name=op.f("ck_accounts_balance_not_below_limit"),
        ),
        sa.CheckConstraint("version >= 0", name=op.f("ck_accounts_version_not_negative")),
        sa.ForeignKeyConstraint(["member_id"], ["members.id"], name=op.f("fk_accounts_member_id_members")),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_accounts_organisation_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("member_id", name=op.f("uq_accounts_member_id")),
        sa.UniqueConstraint("organisation_id", "id", name=op.f("uq_accounts_organisation_id_id")),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index(
            "uq_accounts_organisation_id_kind_shared",
            ["organisation_id", "kind"],
            unique=True,
            sqlite_where=sa.text("kind != 'member'"),
            postgresql_where=sa.text("kind != 'member'"),
        )

    op.create_table(
        "transactions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("organisation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "exchange",
                "group",
                "donation",
                "grant",
                "opening_balance",
                "reversal",
                name="transactionkind",
                native_enum=False,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by_user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("description", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("category_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("request_fingerprint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("reverses_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.CheckConstraint(
            "(kind = 'reversal') = (reverses_id IS NOT NULL)",
            name=op.f("ck_transactions_reversals_name_their_original"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id", "category_id"],
            ["categories.organisation_id", "categories.id"],
            name=op.f("fk_transactions_organisation_id_category_id_categories"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id", "reverses_id"],
            ["transactions.organisation_id", "transactions.id"],
            name=op.f("fk_transactions_organisation_id_reverses_id_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_transactions_organisation_id_organisations")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_user_id"], ["users.id"], name=op.f("fk_transactions_recorded_by_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transactions")),
        sa.UniqueConstraint("organisation_id", "id", name=op.f("uq_transactions_organisation_id_id")),
        sa.UniqueConstraint(
            "organisation_id", "idempotency_key", name=op.f("uq_transactions_organisation_id_idempotency_key")
        ),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_transactions_reverses_id")),
    )
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_transactions_organisation_id_occurred_on", ["organisation_id", "occurred_on"], unique=False
        )

    op.create_table(
        "postings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("organisation_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("transaction_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("minutes", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("balance_after", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("account_version", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.CheckConstraint("minutes <> 0", name=op.f("ck_postings_minutes_not_zero")),
        sa.ForeignKeyConstraint(
            ["organisation_id", "account_id"],
            ["accounts.organisation_id", "accounts.id"],
            name=op.f("fk_postings_organisation_id_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id", "transaction_id"],
            ["transactions.organisation_id", "transactions.id"],
            name=op.f("fk_postings_organisation_id_transaction_id_transactions"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_postings_organisation_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_postings")),
        sa.UniqueConstraint("account_id", "account_version", name=op.f("uq_postings_account_id_account_version")),
    )
    with op.batch_alter_table("postings", schema=None) as batch_op:
        batch_op.create_index("ix_postings_account_id_occurred_on", ["account_id", "occurred_on"], unique=False)
        batch_op.create_index("ix_postings_transaction_id", ["transaction_id"], unique=False)

    for statement in _LEDGER_GUARDS_POSTGRES if _is_postgres() else _LEDGER_GUARDS_SQLITE:
        op.execute(statement)


def downgrade() -> None:
    for statement in _DROP_GUARDS_POSTGRES if _is_postgres() else _DROP_GUARDS_SQLITE:
        op.execute(statement)
    with op.batch_alter_table("postings", schema=None) as batch_op:
        batch_op.drop_index("ix_postings_transaction_id")
        batch_op.drop_index("ix_postings_account_id_occurred_on")

    op.drop_table("postings")
    with op.batch_alter_table("transactions", schema=None) as batch_op:
        batch_op.drop_index("ix_transactions_organisation_id_occurred_on")

    op.drop_table("transactions")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_accounts_organisation_id_kind_shared",
            sqlite_where=sa.text("kind != 'member'"),
            postgresql_where=sa.text("kind != 'member'"),
        )

    op.drop_table("accounts")
    with op.batch_alter_table("members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_members_organisation_id"))

    op.drop_table("members")
    op.drop_table("categories")
    op.drop_table("users")
    op.drop_table("organisations")
