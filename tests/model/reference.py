"""An in-memory reference ledger: what the ledger service should answer, written from the contract.

It knows nothing of SQL, locks or fingerprints: it keeps accounts, transactions and
used idempotency keys in dictionaries, and for each request predicts the outcome —
refused with which error, a replay of which transaction, or a new transaction with
which legs — from the rules in DESIGN.md and docs/architecture.md:

- giving credits the giver (+), receiving debits the receiver (-);
- a debit may not take a member below the organisation's minimum, the pot below
  zero; the agency account has no floor; credits are always allowed;
- deactivated members' accounts refuse new postings, but reversals may touch them;
- a reversal is dated today, mirrors every leg, keeps the category, is held to the
  same floors, and happens at most once; a reversal cannot be reversed;
- a key belongs to the first committed request; the same request again is answered
  with the original, a different one is a conflict; refused requests own no key;
- the order in which refusals are found: the request itself (InvalidEntry), then its
  key, then the category, the accounts, the date, and last each leg in turn (kind,
  active, floor).
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from timebank.ledger import PostedTransaction, errors
from timebank.models import AccountKind, TransactionKind
from timebank.orgs.service import DEFAULT_CATEGORIES

MAX_LEG_MINUTES = 10_000 * 60
MAX_DESCRIPTION = 500
MAX_KEY_LENGTH = 128

PEOPLE_AND_AGENCY = frozenset({AccountKind.MEMBER, AccountKind.AGENCY})
MEMBERS = frozenset({AccountKind.MEMBER})
POT = frozenset({AccountKind.POT})
AGENCY = frozenset({AccountKind.AGENCY})
ANY_ACCOUNT = frozenset(AccountKind)


@dataclass(frozen=True)
class Request:
    """A call to one public function of ``timebank.ledger``, less the database and organisation."""

    operation: str
    arguments: dict[str, Any]

    def with_arguments(self, **changes: Any) -> "Request":
        return Request(self.operation, self.arguments | changes)


@dataclass(frozen=True)
class Refusal:
    error: type[errors.LedgerError]
    why: str


@dataclass(frozen=True)
class Replay:
    transaction_id: int


@dataclass(frozen=True)
class NewTransaction:
    kind: TransactionKind
    legs: tuple[tuple[int, int], ...]  # (account id, signed minutes), in the order posted
    occurred_on: dt.date
    description: str
    category: str | None
    recorded_by: int | None
    idempotency_key: str
    reverses_id: int | None
    signature: tuple[Any, ...]


Outcome = Refusal | Replay | NewTransaction


@dataclass
class ModelAccount:
    id: int
    kind: AccountKind
    member_id: int | None = None
    balance: int = 0
    version: int = 0
    active: bool = True


@dataclass
class ModelCategory:
    name: str
    active: bool = True


@dataclass
class ModelTransaction:
    id: int
    kind: TransactionKind
    legs: tuple[tuple[int, int], ...]
    occurred_on: dt.date
    category_key: str | None  # transactions name their category by identity: a rename shows everywhere
    posted: PostedTransaction  # as the service first answered, to compare replays and reads with
    reversed_by: int | None = None


class _Refused(Exception):
    def __init__(self, error: type[errors.LedgerError], why: str) -> None:
        self.error = error
        self.why = why


@dataclass
class ReferenceLedger:
    """One organisation's ledger, as the contract says it should be."""

    min_balance: int
    timezone: str
    accounts: dict[int, ModelAccount] = field(default_factory=dict)
    transactions: dict[int, ModelTransaction] = field(default_factory=dict)
    keys: dict[str, tuple[tuple[Any, ...], int]] = field(default_factory=dict)  # key -> (signature, transaction)
    # Keyed by the case-folded name, as the organisation's settings match them.
    categories: dict[str, ModelCategory] = field(
        default_factory=lambda: {_key(name): ModelCategory(name) for name in DEFAULT_CATEGORIES}
    )
    books_closed_through: dt.date | None = None

    # ------------------------------------------------------------------ accounts and rules

    def open_account(self, account_id: int, kind: AccountKind, member_id: int | None = None) -> None:
        self.accounts[account_id] = ModelAccount(account_id, kind, member_id)

    def debit_floor(self, account: ModelAccount) -> int | None:
        """The lowest balance a debit may reach."""
        return {AccountKind.MEMBER: self.min_balance, AccountKind.POT: 0}.get(account.kind)

    def stored_floor(self, account: ModelAccount) -> int | None:
        """The limit the database holds the balance to: never above the balance itself."""
        floor = self.debit_floor(account)
        return None if floor is None else min(floor, account.balance)

    def headroom(self, account_id: int) -> int | None:
        """How many minutes a debit may take from the account, or None for no limit."""
        account = self.accounts.get(account_id)
        if account is None:
            return None
        floor = self.debit_floor(account)
        return None if floor is None else account.balance - floor

    def balance_as_of(self, account_id: int, on: dt.date) -> int:
        return sum(
            minutes
            for transaction in self.transactions.values()
            if transaction.occurred_on <= on
            for account, minutes in transaction.legs
            if account == account_id
        )

    def statement_lines(self, account_id: int, start: dt.date, end: dt.date) -> list[tuple[int, dt.date, int]]:
        """(transaction, date, minutes) of the account's postings in the period, in date then id order."""
        lines = [
            (transaction.id, transaction.occurred_on, minutes)
            for transaction in self.transactions.values()
            if start <= transaction.occurred_on <= end
            for account, minutes in transaction.legs
            if account == account_id
        ]
        return sorted(lines, key=lambda line: (line[1], line[0]))

    def change_minimum(self, minutes: int) -> Refusal | None:
        if minutes > 0:
            return Refusal(errors.InvalidEntry, "a minimum balance above zero")
        self.min_balance = minutes
        return None

    def set_categories(self, names: Sequence[str]) -> None:
        """The organisation's categories become ``names``: matching ones renamed, others retired."""
        wanted = {_key(name): name for name in names}
        for key, category in self.categories.items():
            category.active = key in wanted
            category.name = wanted.get(key, category.name)
        for key, name in wanted.items():
            self.categories.setdefault(key, ModelCategory(name))

    def category_name(self, transaction: "ModelTransaction") -> str | None:
        """The transaction's category as read back now."""
        return None if transaction.category_key is None else self.categories[transaction.category_key].name

    def close_books(self, through: dt.date, today: dt.date) -> Refusal | None:
        if through >= today:
            return Refusal(errors.InvalidEntry, "books closed through today or later")
        self.books_closed_through = through
        return None

    # ------------------------------------------------------------------ predicting a request

    def expect(self, request: Request, today: dt.date) -> Outcome:
        """What the service must answer to ``request`` in the model's present state."""
        try:
            if request.operation == "reverse_transaction":
                return self._expect_reversal(request.arguments, today)
            return self._expect_posting(request.operation, request.arguments, today)
        except _Refused as refused:
            return Refusal(refused.error, refused.why)

    def _expect_posting(self, operation: str, args: dict[str, Any], today: dt.date) -> Outcome:
        kind, legs, allowed = self._legs(operation, args)
        key = _valid_key(args["idempotency_key"])
        description = _valid_description(args["description"])
        if len(legs) > 200:
            raise _Refused(errors.InvalidEntry, "too many legs")
        if len({account for account, _ in legs}) != len(legs):
            raise _Refused(errors.InvalidEntry, "an account appears twice")
        category = _normal_category(args.get("category"))
        occurred_on = args["occurred_on"]
        signature = (
            kind,
            tuple(sorted(legs)),
            occurred_on,
            description,
            None if category is None else _key(category),  # a category spelled otherwise is the same request
            args["recorded_by"],
            None,
        )
        if key in self.keys:
            return self._replay_or_conflict(key, signature)
        # Categories match ignoring case and spacing.
        known = self.categories.get(_key(category)) if category is not None else None
        if category is not None and (known is None or not known.active):
            raise _Refused(errors.UnknownCategory, f"no category {category!r}")
        for account, _ in legs:
            if account not in self.accounts:
                raise _Refused(errors.UnknownAccount, f"account {account} is not in this organisation")
        if occurred_on > today:
            raise _Refused(errors.FutureDate, f"{occurred_on} is after {today}")
        if self.books_closed_through is not None and occurred_on <= self.books_closed_through:
            raise _Refused(errors.PeriodClosed, f"{occurred_on} is in the closed period")
        self._check_legs(legs, allowed, reversal=False)
        # Answered in the organisation's own spelling, whatever was typed.
        spelled = known.name if known is not None else None
        return NewTransaction(kind, legs, occurred_on, description, spelled, args["recorded_by"], key, None, signature)

    def _legs(
        self, operation: str, args: dict[str, Any]
    ) -> tuple[TransactionKind, tuple[tuple[int, int], ...], dict[int, frozenset[AccountKind]]]:
        agency = self._shared(AccountKind.AGENCY)
        pot = self._shared(AccountKind.POT)
        if operation == "post_exchange":
            giver, receiver, minutes = args["giver_account_id"], args["receiver_account_id"], args["minutes"]
            _valid_amount(minutes)
            if giver == receiver:
                raise _Refused(errors.InvalidEntry, "giver and receiver are one account")
            return (
                TransactionKind.EXCHANGE,
                ((giver, minutes), (receiver, -minutes)),
                {giver: PEOPLE_AND_AGENCY, receiver: PEOPLE_AND_AGENCY},
            )
        if operation == "post_group_activity":
            givers, receivers = args["givers"], args["receivers"]
            if not givers or not receivers:
                raise _Refused(errors.InvalidEntry, "a side is empty")
            for _, minutes in (*givers, *receivers):
                _valid_amount(minutes)
            if sum(m for _, m in givers) != sum(m for _, m in receivers):
                raise _Refused(errors.InvalidEntry, "the sides do not balance")
            legs = tuple((a, m) for a, m in givers) + tuple((a, -m) for a, m in receivers)
            return TransactionKind.GROUP, legs, {a: PEOPLE_AND_AGENCY for a, _ in legs}
        member, minutes = args["member_account_id"], args["minutes"]
        if operation == "donate_to_pot":
            _valid_amount(minutes)
            return TransactionKind.DONATION, ((member, -minutes), (pot, minutes)), {member: MEMBERS, pot: POT}
        if operation == "grant_from_pot":
            _valid_amount(minutes)
            return TransactionKind.GRANT, ((pot, -minutes), (member, minutes)), {member: MEMBERS, pot: POT}
        if operation == "post_opening_balance":
            if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes == 0:
                raise _Refused(errors.InvalidEntry, "opening balance of zero or not whole minutes")
            _valid_amount(abs(minutes))
            return (
                TransactionKind.OPENING_BALANCE,
                ((member, minutes), (agency, -minutes)),
                {member: MEMBERS, agency: AGENCY},
            )
        raise AssertionError(f"no such operation {operation}")

    def _expect_reversal(self, args: dict[str, Any], today: dt.date) -> Outcome:
        key = _valid_key(args["idempotency_key"])
        description = _valid_description(args["reason"])
        target = args["transaction_id"]
        signature = (TransactionKind.REVERSAL, (), None, description, None, args["recorded_by"], target)
        if key in self.keys:
            return self._replay_or_conflict(key, signature)
        original = self.transactions.get(target)
        if original is None:
            raise _Refused(errors.TransactionNotFound, f"no transaction {target} in this organisation")
        if original.kind is TransactionKind.REVERSAL:
            raise _Refused(errors.CannotReverse, f"{target} is a reversal")
        if original.reversed_by is not None:
            raise _Refused(errors.AlreadyReversed, f"{target} was reversed by {original.reversed_by}")
        legs = tuple((account, -minutes) for account, minutes in original.legs)
        self._check_legs(legs, {account: ANY_ACCOUNT for account, _ in legs}, reversal=True)
        return NewTransaction(
            TransactionKind.REVERSAL,
            legs,
            today,
            description,
            self.category_name(original),
            args["recorded_by"],
            key,
            target,
            signature,
        )

    def _replay_or_conflict(self, key: str, signature: tuple[Any, ...]) -> Outcome:
        first_signature, transaction_id = self.keys[key]
        if first_signature != signature:
            raise _Refused(errors.IdempotencyConflict, f"key {key!r} belongs to transaction {transaction_id}")
        return Replay(transaction_id)

    def _check_legs(
        self, legs: Sequence[tuple[int, int]], allowed: dict[int, frozenset[AccountKind]], *, reversal: bool
    ) -> None:
        for account_id, minutes in legs:
            account = self.accounts[account_id]
            if account.kind not in allowed[account_id]:
                raise _Refused(errors.InvalidEntry, f"a {account.kind} account cannot take part")
            if not account.active and not reversal:
                raise _Refused(errors.AccountInactive, f"account {account_id} is deactivated")
            floor = self.debit_floor(account)
            if minutes < 0 and floor is not None and account.balance + minutes < floor:
                raise _Refused(
                    errors.InsufficientBalance,
                    f"account {account_id} at {account.balance} cannot give {-minutes} (floor {floor})",
                )

    def _shared(self, kind: AccountKind) -> int:
        return next(a.id for a in self.accounts.values() if a.kind is kind)

    # ------------------------------------------------------------------ recording what happened

    def record(self, new: NewTransaction, posted: PostedTransaction) -> None:
        """The service posted ``new`` as ``posted``: move the balances and take the key."""
        for account_id, minutes in new.legs:
            account = self.accounts[account_id]
            account.balance += minutes
            account.version += 1
        self.transactions[posted.id] = ModelTransaction(
            posted.id, new.kind, new.legs, new.occurred_on, _category_key(self, new), posted
        )
        if new.reverses_id is not None:
            self.transactions[new.reverses_id].reversed_by = posted.id
        self.keys[new.idempotency_key] = (new.signature, posted.id)

    @property
    def posting_count(self) -> int:
        return sum(len(t.legs) for t in self.transactions.values())


def _valid_amount(minutes: object) -> None:
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise _Refused(errors.InvalidEntry, f"{minutes!r} is not whole minutes")
    if not 0 < minutes <= MAX_LEG_MINUTES:
        raise _Refused(errors.InvalidEntry, f"{minutes} minutes is out of bounds")


def _valid_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not all(" " <= ch <= "~" for ch in key):
        raise _Refused(errors.InvalidEntry, f"bad key {key!r}")
    return key


def _valid_description(description: str) -> str:
    description = description.strip()
    if not description or len(description) > MAX_DESCRIPTION:
        raise _Refused(errors.InvalidEntry, "a blank or overlong description")
    return description


def _category_key(ledger: ReferenceLedger, new: NewTransaction) -> str | None:
    if new.reverses_id is not None:
        return ledger.transactions[new.reverses_id].category_key
    return None if new.category is None else _key(new.category)


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


def _normal_category(category: str | None) -> str | None:
    return None if category is None else (" ".join(category.split()) or None)
