"""Amounts: integer minutes inside the system, hours (at most two decimals) at its edges."""

import re
from decimal import ROUND_HALF_UP, Decimal

from timebank.ledger.errors import InvalidEntry

# ASCII digits only: no exponents, no Unicode digits, no thousands separators.
_HOURS_PATTERN = re.compile(r"[+-]?[0-9]{1,9}(\.[0-9]{1,2})?|[+-]?\.[0-9]{1,2}", re.ASCII)
MINUTES_PER_HOUR = 60


def hours_to_minutes(value: object) -> int:
    """Convert hours (int, float, Decimal or decimal string) to whole minutes, exactly.

    Refuses more than two decimal places and anything that is not a whole number of
    minutes (1.33 hours is 79.8 minutes), so no amount is ever silently rounded.
    """
    if isinstance(value, bool):
        raise InvalidEntry("hours must be a number, not true or false")
    if isinstance(value, int):
        # Not through Decimal: its 28-digit context would round a very large integer.
        return value * MINUTES_PER_HOUR
    if isinstance(value, float):
        hours = _decimal_from_text(repr(value))
    elif isinstance(value, Decimal):
        hours = _decimal_from_text(format(value, "f"))
    elif isinstance(value, str):
        hours = _decimal_from_text(value.strip())
    else:
        raise InvalidEntry('hours must be a number or a decimal string such as "1.50"')
    minutes = hours * MINUTES_PER_HOUR
    if minutes != minutes.to_integral_value():
        raise InvalidEntry(
            f"{format(hours, 'f')} hours is not a whole number of minutes; "
            "give minutes instead, or hours in quarters such as 1.25"
        )
    return int(minutes)


def _decimal_from_text(text: str) -> Decimal:
    if not _HOURS_PATTERN.fullmatch(text):
        raise InvalidEntry(
            f'{text[:40]!r} is not an amount of hours: use digits with at most two decimals, such as "1.50"'
        )
    return Decimal(text)


def minutes_to_hours(minutes: int) -> str:
    """Format minutes as hours with two decimals: 90 -> "1.50", -45 -> "-0.75"."""
    hours = (Decimal(abs(minutes)) / MINUTES_PER_HOUR).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return f"-{hours}" if minutes < 0 else str(hours)
