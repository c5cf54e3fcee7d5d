"""Which tables belong to an organisation (tenant tables) and which are global.

Every tenant table carries ``organisation_id`` and every statement on it filters by it,
so the schema can be distributed by organisation (docs/operations.md, "Scale out").
The global tables are logins and what hangs off them: one person may belong to several
organisations with one login. On a distributed database they are reference tables.
"""

TENANT_KEY = "organisation_id"
# Tables without organisation_id: logins and what hangs off them, and the organisations
# themselves (few, small, read by slug on every request). Reference tables on Citus.
GLOBAL_TABLES = frozenset(
    {"organisations", "users", "api_tokens", "sign_in_failures", "browser_sessions", "alembic_version"}
)
# The one kind of statement that reads across organisations on purpose: a login's
# memberships (GET /me lists them; erasure checks whether a login is used elsewhere).
# On Citus it is a multi-shard query, fine for how rarely it runs.
CROSS_ORGANISATION_FILTER = "members.user_id ="
