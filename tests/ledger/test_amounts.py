"""Amounts: integer minutes inside, hours with at most two decimals at the edges, never rounded.

Pure functions: these tests need no database.
"""

from decimal import Decimal

import pytest

from timebank.ledger import hours_to_minutes, minutes_to_hours
from timebank.ledger.errors import InvalidEntry


class TestHoursToMinutes:
    @pytest.mark.parametrize(
        ("hours", "minutes"),
        [
            (1, 60),
            (0, 0),
            ("1.5", 90),
            ("1.50", 90),
            (" 2.25 ", 135),
            ("0.05", 3),
            (".5", 30),
            ("+1", 60),
            ("-1.75", -105),
            (1.25, 75),
            (Decimal("0.75"), 45),
            (Decimal("1E+1"), 600),
            ("1.1", 66),
        ],
    )
    def test_converts_exactly(self, hours, minutes):
        assert hours_to_minutes(hours) == minutes

    @pytest.mark.parametrize("hours", ["1.33", "0.01", 1.33, Decimal("0.1234"), "1.001"])
    def test_refuses_what_is_not_a_whole_number_of_minutes(self, hours):
        with pytest.raises(InvalidEntry):
            hours_to_minutes(hours)

    @pytest.mark.parametrize(
        "hours",
        [
            "",
            "abc",
            "1,5",
            "1e2",
            "\u0661",
            "nan",
            "inf",
            float("nan"),
            float("inf"),
            1e20,
            Decimal("NaN"),
            True,
            None,
            [1],
        ],
    )
    def test_refuses_what_is_not_an_amount_of_hours(self, hours):
        with pytest.raises(InvalidEntry):
            hours_to_minutes(hours)


class TestMinutesToHours:
    @pytest.mark.parametrize(
        ("minutes", "hours"), [(90, "1.50"), (-45, "-0.75"), (0, "0.00"), (60, "1.00"), (1, "0.02"), (-1, "-0.02")]
    )
    def test_formats_with_two_decimals(self, minutes, hours):
        assert minutes_to_hours(minutes) == hours
