"""A version per user of everything their signed-in standing is read from (``users.sign_in_version``).

Each worker keeps the answers of recent token checks in memory (auth/sign_in_cache.py).
A cached answer is used only by a request whose own statement also reads the user's
``sign_in_version`` and finds it unchanged, so these triggers are what ends a cached
standing: any change to a column the token check reads (auth/context.py:
``_CALLER_IN_ORGANISATION``) bumps the version of every user it concerns, in the same
transaction as the change. A sign-in (a new token, ``last_signed_in_at``) and a
balance moving change nothing a check reads, so they bump nothing; nor does a new
membership, since an organisation has one row per user (a cached standing is only
ever one that was granted, and a new row can grant but never withdraw).

On PostgreSQL, ``timebank_post_as`` refuses a write whose caller's version moved
before it posts anything, then posts with ``timebank_post`` unchanged.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 11:00:00
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The columns the token check reads, by table. A migration that makes the check read
# another column must add it here, and tests/api/test_sign_in_cache.py changes each one.
WATCHED = {
    "api_tokens": ("user_id", "token_hash", "expires_at", "revoked_at"),
    "users": ("username", "is_active", "is_site_admin", "must_change_password"),
    "organisations": ("slug", "timezone"),
    "members": ("user_id", "organisation_id", "role", "is_active"),
    "accounts": ("organisation_id", "member_id"),
}

# Whose version a row of each table concerns, as SQL over that row's columns, written
# ``{column}``: the column of a JSON object ``r`` on PostgreSQL, of OLD or NEW on SQLite.
_USERS_OF = {
    "api_tokens": "SELECT {user_id}",
    "members": "SELECT {user_id}",
    "accounts": "SELECT m.user_id FROM members m WHERE m.organisation_id = {organisation_id} AND m.id = {member_id}",
    "organisations": "SELECT m.user_id FROM members m WHERE m.organisation_id = {id}",
}
_JSON_COLUMN = "(r->>'{column}')::bigint"  # PostgreSQL's form of a column


def _users_of(table: str, pattern: str) -> str:
    """``_USERS_OF[table]`` with each ``{column}`` written as ``pattern`` says."""
    return re.sub(r"\{(\w+)\}", lambda found: pattern.format(column=found[1]), _USERS_OF[table])


_BUMP_POSTGRES = """
CREATE FUNCTION timebank_sign_in_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_row jsonb := CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END;
    new_row jsonb := CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END;
BEGIN
    IF TG_TABLE_NAME = 'users' THEN
        NEW.sign_in_version := OLD.sign_in_version + 1;
        RETURN NEW;
    END IF;
    UPDATE users SET sign_in_version = sign_in_version + 1
     WHERE id IN (SELECT timebank_users_of(TG_TABLE_NAME, old_row)
                  UNION SELECT timebank_users_of(TG_TABLE_NAME, new_row));
    RETURN NULL;
END $$
"""
_USERS_OF_FUNCTION = (
    "CREATE FUNCTION timebank_users_of(p_table text, r jsonb) RETURNS SETOF bigint LANGUAGE sql STABLE AS $$ "
    + " UNION ALL ".join(
        f"SELECT * FROM ({_users_of(table, _JSON_COLUMN)}) AS u WHERE p_table = '{table}'" for table in _USERS_OF
    )
    + " $$"
)

_LEGS = (
    "p_organisation_id bigint, p_kind text, p_account_ids bigint[], p_minutes bigint[], p_allowed_kinds text[], "
    "p_occurred_on date, p_description text, p_category_key text, p_recorded_by bigint, p_idempotency_key text, "
    "p_fingerprint text, p_recorded_at timestamptz"
)
_POST_AS = f"""
CREATE FUNCTION timebank_post_as(p_caller bigint, p_sign_in_version bigint, {_LEGS})
RETURNS TABLE (
    transaction_id bigint,
    replayed boolean,
    category_id bigint,
    category_name text,
    account_id bigint,
    minutes bigint,
    balance_after bigint,
    account_version bigint
) LANGUAGE plpgsql AS $$
BEGIN
    -- A caller's standing taken from a worker's cache at p_sign_in_version: refused, before
    -- anything is written, if it has changed since (NULL: the request checked it itself).
    IF p_sign_in_version IS NOT NULL
       AND p_sign_in_version IS DISTINCT FROM (SELECT u.sign_in_version FROM users u WHERE u.id = p_caller) THEN
        RAISE EXCEPTION 'timebank:sign_in_changed';
    END IF;
    RETURN QUERY SELECT * FROM timebank_post(
        p_organisation_id, p_kind, p_account_ids, p_minutes, p_allowed_kinds, p_occurred_on, p_description,
        p_category_key, p_recorded_by, p_idempotency_key, p_fingerprint, p_recorded_at);
END $$
"""


def _postgres_triggers() -> list[str]:
    statements = []
    for table, columns in WATCHED.items():
        timing = "BEFORE" if table == "users" else "AFTER"  # a user's own row is bumped in place
        events = f"UPDATE OF {', '.join(columns)}" + ("" if table == "users" else " OR DELETE")
        statements.append(
            f"CREATE TRIGGER {table}_sign_in_changed {timing} {events} ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION timebank_sign_in_changed()"
        )
    return statements


def _sqlite_triggers() -> list[str]:
    statements = [
        "CREATE TRIGGER users_sign_in_changed AFTER UPDATE OF "
        + ", ".join(WATCHED["users"])
        + " ON users BEGIN UPDATE users SET sign_in_version = sign_in_version + 1 WHERE id = NEW.id; END"
    ]
    for table in _USERS_OF:
        events = {"update": (f"UPDATE OF {', '.join(WATCHED[table])}", ("OLD", "NEW")), "delete": ("DELETE", ("OLD",))}
        for name, (event, rows) in events.items():
            concerned = " UNION ".join(_users_of(table, row + ".{column}") for row in rows)
            statements.append(
                f"CREATE TRIGGER {table}_sign_in_changed_{name} AFTER {event} ON {table} "
                f"BEGIN UPDATE users SET sign_in_version = sign_in_version + 1 WHERE id IN ({concerned}); END"
            )
    return statements


def upgrade() -> None:
    op.add_column(
        "users",
        sa.Column(
            "sign_in_version",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            server_default="0",
        ),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_USERS_OF_FUNCTION)
        op.execute(_BUMP_POSTGRES)
        op.execute(_POST_AS)
        statements = _postgres_triggers()
    else:
        statements = _sqlite_triggers()
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in WATCHED:
            op.execute(f"DROP TRIGGER IF EXISTS {table}_sign_in_changed ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS timebank_post_as(bigint, bigint, {_LEGS})")
        op.execute("DROP FUNCTION IF EXISTS timebank_sign_in_changed()")
        op.execute("DROP FUNCTION IF EXISTS timebank_users_of(text, jsonb)")
    else:
        op.execute("DROP TRIGGER IF EXISTS users_sign_in_changed")
        for table in _USERS_OF:
            for name in ("update", "delete"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_sign_in_changed_{name}")
    with op.batch_alter_table("users") as batch:  # SQLite drops a column by rebuilding the table
        batch.drop_column("sign_in_version")
