"""Which database failures are the client's (400), the database's absence (503), or ours (500).

The hot path (timebank/db/hot_path.py) raises asyncpg's own exceptions, not
SQLAlchemy's; both kinds must be told apart the same way.
"""

import asyncpg
import pytest

from timebank.errors import is_bad_input, is_database_unavailable


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.exceptions.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.InterfaceError("connection is closed"),
        # Seen in the restart drill: a pooled connection left mid-operation by the restart.
        asyncpg.exceptions.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
        ConnectionRefusedError(111, "Connection refused"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_losing_the_database_is_unavailable_not_a_bug(exc):
    assert is_database_unavailable(exc)
    assert not is_bad_input(exc)


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.DataError("invalid input for query argument $1 (value out of int64 range)"),
        asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence for encoding UTF8: 0x00"),
    ],
    ids=lambda exc: type(exc).__name__,
)
def test_values_the_database_cannot_take_are_bad_input(exc):
    assert is_bad_input(exc)
    assert not is_database_unavailable(exc)


def test_a_constraint_the_ledger_should_have_prevented_is_neither():
    exc = asyncpg.exceptions.CheckViolationError("new row violates check constraint")
    assert not is_bad_input(exc)
    assert not is_database_unavailable(exc)
