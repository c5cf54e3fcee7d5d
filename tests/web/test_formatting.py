"""Amounts of time and dates in words, as the pages write them."""

import datetime as dt

import pytest

from timebank.web.formatting import hours_in_words
from timebank.web.i18n import load_locale

EN_GB = load_locale("en_GB")


class TestHoursInWords:
    @pytest.mark.parametrize(
        ("minutes", "words"),
        [
            (0, "0 hours"),
            (1, "1 minute"),
            (45, "45 minutes"),
            (60, "1 hour"),
            (90, "1 hour 30 minutes"),
            (61, "1 hour 1 minute"),
            (120, "2 hours"),
            (750, "12 hours 30 minutes"),
            (-90, "1 hour 30 minutes"),
            (600_000, "10,000 hours"),
        ],
    )
    def test_says_hours_and_minutes_in_words(self, minutes: int, words: str) -> None:
        assert hours_in_words(minutes, EN_GB) == words


class TestDates:
    def test_are_written_as_people_write_them(self) -> None:
        assert EN_GB.format_date(dt.date(2026, 11, 3)) == "3 November 2026"

    def test_the_page_language_is_british_english(self) -> None:
        assert EN_GB.language_tag == "en-GB"
