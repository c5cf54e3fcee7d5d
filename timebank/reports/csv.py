"""The one CSV writer every Timebank CSV goes through (reports, statements, exports).

Text cells a spreadsheet would run as a formula (starting with =, +, -, @, a tab or a
carriage return) are written with a leading apostrophe, so they show as text;
numbers are written as numbers (an amount of -1.50 hours stays -1.50). Dates and
times are ISO 8601. Amounts reach the writer as ``Decimal`` or ``int``, never as text.
"""

import csv
import datetime as dt
import io
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from decimal import Decimal

from timebank.ledger.amounts import minutes_to_hours

MEDIA_TYPE = "text/csv"  # Litestar adds "; charset=utf-8"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A byte order mark, so Excel opens the file as UTF-8 (names with accents stay intact).
BOM = "\ufeff"

Cell = str | int | Decimal | dt.date | dt.datetime | bool | None


def neutralise(text: str) -> str:
    """Text that would start a formula, made inert."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def hours(minutes: int) -> Decimal:
    """Minutes as a number of hours with two decimals, for a numeric cell."""
    return Decimal(minutes_to_hours(minutes))


def cell(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return neutralise(str(value))


def line(values: Sequence[Cell]) -> str:
    """One CSV record, with its CRLF ending."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([cell(value) for value in values])
    return buffer.getvalue()


def document(rows: Iterable[Sequence[Cell]]) -> str:
    """A whole CSV file in memory (small ones: a report)."""
    return BOM + "".join(line(row) for row in rows)


async def stream(rows: AsyncIterable[Sequence[Cell]]) -> AsyncIterator[bytes]:
    """A CSV file as it is produced (large ones: exports, statements), in chunks of about 64 KiB."""
    chunk = [BOM]
    size = 0
    async for row in rows:
        text = line(row)
        chunk.append(text)
        size += len(text)
        if size >= 65536:
            yield "".join(chunk).encode()
            chunk, size = [], 0
    if chunk:
        yield "".join(chunk).encode()
