"""Consistent backups while the service runs, restores into an empty database, and retention.

SQLite: the sqlite3 module's online backup API copies the database page by page
inside one read transaction, so writers carry on (WAL) and the copy is one
consistent moment. PostgreSQL: ``pg_dump`` in its custom format, started on a
snapshot exported by our own REPEATABLE READ transaction, so the transaction
count we report is exactly what the file holds.
"""

import asyncio
import datetime as dt
import json
import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL, make_url

from timebank.config import to_async_url

BACKUP_NAME = re.compile(r"^timebank-(\d{8}T\d{6}Z)\.(sqlite3|pgdump)$")


class BackupError(RuntimeError):
    """A backup or restore that cannot be done, with what to do about it."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    bytes: int
    transactions: int
    seconds: float
    finished_at: dt.datetime

    def status(self) -> dict[str, object]:
        """What the status file records (the metrics read the age of the last good backup from it)."""
        return {
            "finished_at": self.finished_at.isoformat(),
            "path": str(self.path.resolve()),
            "bytes": self.bytes,
            "transactions": self.transactions,
        }


def backup_file_name(database_url: str, at: dt.datetime) -> str:
    suffix = "sqlite3" if _is_sqlite(database_url) else "pgdump"
    return f"timebank-{at.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}.{suffix}"


def create_backup(database_url: str, path: Path, *, pg_dump: str = "pg_dump") -> BackupResult:
    """Write a consistent backup of the database at ``database_url`` to ``path`` (atomically)."""
    started = time.perf_counter()
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        if _is_sqlite(database_url):
            transactions = _sqlite_backup(_sqlite_path(database_url), partial)
        else:
            transactions = asyncio.run(_postgres_backup(_url(database_url), partial, pg_dump))
        _fsync(partial)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(
        path=path,
        bytes=path.stat().st_size,
        transactions=transactions,
        seconds=time.perf_counter() - started,
        finished_at=dt.datetime.now(dt.UTC),
    )


def restore_backup(database_url: str, path: Path, *, pg_restore: str = "pg_restore") -> BackupResult:
    """Restore ``path`` into the database at ``database_url``, which must be empty (no tables)."""
    if not path.is_file():
        raise BackupError(f"no backup file at {path}")
    started = time.perf_counter()
    if _is_sqlite(database_url):
        transactions = _sqlite_restore(path, _sqlite_path(database_url))
    else:
        transactions = asyncio.run(_postgres_restore(_url(database_url), path, pg_restore))
    return BackupResult(
        path=path,
        bytes=path.stat().st_size,
        transactions=transactions,
        seconds=time.perf_counter() - started,
        finished_at=dt.datetime.now(dt.UTC),
    )


def write_status(status_file: Path, result: BackupResult) -> None:
    """Record the last good backup, atomically (a reader never sees half a file)."""
    partial = status_file.with_name(status_file.name + ".partial")
    partial.write_text(json.dumps(result.status(), indent=2) + "\n")
    os.replace(partial, status_file)


def backups_to_prune(names: Iterable[str], *, daily: int = 14, weekly: int = 8) -> list[str]:
    """The backup files (by name) that retention drops: it keeps the newest backup of each of
    the ``daily`` most recent days that have one, and of each of the ``weekly`` most recent ISO
    weeks. Names that are not Timebank backups are never touched."""
    stamped = sorted(
        (
            (dt.datetime.strptime(m.group(1), "%Y%m%dT%H%M%SZ"), name)
            for name in names
            if (m := BACKUP_NAME.match(name))
        ),
        reverse=True,
    )
    keep: set[str] = set()
    for period, limit in ((lambda t: t.date(), daily), (lambda t: t.isocalendar()[:2], weekly)):
        seen: list[object] = []
        for taken_at, name in stamped:  # newest first: the first of each period is its newest
            key = period(taken_at)
            if key not in seen and len(seen) < limit:
                seen.append(key)
                keep.add(name)
    return [name for _, name in stamped if name not in keep]


def prune_backups(directory: Path, *, daily: int = 14, weekly: int = 8) -> list[Path]:
    """Delete the backups in ``directory`` that retention drops; returns what was deleted."""
    doomed = [directory / name for name in backups_to_prune(os.listdir(directory), daily=daily, weekly=weekly)]
    for path in doomed:
        path.unlink()
    return doomed


# --- SQLite ---------------------------------------------------------------------------


def _sqlite_backup(source_path: Path, target: Path) -> int:
    if not source_path.is_file():
        raise BackupError(f"there is no database file at {source_path}")
    source = sqlite3.connect(source_path, timeout=30)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # one step: the whole database as of one read transaction
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        return _sqlite_count_transactions(copy, source_path)
    finally:
        copy.close()
        source.close()


def _sqlite_restore(backup: Path, target_path: Path) -> int:
    if target_path.exists() and target_path.stat().st_size > 0:
        with sqlite3.connect(target_path) as existing:
            tables = [row[0] for row in existing.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        if tables:
            raise BackupError(
                f"the database {target_path} is not empty ({len(tables)} tables): restore only into a new, "
                "empty database (point TIMEBANK_DATABASE_URL at a new file)"
            )
    source = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    target = sqlite3.connect(target_path)
    try:
        if source.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise BackupError(f"{backup} is damaged (SQLite's quick_check failed)")
        source.backup(target)
        target.execute("PRAGMA journal_mode=WAL")
        return _sqlite_count_transactions(target, backup)
    finally:
        target.close()
        source.close()


def _sqlite_count_transactions(connection: sqlite3.Connection, where: Path) -> int:
    try:
        return int(connection.execute("SELECT count(*) FROM transactions").fetchone()[0])
    except sqlite3.OperationalError:
        raise BackupError(f"{where} holds no Timebank ledger (no transactions table)") from None


# --- PostgreSQL -------------------------------------------------------------------------


async def _postgres_backup(url: URL, target: Path, pg_dump: str) -> int:
    conn = await asyncpg.connect(_dsn(url))
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            snapshot = await conn.fetchval("SELECT pg_export_snapshot()")
            transactions = await _postgres_count_transactions(conn)
            # pg_dump reads the very snapshot we counted in, while our transaction holds it open.
            await _run_tool(
                [
                    pg_dump,
                    "--format=custom",
                    f"--snapshot={snapshot}",
                    f"--file={target}",
                    "--dbname",
                    _dsn(url, False),
                ],
                url,
            )
    finally:
        await conn.close()
    return transactions


async def _postgres_restore(url: URL, backup: Path, pg_restore: str) -> int:
    conn = await asyncpg.connect(_dsn(url))
    try:
        tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        if tables:
            raise BackupError(
                f"the database {url.database} is not empty ({tables} tables): restore only into a new, empty "
                f"database (createdb a new one and point TIMEBANK_DATABASE_URL at it)"
            )
        command = [pg_restore, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
        await _run_tool([*command, "--dbname", _dsn(url, False), str(backup)], url)
        return await _postgres_count_transactions(conn)
    finally:
        await conn.close()


async def _postgres_count_transactions(conn: asyncpg.Connection) -> int:
    try:
        return int(await conn.fetchval("SELECT count(*) FROM transactions"))
    except asyncpg.UndefinedTableError:
        raise BackupError("the database holds no Timebank ledger (no transactions table)") from None


async def _run_tool(command: list[str], url: URL) -> None:
    env = {**os.environ, **({"PGPASSWORD": url.password} if url.password else {})}
    try:
        process = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except FileNotFoundError:
        raise BackupError(
            f"{command[0]} was not found: install the PostgreSQL client tools, or name the program "
            "with TIMEBANK_PG_DUMP / TIMEBANK_PG_RESTORE"
        ) from None
    _, stderr = await process.communicate()
    if process.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed (exit {process.returncode}): {stderr.decode().strip()}")


# --- URLs -------------------------------------------------------------------------------


def _url(database_url: str) -> URL:
    return make_url(to_async_url(database_url))


def _is_sqlite(database_url: str) -> bool:
    return _url(database_url).get_backend_name() == "sqlite"


def _sqlite_path(database_url: str) -> Path:
    database = _url(database_url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up or restored")
    return Path(database)


def _dsn(url: URL, with_password: bool = True) -> str:
    """A libpq connection URL (pg_dump gets the password from PGPASSWORD, never the command line)."""
    query = dict(url.query)
    if "ssl" in query:  # asyncpg's spelling
        query["sslmode"] = query.pop("ssl")
    plain = url.set(drivername="postgresql", query=query)
    if not with_password:
        plain = plain.set(password=None)
    return plain.render_as_string(hide_password=False)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
