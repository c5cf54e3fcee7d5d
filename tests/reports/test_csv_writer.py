"""The one CSV writer: formula-like text neutralised, numbers as numbers, ISO dates."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest

from timebank.reports.csv import cell, document, hours, line


class TestCells:
    @pytest.mark.parametrize(
        "text",
        ['=HYPERLINK("http://evil.example","Click")', "+1", "-1.50", "@SUM(A1)", "\tcmd", "\rcmd", "=1+1"],
    )
    def test_text_a_spreadsheet_would_run_gets_a_leading_apostrophe(self, text: str) -> None:
        assert cell(text) == "'" + text

    @pytest.mark.parametrize("text", ["Alice", "1+1=2", "", "Mary-Jane", " =1"])
    def test_other_text_is_written_as_it_is(self, text: str) -> None:
        assert cell(text) == text

    def test_numbers_stay_numbers(self) -> None:
        assert (cell(hours(-90)), cell(Decimal("-1.50")), cell(-90), cell(0)) == ("-1.50", "-1.50", "-90", "0")

    def test_dates_and_times_are_iso_8601(self) -> None:
        assert cell(dt.date(2026, 1, 31)) == "2026-01-31"
        assert cell(dt.datetime(2026, 1, 31, 9, 30, tzinfo=dt.UTC)) == "2026-01-31T09:30:00Z"
        assert (cell(None), cell(True)) == ("", "true")

    def test_a_line_quotes_what_needs_quoting(self) -> None:
        assert line(["a,b", 'say "hi"', "=x", hours(-30)]) == '"a,b","say ""hi""",\'=x,-0.50\r\n'

    def test_a_document_reads_back_with_utf8_bom(self) -> None:
        text = document([("name", "hours"), ("Zoë", hours(90))])
        assert text.startswith("\ufeff")
        assert list(csv.reader(io.StringIO(text.removeprefix("\ufeff")))) == [["name", "hours"], ["Zoë", "1.50"]]
