"""Whether a database is at the migration this code ships, told without importing Alembic.

The service checks this at every start (app.py). Alembic, with Mako and its script
machinery, adds 10 MB to every worker that imports it (docs/performance.md, round nine),
so the usual case, a database at the latest migration, is told from the revision that
Alembic recorded in the database and the newest migration file's name. Only a database
that is not current needs ``migrate.schema_status``, to say how far off it is.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncConnection

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
# The names migrate.alembic_config gives new migrations: dated, then the revision.
_MIGRATION_FILE = re.compile(r"^\d{4}_\d{2}_\d{2}_\d{4}_(?P<revision>[^_]+)_\w*\.py$")


def shipped_head() -> str:
    """The newest migration's revision: the dated names sort in the order they were written,
    and the history is a line (tests/operations/test_schema_check.py holds it to Alembic's head)."""
    names = sorted(path.name for path in (MIGRATIONS_DIR / "versions").glob("*.py"))
    found = [match["revision"] for match in map(_MIGRATION_FILE.match, names) if match]
    return found[-1]


async def recorded_revisions(conn: AsyncConnection) -> tuple[str, ...]:
    """The revisions Alembic recorded in the database; empty when it was never migrated."""
    if not await conn.run_sync(lambda sync: inspect(sync).has_table("alembic_version")):
        return ()
    rows = await conn.execute(text("SELECT version_num FROM alembic_version"))
    return tuple(sorted(row[0] for row in rows))


async def schema_status_unless_current(conn: AsyncConnection) -> "SchemaStatus | None":
    """None for a database at the latest migration; otherwise where it stands, from Alembic."""
    if await recorded_revisions(conn) == (shipped_head(),):
        return None
    from timebank.db.migrate import schema_status

    return await schema_status(conn)


@dataclass(frozen=True)
class SchemaStatus:
    """Where a database's schema stands against the migrations this code ships."""

    current: tuple[str, ...]  # the revision(s) recorded in the database; empty when never migrated
    head: str
    behind: int  # migrations still to apply; 0 when at head or ahead
    unknown: tuple[str, ...]  # recorded revisions this code does not know (a newer version migrated it)

    @property
    def is_current(self) -> bool:
        return self.current == (self.head,)

    def describe(self) -> str:
        """One sentence a person can act on."""
        if self.is_current:
            return f"the database is at the latest migration ({self.head})"
        if self.unknown:
            return (
                f"the database is at migration {', '.join(self.unknown)}, which this version of Timebank does not "
                f"know (its latest is {self.head}): it was migrated by a newer version. Run that version, "
                "or restore a backup taken before the upgrade"
            )
        if not self.current:
            return f"the database has no schema yet ({self.behind} migration(s) to apply): run `timebank migrate`"
        return (
            f"the database is {self.behind} migration(s) behind (at {', '.join(self.current)}, latest {self.head}): "
            "run `timebank migrate`"
        )


class SchemaNotCurrent(RuntimeError):
    """The database is behind or ahead of this code: the service must not start on it."""

    def __init__(self, status: SchemaStatus) -> None:
        super().__init__(f"Timebank will not start: {status.describe()}.")
        self.status = status
