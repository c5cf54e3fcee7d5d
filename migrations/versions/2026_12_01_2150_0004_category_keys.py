"""Categories match ignoring case and spacing: a case-folded key, unique per organisation.

``categories.name_key`` is ``timebank.models.category.category_key(name)``, computed in
Python because SQLite's ``lower()`` folds ASCII only ("Café" and "CAFÉ" must be one
category on both databases). ``timebank_post`` now takes that key instead of the name,
and answers with the organisation's own spelling of the category.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01 21:50:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _category_key(name: str) -> str:
    # A copy of timebank.models.category.category_key as of this revision: a migration
    # must keep meaning what it meant when it was written.
    return " ".join(name.split()).casefold()


TIMEBANK_POST = r"""
CREATE FUNCTION timebank_post(
    p_organisation_id bigint,
    p_kind text,
    p_account_ids bigint[],
    p_minutes bigint[],
    p_allowed_kinds text[],      -- per leg: the kinds of account it may touch, comma-separated
    p_occurred_on date,
    p_description text,
    p_category_key text,         -- a category's name_key (models/category.py), or NULL
    p_recorded_by bigint,
    p_idempotency_key text,
    p_fingerprint text,
    p_recorded_at timestamptz
) RETURNS TABLE (
    transaction_id bigint,
    replayed boolean,
    category_id bigint,
    category_name text,
    account_id bigint,
    minutes bigint,
    balance_after bigint,
    account_version bigint
) LANGUAGE plpgsql AS $$
DECLARE
    legs integer := cardinality(p_account_ids);
    new_id bigint;
    new_category_id bigint;
    new_category_name text;
    existing record;
    rules record;
    locked record;
    today date;
    kinds text[] := array_fill(NULL::text, ARRAY[legs]);
    active boolean[] := array_fill(NULL::boolean, ARRAY[legs]);
    balances bigint[] := array_fill(NULL::bigint, ARRAY[legs]);
    versions bigint[] := array_fill(NULL::bigint, ARRAY[legs]);
    floors bigint[] := array_fill(NULL::bigint, ARRAY[legs]);
    floor_now bigint;
    i integer;
BEGIN
    -- 1. Claim the idempotency key (with the category matched by its key, ignoring case).
    IF p_category_key IS NOT NULL THEN
        SELECT c.id, c.name INTO new_category_id, new_category_name
          FROM categories c
         WHERE c.organisation_id = p_organisation_id AND c.name_key = p_category_key AND c.is_active;
    END IF;
    INSERT INTO transactions AS t (
        organisation_id, kind, occurred_on, recorded_at, recorded_by_user_id, description,
        category_id, idempotency_key, request_fingerprint
    ) VALUES (
        p_organisation_id, p_kind, p_occurred_on, p_recorded_at, p_recorded_by, p_description,
        new_category_id, p_idempotency_key, p_fingerprint
    )
    ON CONFLICT (organisation_id, idempotency_key) DO NOTHING
    RETURNING t.id INTO new_id;

    IF new_id IS NULL THEN
        SELECT t.id, t.request_fingerprint INTO existing
          FROM transactions t
         WHERE t.organisation_id = p_organisation_id AND t.idempotency_key = p_idempotency_key;
        IF existing.request_fingerprint <> p_fingerprint THEN
            RAISE EXCEPTION 'timebank:idempotency_conflict'
                USING DETAIL = json_build_object('transaction_id', existing.id)::text;
        END IF;
        RETURN QUERY SELECT existing.id, true, NULL::bigint, NULL::text, NULL::bigint, NULL::bigint, NULL::bigint,
                            NULL::bigint;
        RETURN;
    END IF;
    IF p_category_key IS NOT NULL AND new_category_id IS NULL THEN
        RAISE EXCEPTION 'timebank:unknown_category';
    END IF;

    -- 2. Lock the accounts in id order, so two writers never wait on each other in a cycle.
    FOR locked IN
        SELECT a.id, a.kind, a.balance_minutes, a.version, a.is_active
          FROM accounts a
         WHERE a.organisation_id = p_organisation_id AND a.id = ANY (p_account_ids)
         ORDER BY a.id
           FOR UPDATE
    LOOP
        i := array_position(p_account_ids, locked.id);
        kinds[i] := locked.kind;
        active[i] := locked.is_active;
        balances[i] := locked.balance_minutes;
        versions[i] := locked.version;
    END LOOP;
    FOR i IN 1 .. legs LOOP
        IF kinds[i] IS NULL THEN
            RAISE EXCEPTION 'timebank:unknown_account'
                USING DETAIL = json_build_object('account_id', p_account_ids[i])::text;
        END IF;
    END LOOP;

    -- 3. The rules, read after the locks (a new snapshot for this statement): a change
    --    of the minimum balance either committed before and is seen, or waits for us.
    SELECT o.timezone, o.min_balance_minutes, o.books_closed_through INTO rules
      FROM organisations o WHERE o.id = p_organisation_id;
    today := (clock_timestamp() AT TIME ZONE rules.timezone)::date;
    IF p_occurred_on > today THEN
        RAISE EXCEPTION 'timebank:future_date'
            USING DETAIL = json_build_object('today', today, 'timezone', rules.timezone)::text;
    END IF;
    IF rules.books_closed_through IS NOT NULL AND p_occurred_on <= rules.books_closed_through THEN
        RAISE EXCEPTION 'timebank:period_closed'
            USING DETAIL = json_build_object('books_closed_through', rules.books_closed_through)::text;
    END IF;

    -- 4. Every leg, in order: kind of account, active, floor.
    FOR i IN 1 .. legs LOOP
        IF NOT kinds[i] = ANY (string_to_array(p_allowed_kinds[i], ',')) THEN
            RAISE EXCEPTION 'timebank:wrong_account_kind'
                USING DETAIL = json_build_object('account_id', p_account_ids[i], 'account_kind', kinds[i])::text;
        END IF;
        IF NOT active[i] THEN
            RAISE EXCEPTION 'timebank:account_inactive'
                USING DETAIL = json_build_object('account_id', p_account_ids[i])::text;
        END IF;
        floor_now := CASE kinds[i] WHEN 'member' THEN rules.min_balance_minutes WHEN 'pot' THEN 0 END;
        IF p_minutes[i] < 0 AND floor_now IS NOT NULL AND balances[i] + p_minutes[i] < floor_now THEN
            RAISE EXCEPTION 'timebank:insufficient_balance'
                USING DETAIL = json_build_object(
                    'account_id', p_account_ids[i], 'balance_minutes', balances[i],
                    'floor_minutes', floor_now, 'requested_minutes', -p_minutes[i])::text;
        END IF;
        balances[i] := balances[i] + p_minutes[i];
        versions[i] := versions[i] + 1;
        -- The floor the CHECK constraint holds the account to: credits are always allowed.
        -- Not least() alone: it skips NULLs, and would give the agency account a floor.
        floors[i] := CASE WHEN floor_now IS NOT NULL THEN least(floor_now, balances[i]) END;
    END LOOP;

    -- 5. Write: every posting in one statement, then every balance.
    INSERT INTO postings (
        organisation_id, transaction_id, account_id, minutes, balance_after, account_version, occurred_on
    )
    SELECT p_organisation_id, new_id, leg.account_id, leg.minutes, leg.balance_after, leg.version, p_occurred_on
      FROM unnest(p_account_ids, p_minutes, balances, versions)
           WITH ORDINALITY AS leg(account_id, minutes, balance_after, version, n)
     ORDER BY leg.n;
    UPDATE accounts a
       SET balance_minutes = leg.balance, version = leg.version, min_balance_minutes = leg.floor
      FROM unnest(p_account_ids, balances, versions, floors) AS leg(id, balance, version, floor)
     WHERE a.id = leg.id;

    RETURN QUERY
        SELECT new_id, false, new_category_id, new_category_name,
               leg.account_id, leg.minutes, leg.balance_after, leg.version
          FROM unnest(p_account_ids, p_minutes, balances, versions)
               WITH ORDINALITY AS leg(account_id, minutes, balance_after, version, n)
         ORDER BY leg.n;
END
$$
"""

DROP_TIMEBANK_POST = (
    "DROP FUNCTION IF EXISTS timebank_post(bigint, text, bigint[], bigint[], text[], date, text, text, "
    "bigint, text, text, timestamptz)"
)


def _revision_0003():  # type: ignore[no-untyped-def]
    path = next(Path(__file__).parent.glob("*_0003_*.py"))
    spec = importlib.util.spec_from_file_location("timebank_migration_0003", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    with op.batch_alter_table("categories", schema=None) as batch_op:
        batch_op.add_column(sa.Column("name_key", sa.String(length=240), nullable=True))
    bind = op.get_bind()
    categories = sa.table(
        "categories", sa.column("id", sa.BigInteger), sa.column("name", sa.String), sa.column("name_key", sa.String)
    )
    for category_id, name in bind.execute(sa.select(categories.c.id, categories.c.name)).all():
        bind.execute(categories.update().where(categories.c.id == category_id).values(name_key=_category_key(name)))
    with op.batch_alter_table("categories", schema=None) as batch_op:
        batch_op.alter_column("name_key", existing_type=sa.String(length=240), nullable=False)
        batch_op.create_unique_constraint(
            op.f("uq_categories_organisation_id_name_key"), ["organisation_id", "name_key"]
        )
    if bind.dialect.name == "postgresql":
        op.execute(DROP_TIMEBANK_POST)
        op.execute(TIMEBANK_POST)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(DROP_TIMEBANK_POST)
        op.execute(_revision_0003().TIMEBANK_POST)
    with op.batch_alter_table("categories", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_categories_organisation_id_name_key"), type_="unique")
        batch_op.drop_column("name_key")
