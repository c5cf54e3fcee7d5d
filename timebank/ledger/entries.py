"""What the ledger returns: plain, immutable records (no ORM objects leave the ledger)."""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from timebank.auth.sign_in_cache import SignInCheck
from timebank.models import AccountKind, TransactionKind


@dataclass(frozen=True, slots=True)
class Leg:
    """One side of a transaction: + credits the account (gave help), - debits it."""

    account_id: int
    minutes: int


@dataclass(frozen=True, slots=True)
class PostingRequest:
    """A validated request to post, on its way to the database (built by ``posting.py``)."""

    organisation_id: int
    kind: TransactionKind
    legs: tuple[Leg, ...]
    # Which kinds of account each leg's account may be (an exchange cannot touch the pot).
    allowed_kinds: dict[int, frozenset[AccountKind]]
    occurred_on: dt.date | None  # None: today in the organisation's time zone (reversals)
    description: str
    category: str | None  # as the caller spelled it (for messages)
    category_key: str | None  # how it is matched: see models.category.category_key
    recorded_by: int | None
    idempotency_key: str
    # SHA-256 of the canonical request: the same key with another request is a conflict.
    fingerprint: str
    reverses_id: int | None = None
    # Reversals may touch deactivated accounts: a mistake must stay correctable.
    allow_inactive: bool = False
    # The caller's standing as a worker remembered it: the write is refused with
    # SignInChanged, before anything is written, if it moved (auth/sign_in_cache.py).
    sign_in: SignInCheck | None = None


@dataclass(frozen=True, slots=True)
class PostingLine:
    account_id: int
    minutes: int
    balance_after: int
    account_version: int


@dataclass(frozen=True, slots=True)
class PostedTransaction:
    id: int
    organisation_id: int
    kind: TransactionKind
    occurred_on: dt.date
    recorded_at: dt.datetime
    recorded_by_user_id: int | None
    description: str
    category: str | None
    idempotency_key: str
    reverses_id: int | None
    postings: tuple[PostingLine, ...]
    # False when this is the original result returned for a replayed idempotency key.
    created: bool = True
    # The reversal that cancelled this transaction, if any (filled in when read back).
    reversed_by_id: int | None = None
    # For a reversal: the kind of the transaction it reverses (what a member may see of it
    # depends on it, see visibility.py).
    reverses_kind: TransactionKind | None = None
    # How each account is named to people (reading.account_label), when the write read the
    # names in its own statements; None when it did not (a replay), and present() asks.
    # A write's answer needs them, and asking separately cost a round trip per write.
    labels: Mapping[int, str] | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class StatementEntry:
    transaction_id: int
    kind: TransactionKind
    occurred_on: dt.date
    recorded_at: dt.datetime
    description: str
    category: str | None
    counterparts: tuple[str, ...]
    minutes: int
    running_balance: int


@dataclass(frozen=True, slots=True)
class StatementCursor:
    """Where a page of a statement ended: the last entry's date and transaction id."""

    occurred_on: dt.date
    transaction_id: int


@dataclass(frozen=True, slots=True)
class Statement:
    """A period of an account's history, or one page of it.

    ``opening_balance`` and ``closing_balance`` are those of the whole period; the
    entries of a page carry running balances that continue from the page before.
    """

    account_id: int
    start: dt.date
    end: dt.date
    opening_balance: int
    entries: tuple[StatementEntry, ...]
    closing_balance: int
    # Set when the period holds more entries after this page: pass it back as ``after``.
    next_page: StatementCursor | None = None
