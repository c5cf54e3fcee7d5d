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
from functools import lru_cache
from typing import Any

from litestar import Response

from timebank.ledger.amounts import minutes_to_hours

MEDIA_TYPE = "text/csv"  # Litestar adds "; charset=utf-8"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A byte order mark, so Excel opens the file as UTF-8 (names with accents stay intact).
BOM = "\ufeff"

Cell = str | int | Decimal | dt.date | dt.datetime | bool | None


def neutralise(text: str) -> str:
    """Text that would start a formula, made inert."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


@lru_cache(maxsize=8192)
def hours(minutes: int) -> Decimal:
    """Minutes as a number of hours with two decimals, for a numeric cell."""
    return Decimal(minutes_to_hours(minutes))


def _text(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _time(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


# By exact type: an export writes millions of cells. bool before int matters only for the fallback.
_FORMATS = {
    str: _text,
    int: str,
    Decimal: str,
    type(None): lambda value: "",
    bool: lambda value: "true" if value else "false",
    dt.date: dt.date.isoformat,
    dt.datetime: _time,
}


def cell(value: Cell) -> str:
    """One value as CSV text: formula-like text neutralised, numbers and ISO dates as they are."""
    formatter = _FORMATS.get(type(value))
    if formatter is not None:
        return formatter(value)  # type: ignore[operator]
    if isinstance(value, dt.datetime):
        return _time(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, Decimal)):
        return str(value)
    return neutralise(str(value))


def _writer(buffer: io.StringIO) -> Any:
    return csv.writer(buffer, lineterminator="\r\n")


def line(values: Sequence[Cell]) -> str:
    """One CSV record, with its CRLF ending."""
    buffer = io.StringIO()
    _writer(buffer).writerow([cell(value) for value in values])
    return buffer.getvalue()


def document(rows: Iterable[Sequence[Cell]]) -> str:
    """A whole CSV file in memory (small ones: a report)."""
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = _writer(buffer)
    for row in rows:
        writer.writerow([cell(value) for value in row])
    return buffer.getvalue()


def attachment(filename: str) -> dict[str, str]:
    """The header that makes a browser save the answer as ``filename``."""
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


def download(rows: Iterable[Sequence[Cell]], filename: str) -> Response[str]:
    """A small CSV file (``document``) as an answer to save, from the API and the pages alike."""
    return Response(document(rows), media_type=MEDIA_TYPE, headers=attachment(filename))


async def stream(rows: AsyncIterable[Sequence[Cell]], chunk_rows: int = 2000) -> AsyncIterator[bytes]:
    """A CSV file as it is produced (large ones: exports, statements), ``chunk_rows`` rows at a time."""
    buffer = io.StringIO()
    buffer.write(BOM)
    writer = _writer(buffer)
    count = 0
    async for row in rows:
        writer.writerow([cell(value) for value in row])
        count += 1
        if count == chunk_rows:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            count = 0
    if buffer.tell():
        yield buffer.getvalue().encode()
