"""Importing members from a CSV file (a paper or spreadsheet register).

Columns (a header row is required; names are case-insensitive, order is free):

- ``display_name`` (required): how staff and the member see the name;
- ``email``, ``joined_on`` (YYYY-MM-DD), ``role`` (member, staff, coordinator);
- ``opening_balance_hours``: the balance carried over from the old ledger.

Every row is checked before anything is written, and the rows are written in one
database transaction: an import lands whole or not at all. Imported members
have no login; staff can give one later.
"""

import codecs
import csv
import datetime as dt
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlmodel import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from timebank import ledger
from timebank.db import Database
from timebank.ledger import errors
from timebank.members.service import MAX_DISPLAY_NAME, add_member
from timebank.models import Member, Role
from timebank.reports.closing import first_open_day

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_ROWS = 10_000
KNOWN_COLUMNS = {"display_name", "email", "joined_on", "role", "opening_balance_hours"}


@dataclass(frozen=True)
class MemberRow:
    line: int
    display_name: str
    email: str | None
    joined_on: dt.date | None
    role: Role
    opening_balance_minutes: int


@dataclass(frozen=True)
class RejectedRow:
    line: int
    reason: str


@dataclass
class ParsedFile:
    rows: list[MemberRow] = field(default_factory=list)
    rejected: list[RejectedRow] = field(default_factory=list)
    encoding: str = "utf-8"
    fingerprint: str = ""


class ImportFileError(ValueError):
    """The file as a whole cannot be read (encoding, size, header)."""


def parse_member_csv(content: bytes) -> ParsedFile:
    """Read and check every row; nothing is written here."""
    if len(content) > MAX_FILE_BYTES:
        raise ImportFileError(f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; split it up")
    text, encoding = _decode(content)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    parsed = ParsedFile(encoding=encoding, fingerprint=hashlib.sha256(content).hexdigest()[:16])
    try:
        return _read_rows(reader, parsed)
    except csv.Error as exc:  # e.g. a cell of more than 128 KiB
        raise ImportFileError(f"line {reader.line_num} cannot be read as CSV: {exc}") from None


def _read_rows(reader: csv.DictReader, parsed: ParsedFile) -> ParsedFile:
    header = [(name or "").strip().lower() for name in (reader.fieldnames or [])]
    if "display_name" not in header:
        raise ImportFileError(
            "the first row must be a header naming the columns, including display_name "
            f"(found: {', '.join(header) or 'nothing'})"
        )
    blank = [str(number) for number, name in enumerate(header, start=1) if not name]
    if blank:
        raise ImportFileError(f"column(s) {', '.join(blank)} of the header are blank; name them or delete them")
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise ImportFileError(f"the header names {', '.join(twice)} twice; each column may appear once")
    unknown = [name for name in header if name not in KNOWN_COLUMNS]
    if unknown:
        raise ImportFileError(
            f"unknown column(s) {', '.join(unknown)}; the columns are {', '.join(sorted(KNOWN_COLUMNS))}"
        )
    reader.fieldnames = header
    seen_names: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        if len(parsed.rows) + len(parsed.rejected) >= MAX_ROWS:
            raise ImportFileError(f"the file has more than {MAX_ROWS:,} rows; split it up")
        if None in record:  # more cells than header columns
            parsed.rejected.append(RejectedRow(line, "more cells than there are columns in the header"))
            continue
        if not any((value or "").strip() for value in record.values()):
            continue  # blank line
        try:
            row = _parse_row(line, record)
        except errors.LedgerError as exc:
            parsed.rejected.append(RejectedRow(line, exc.message))
            continue
        key = row.display_name.casefold()
        if key in seen_names:
            parsed.rejected.append(RejectedRow(line, f"{row.display_name!r} already appears on line {seen_names[key]}"))
            continue
        seen_names[key] = line
        parsed.rows.append(row)
    return parsed


def _decode(content: bytes) -> tuple[str, str]:
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Some Windows tools (Notepad's "Unicode", for one) write UTF-16 with a byte order mark.
        try:
            return content.decode("utf-16"), "utf-16"
        except UnicodeDecodeError:
            raise ImportFileError("the file starts as UTF-16 text but is not; save it as 'CSV UTF-8'") from None
    if b"\x00" in content:
        raise ImportFileError(
            "the file is not CSV text (it holds NUL bytes: a spreadsheet, an image, "
            "or UTF-16 without a byte order mark); save it as 'CSV UTF-8'"
        )
    try:
        return content.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    # Excel on Windows saves "CSV" as Windows-1252 unless told otherwise.
    try:
        return content.decode("cp1252"), "windows-1252"
    except UnicodeDecodeError:
        raise ImportFileError("the file is neither UTF-8 nor Windows-1252 text; save it as 'CSV UTF-8'") from None


def _parse_row(line: int, record: dict[str, str | None]) -> MemberRow:
    def cell(name: str) -> str:
        return (record.get(name) or "").strip()

    # As in the API: no control characters but line breaks and tabs (NUL cannot even be stored).
    if any(ch < " " and ch not in "\t\r\n" for value in record.values() for ch in value or ""):
        raise errors.InvalidEntry("the row holds control characters; retype it")
    name = " ".join(cell("display_name").split())
    if not name:
        raise errors.InvalidEntry("display_name is empty")
    if len(name) > MAX_DISPLAY_NAME:
        raise errors.InvalidEntry(f"display_name is longer than {MAX_DISPLAY_NAME} characters")
    joined_on = None
    if cell("joined_on"):
        try:
            joined_on = dt.date.fromisoformat(cell("joined_on"))
        except ValueError:
            raise errors.InvalidEntry(f"joined_on {cell('joined_on')!r} is not a date (YYYY-MM-DD)") from None
    role_text = cell("role").lower() or Role.MEMBER.value
    try:
        role = Role(role_text)
    except ValueError:
        raise errors.InvalidEntry(f"role {role_text!r} is not one of member, staff, coordinator") from None
    opening = ledger.hours_to_minutes(cell("opening_balance_hours")) if cell("opening_balance_hours") else 0
    email = cell("email") or None
    if email is not None and ("@" not in email or len(email) > 254):
        raise errors.InvalidEntry(f"email {email[:60]!r} is not an email address")
    return MemberRow(line, name, email, joined_on, role, opening)


@dataclass(frozen=True)
class ImportResult:
    imported: int
    opening_balances_minutes: int


async def import_members(
    db: Database,
    organisation_id: int,
    parsed: ParsedFile,
    *,
    recorded_by: int | None = None,
    on_row: Callable[[], None] = lambda: None,
) -> ImportResult:
    """Write the parsed rows in one transaction; any failure leaves the database as it was."""
    total_opening = 0
    async with db.session() as session:
        existing = {
            name.casefold()
            for name in (
                await session.exec(select(Member.display_name).where(Member.organisation_id == organisation_id))
            ).all()
        }
        clash = next((row for row in parsed.rows if row.display_name.casefold() in existing), None)
        if clash is not None:
            raise errors.LedgerConflict(
                f"line {clash.line}: a member called {clash.display_name!r} already exists in this organisation"
            )
        for row in parsed.rows:
            try:
                total_opening += await _import_row(session, organisation_id, row, parsed.fingerprint, recorded_by)
            except errors.LedgerError as exc:
                raise type(exc)(f"line {row.line}: {exc.message}", **exc.extra) from None
            on_row()
        await session.commit()
    return ImportResult(len(parsed.rows), total_opening)


async def _import_row(
    session: AsyncSession, organisation_id: int, row: MemberRow, fingerprint: str, recorded_by: int | None
) -> int:
    new = await add_member(
        session,
        organisation_id,
        display_name=row.display_name,
        role=row.role,
        email=row.email,
        joined_on=row.joined_on,
        changed_by=recorded_by,
    )
    if row.opening_balance_minutes:
        assert new.account.id is not None
        connection = await session.connection()
        # Never in a closed month: the later of the joined date and the first open day.
        first_open = await first_open_day(connection, organisation_id)
        await ledger.post_opening_balance(
            connection,
            organisation_id,
            member_account_id=new.account.id,
            minutes=row.opening_balance_minutes,
            occurred_on=max(new.member.joined_on, first_open) if first_open else new.member.joined_on,
            description="Opening balance (imported)",
            recorded_by=recorded_by,
            idempotency_key=f"import-{fingerprint}-line-{row.line}",
        )
    return row.opening_balance_minutes


async def count_members(db: Database, organisation_id: int) -> int:
    async with db.session() as session:
        return (
            await session.exec(
                select(func.count()).select_from(Member).where(Member.organisation_id == organisation_id)
            )
        ).one()
