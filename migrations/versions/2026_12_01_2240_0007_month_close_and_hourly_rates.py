"""Month close (stored reports and balances) and hourly rates for the social value.

Closed months, their balances and the history of hourly rates are append-only,
like the ledger: the database refuses to change or delete them (no reopening).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 21:35:14
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
KEPT_TABLES = ("period_closes", "closed_balances", "hourly_rates")

_GUARD_FUNCTION_POSTGRES = """
CREATE FUNCTION timebank_refuse_reopening() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'closed months and rate history are kept as they are: % on % is refused',
        TG_OP, TG_TABLE_NAME USING ERRCODE = 'integrity_constraint_violation';
END $$
"""


def _guards(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return [_GUARD_FUNCTION_POSTGRES] + [
            f"CREATE TRIGGER {table}_kept BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION timebank_refuse_reopening()"
            for table in KEPT_TABLES
        ]
    return [
        f"CREATE TRIGGER {table}_kept_{action.lower()} BEFORE {action} ON {table} BEGIN "
        f"SELECT RAISE(ABORT, 'closed months and rate history are kept as they are: {action} on {table} is refused'); "
        "END"
        for table in KEPT_TABLES
        for action in ("UPDATE", "DELETE")
    ]


def _drop_guards(dialect: str) -> list[str]:
    if dialect == "postgresql":
        return [f"DROP TRIGGER IF EXISTS {table}_kept ON {table}" for table in KEPT_TABLES] + [
            "DROP FUNCTION IF EXISTS timebank_refuse_reopening()"
        ]
    return [f"DROP TRIGGER IF EXISTS {table}_kept_{action}" for table in KEPT_TABLES for action in ("update", "delete")]


def upgrade() -> None:
    op.create_table(
        "hourly_rates",
        sa.Column("id", ID, nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("amount_pence", ID, nullable=False),
        sa.Column("currency", sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column("basis", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("set_on", sa.Date(), nullable=False),
        sa.Column("set_by_user_id", ID, nullable=True),
        sa.CheckConstraint("amount_pence >= 0", name=op.f("ck_hourly_rates_amount_not_negative")),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_hourly_rates_organisation_id_organisations")
        ),
        sa.ForeignKeyConstraint(["set_by_user_id"], ["users.id"], name=op.f("fk_hourly_rates_set_by_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_hourly_rates")),
    )
    with op.batch_alter_table("hourly_rates", schema=None) as batch_op:
        batch_op.create_index("ix_hourly_rates_organisation_id_id", ["organisation_id", "id"], unique=False)

    op.create_table(
        "period_closes",
        sa.Column("id", ID, nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("closed_through", sa.Date(), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_by_user_id", ID, nullable=True),
        sa.Column("idempotency_key", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("exchanges", ID, nullable=False),
        sa.Column("minutes_exchanged", ID, nullable=False),
        sa.Column("active_members", ID, nullable=False),
        sa.Column("social_value_pence", ID, nullable=True),
        sa.Column("report", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["closed_by_user_id"], ["users.id"], name=op.f("fk_period_closes_closed_by_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"], ["organisations.id"], name=op.f("fk_period_closes_organisation_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_period_closes")),
        sa.UniqueConstraint("organisation_id", "id", name=op.f("uq_period_closes_organisation_id_id")),
        sa.UniqueConstraint(
            "organisation_id", "idempotency_key", name=op.f("uq_period_closes_organisation_id_idempotency_key")
        ),
        sa.UniqueConstraint("organisation_id", "month", name=op.f("uq_period_closes_organisation_id_month")),
    )
    op.create_table(
        "closed_balances",
        sa.Column("period_close_id", ID, nullable=False),
        sa.Column("account_id", ID, nullable=False),
        sa.Column("organisation_id", ID, nullable=False),
        sa.Column("balance_minutes", ID, nullable=False),
        sa.Column("last_active_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["organisation_id", "account_id"],
            ["accounts.organisation_id", "accounts.id"],
            name=op.f("fk_closed_balances_organisation_id_account_id_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id", "period_close_id"],
            ["period_closes.organisation_id", "period_closes.id"],
            name=op.f("fk_closed_balances_organisation_id_period_close_id_period_closes"),
        ),
        sa.PrimaryKeyConstraint("period_close_id", "account_id", name=op.f("pk_closed_balances")),
    )
    with op.batch_alter_table("closed_balances", schema=None) as batch_op:
        batch_op.create_index("ix_closed_balances_account_id", ["account_id"], unique=False)

    for statement in _guards(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in _drop_guards(op.get_bind().dialect.name):
        op.execute(statement)
    with op.batch_alter_table("closed_balances", schema=None) as batch_op:
        batch_op.drop_index("ix_closed_balances_account_id")
    op.drop_table("closed_balances")
    op.drop_table("period_closes")
    with op.batch_alter_table("hourly_rates", schema=None) as batch_op:
        batch_op.drop_index("ix_hourly_rates_organisation_id_id")
    op.drop_table("hourly_rates")
