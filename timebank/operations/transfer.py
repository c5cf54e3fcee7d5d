"""``timebank dump`` / ``timebank load``: everything that matters, from one database to another.

Generic over the models: every table on ``SQLModel.metadata`` is carried, in
foreign-key order, except those in ``NOT_CARRIED`` (secrets that are only valid
where they were issued, counters, and Alembic's own bookkeeping). A table added
by a later migration is carried without a change here.

The file is JSON lines: a header naming the schema revision and each table's row
count, then one line per row, ``{"table": ..., "row": {...}}``, tables in load
order and rows in primary-key order. Values are plain JSON: dates and times as
ISO 8601 (times in UTC), enums as their values. The same rows dumped from SQLite
and from PostgreSQL give the same lines, which is how the tests compare them.

A load is one database transaction into an empty database at the same revision:
it lands whole or not at all. It only inserts, so the ledger's append-only
triggers stay on; on PostgreSQL the zero-sum constraint trigger checks every
loaded transaction at commit. Sequences are then set past the loaded ids.
"""

import datetime as dt
import enum
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from sqlalchemy import JSON, Date, DateTime, Enum, Table, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

import timebank.models  # noqa: F401  (registers every table on the metadata)
from timebank.db import Database
from timebank.db.migrate import schema_status

FORMAT = "timebank-dump"
FORMAT_VERSION = 1
# Not carried: bearer tokens and browser sessions (sign in again on the new database),
# sign-in failure counters (they expire within minutes), and Alembic's bookkeeping.
NOT_CARRIED = frozenset({"api_tokens", "sign_in_failures", "browser_sessions", "alembic_version"})
BATCH_ROWS = 500

OnRows = Callable[[int], None]


class TransferError(RuntimeError):
    """A dump or load that cannot be done, with what to do about it."""


@dataclass(frozen=True)
class TransferResult:
    rows: dict[str, int]  # table -> rows dumped or loaded
    revision: str

    @property
    def transactions(self) -> int:
        return self.rows.get("transactions", 0)


def carried_tables() -> list[Table]:
    """The tables a dump carries, parents before children."""
    return [table for table in SQLModel.metadata.sorted_tables if table.name not in NOT_CARRIED]


async def dump_database(
    db: Database, out: IO[str], *, on_total: OnRows = print, on_rows: OnRows = print
) -> TransferResult:
    """Write every carried table to ``out``, all from one consistent snapshot."""
    tables = carried_tables()
    async with _snapshot(db) as conn:
        revision = await _current_revision(conn, "dump from")
        counts = {table.name: int(await conn.scalar(select(func.count()).select_from(table)) or 0) for table in tables}
        on_total(sum(counts.values()))
        header = {"format": FORMAT, "version": FORMAT_VERSION, "schema_revision": revision, "tables": counts}
        out.write(json.dumps(header) + "\n")
        for table in tables:
            written = 0
            result = await conn.stream(select(table).order_by(*table.primary_key.columns))
            async for row in result:
                out.write(json.dumps({"table": table.name, "row": _encode(table, row._mapping)}) + "\n")
                written += 1
                if written % BATCH_ROWS == 0:
                    on_rows(BATCH_ROWS)
            on_rows(written % BATCH_ROWS)
    return TransferResult(rows=counts, revision=revision)


def read_header(source: IO[str]) -> dict[str, Any]:
    try:
        header = json.loads(source.readline())
    except json.JSONDecodeError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise TransferError("this is not a file written by `timebank dump`")
    if header.get("version") != FORMAT_VERSION:
        raise TransferError(f"dump format version {header.get('version')} is not one this Timebank reads")
    return header


async def load_database(db: Database, source: IO[str], *, on_rows: OnRows = print) -> TransferResult:
    """Load a dump into the empty, migrated database ``db``, in one transaction."""
    header = read_header(source)
    tables = {table.name: table for table in carried_tables()}
    unknown = set(header["tables"]) - set(tables)
    if unknown:
        raise TransferError(f"the dump has tables this Timebank does not know: {', '.join(sorted(unknown))}")
    async with db.transaction() as conn:
        revision = await _current_revision(conn, "load into")
        if revision != header["schema_revision"]:
            raise TransferError(
                f"the dump is at schema revision {header['schema_revision']} and this database at {revision}: "
                "run `timebank migrate` on both (the same version of Timebank) before moving data"
            )
        for table in tables.values():
            if await conn.scalar(select(func.count()).select_from(table)):
                raise TransferError(
                    f"the database is not empty (table {table.name} has rows): load only into a new database, "
                    "after `timebank migrate`"
                )
        loaded = dict.fromkeys(header["tables"], 0)
        for name, batch in _batches(source, tables):
            await conn.execute(tables[name].insert(), batch)
            loaded[name] += len(batch)
            on_rows(len(batch))
        if loaded != header["tables"]:
            raise TransferError(f"the dump is incomplete: it promised {header['tables']} rows and holds {loaded}")
        if db.is_postgres:
            await _set_sequences_past_loaded_ids(conn, [tables[name] for name in loaded])
    return TransferResult(rows=loaded, revision=revision)


def _batches(source: IO[str], tables: dict[str, Table]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    name, batch = None, []
    for number, line in enumerate(source, start=2):
        try:
            record = json.loads(line)
            table = tables[record["table"]]
            row = _decode(table, record["row"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise TransferError(f"line {number} of the dump cannot be read ({type(exc).__name__}: {exc})") from None
        if table.name != name or len(batch) >= BATCH_ROWS:
            if batch:
                yield name, batch  # type: ignore[misc]
            name, batch = table.name, []
        batch.append(row)
    if batch:
        yield name, batch  # type: ignore[misc]


def _encode(table: Table, row: Any) -> dict[str, Any]:
    encoded = {}
    for column in table.columns:
        value = row[column.name]
        if isinstance(value, dt.datetime):
            # SQLite hands back naive UTC; PostgreSQL aware times: both become UTC with an offset.
            value = (value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)).isoformat()
        elif isinstance(value, dt.date):
            value = value.isoformat()
        elif isinstance(value, enum.Enum):
            value = value.value
        encoded[column.name] = value
    return encoded


def _decode(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    decoded = {}
    for column in table.columns:
        value = row[column.name]
        if value is not None and not isinstance(column.type, JSON):
            if isinstance(column.type, DateTime):
                value = dt.datetime.fromisoformat(value)
            elif isinstance(column.type, Date):
                value = dt.date.fromisoformat(value)
            elif isinstance(column.type, Enum) and column.type.enum_class is not None:
                value = column.type.enum_class(value)
        decoded[column.name] = value
    return decoded


async def _current_revision(conn: AsyncConnection, doing: str) -> str:
    status = await schema_status(conn)
    if not status.is_current:
        raise TransferError(f"cannot {doing} this database: {status.describe()}")
    return status.head


class _snapshot:
    """A read-only connection on one consistent snapshot, without blocking writers."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def __aenter__(self) -> AsyncConnection:
        self._context = self.db.autocommit_engine.connect()
        conn = await self._context.__aenter__()
        if self.db.is_postgres:
            await conn.exec_driver_sql("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        else:
            await conn.exec_driver_sql("BEGIN DEFERRED")  # WAL: a reader's snapshot, writers go on
        self._conn = conn
        return conn

    async def __aexit__(self, *exc_info: object) -> None:
        try:
            await self._conn.exec_driver_sql("COMMIT" if exc_info[0] is None else "ROLLBACK")
        finally:
            await self._context.__aexit__(*exc_info)


async def _set_sequences_past_loaded_ids(conn: AsyncConnection, tables: list[Table]) -> None:
    for table in tables:
        keys = list(table.primary_key.columns)
        if len(keys) != 1 or not keys[0].autoincrement or keys[0].type.python_type is not int:
            continue
        key = keys[0].name
        sequence = await conn.scalar(
            text("SELECT pg_get_serial_sequence(:table, :column)"), {"table": table.name, "column": key}
        )
        if sequence is not None:
            await conn.execute(
                text(f'SELECT setval(:sequence, coalesce((SELECT max("{key}") FROM "{table.name}"), 0) + 1, false)'),
                {"sequence": sequence},
            )


def open_dump(path: Path, mode: str) -> IO[str]:
    return open(path, mode, encoding="utf-8", newline="\n")
