"""Schemas every part of the API shares: amounts, errors, pagination."""

import base64
import binascii
import datetime as dt
import re
from typing import Annotated, Any

from litestar.openapi import ResponseSpec
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, field_validator

from timebank.control_characters import has_control_character
from timebank.ledger import errors
from timebank.ledger.amounts import hours_to_minutes, minutes_to_hours
from timebank.ledger.posting import MAX_LEG_MINUTES


class Amount(BaseModel):
    minutes: int = Field(description="Signed whole minutes.", examples=[90])
    hours: str = Field(description="The same amount in hours, two decimals.", examples=["1.50"])


def amount(minutes: int) -> Amount:
    return Amount(minutes=minutes, hours=minutes_to_hours(minutes))


class InputModel(BaseModel):
    """Request bodies: unknown fields are refused, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: object) -> object:
        # NUL cannot be stored in PostgreSQL text, and no field here needs control characters
        # other than line breaks and tabs.
        texts = value if isinstance(value, list) else [value]  # lists of names (categories) too
        if any(isinstance(text, str) and has_control_character(text) for text in texts):
            raise ValueError("text may not contain control characters (such as NUL)")
        return value


def _json_integer(value: object) -> object:
    # Litestar validates bodies with strict=False, which overrides StrictInt: without this,
    # true, 1.0 and "1" would all pass as the integer 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number such as 90, not text, a decimal or true/false")
    return value


# An integer as JSON writes one, and nothing else.
WholeNumber = Annotated[int, BeforeValidator(_json_integer)]

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


def _calendar_date(value: object) -> object:
    # Lax validation would take a datetime at midnight ("2026-01-01T00:00:00Z", in any zone) or
    # a Unix timestamp (0 is 1970-01-01) as a date, silently; our dates are local calendar days.
    if (isinstance(value, dt.date) and not isinstance(value, dt.datetime)) or (
        isinstance(value, str) and _ISO_DATE.fullmatch(value)
    ):
        return value
    raise ValueError("must be a date written YYYY-MM-DD, such as 2026-01-31: not a time or a number")


# A day written YYYY-MM-DD, and nothing else.
CalendarDate = Annotated[dt.date, BeforeValidator(_calendar_date)]

HoursText = Annotated[
    str | StrictInt | float,
    Field(
        description='Hours, at most two decimals and a whole number of minutes: 1.5 or "1.50".',
        examples=["1.50"],
    ),
]
Minutes = Annotated[WholeNumber, Field(gt=0, le=MAX_LEG_MINUTES, description="Whole minutes, more than zero.")]


def positive_minutes_from_hours(value: object) -> int:
    """Validate an ``hours`` input into positive minutes (raises ValueError for pydantic)."""
    try:
        minutes = hours_to_minutes(value)
    except errors.InvalidEntry as exc:
        raise ValueError(exc.message) from None
    if minutes <= 0:
        raise ValueError("hours must be more than zero")
    if minutes > MAX_LEG_MINUTES:
        raise ValueError(f"at most {MAX_LEG_MINUTES // 60:,} hours in one entry")
    return minutes


class AmountInput(InputModel):
    """Give exactly one of ``minutes`` or ``hours``."""

    minutes: Minutes | None = None
    hours: HoursText | None = None

    @field_validator("hours", mode="before")
    @classmethod
    def _hours_are_exact(cls, value: object) -> object:
        if value is not None:
            positive_minutes_from_hours(value)
        return value

    def total_minutes(self) -> int:
        if (self.minutes is None) == (self.hours is None):
            raise errors.InvalidEntry("give the amount as exactly one of 'minutes' or 'hours'")
        if self.minutes is not None:
            return self.minutes
        return positive_minutes_from_hours(self.hours)


class ErrorBody(BaseModel):
    status_code: int
    detail: str = Field(description="What went wrong, in words a person can act on.")
    extra: dict[str, Any] | list[Any] | None = None


_ERROR_MEANINGS = {
    400: "The request is malformed or invalid; `detail` and `extra` name the field.",
    401: "Not signed in, or the token is invalid, expired or revoked.",
    403: "Signed in, but this role may not do this.",
    404: "Not found, or in an organisation the caller does not belong to.",
    409: "Refused by the ledger: balance below the minimum, key reused, already reversed, closed period.",
    429: "Too many failed sign-ins; wait for `Retry-After` seconds.",
    503: "The database is unavailable. Try again shortly; retry a write with the same Idempotency-Key.",
}


def error_responses(*codes: int) -> dict[int, ResponseSpec]:
    """OpenAPI documentation of the errors an operation can answer with."""
    return {
        code: ResponseSpec(data_container=ErrorBody, description=_ERROR_MEANINGS[code], generate_examples=False)
        for code in codes
    }


def encode_cursor(day: dt.date, ident: int) -> str:
    """An opaque cursor for a page that ended at (``day``, ``ident``)."""
    raw = f"{day.isoformat()}:{ident}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.date, int]:
    """The (day, id) of a cursor from ``encode_cursor``; a 400 for anything else."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        day, _, ident = raw.partition(":")
        if not ident.isdigit() or not ident.isascii():
            raise ValueError
        return dt.date.fromisoformat(day), int(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise errors.InvalidEntry("the cursor is not one this API gave out; start again without it") from None
