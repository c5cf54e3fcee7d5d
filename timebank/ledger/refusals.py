"""The ledger's refusals, worded once for both writers (step by step, and in one round trip)."""

import datetime as dt

from timebank.ledger import errors
from timebank.ledger.amounts import minutes_to_hours
from timebank.models import TransactionKind


def future_date(occurred_on: dt.date, today: dt.date, timezone: str) -> errors.FutureDate:
    return errors.FutureDate(
        f"occurred_on {occurred_on.isoformat()} is in the future; today is {today.isoformat()} in {timezone}",
        today=today.isoformat(),
        timezone=timezone,
    )


def period_closed(occurred_on: dt.date, books_closed_through: dt.date) -> errors.PeriodClosed:
    return errors.PeriodClosed(
        f"the books are closed up to {books_closed_through.isoformat()}; "
        f"an entry dated {occurred_on.isoformat()} cannot be added. Date it after that, or ask a coordinator",
        books_closed_through=books_closed_through.isoformat(),
    )


def unknown_account(account_id: int) -> errors.UnknownAccount:
    return errors.UnknownAccount(f"no account {account_id} in this organisation", account_id=account_id)


def unknown_category(category: str) -> errors.UnknownCategory:
    return errors.UnknownCategory(
        f"there is no category {category!r} in this organisation; "
        "a coordinator can add it in the organisation's settings"
    )


def wrong_account_kind(account_id: int, account_kind: str, kind: TransactionKind) -> errors.InvalidEntry:
    return errors.InvalidEntry(
        f"account {account_id} is a {account_kind} account, which a {kind.value.replace('_', ' ')} cannot use"
    )


def account_inactive(account_id: int) -> errors.AccountInactive:
    return errors.AccountInactive(
        f"account {account_id} belongs to a deactivated member; reactivate them first", account_id=account_id
    )


def insufficient_balance(account_id: int, balance: int, floor: int, requested: int) -> errors.InsufficientBalance:
    return errors.InsufficientBalance(
        f"account {account_id} has a balance of {minutes_to_hours(balance)} hours; "
        f"taking {minutes_to_hours(requested)} hours would leave "
        f"{minutes_to_hours(balance - requested)}, below the minimum of {minutes_to_hours(floor)} hours",
        account_id=account_id,
        balance_minutes=balance,
        min_balance_minutes=floor,
        requested_minutes=requested,
    )


def idempotency_conflict(key: str, transaction_id: int) -> errors.IdempotencyConflict:
    return errors.IdempotencyConflict(
        f"the idempotency key {key!r} was already used for a different request "
        f"(transaction {transaction_id}); use a new key for a new entry",
        transaction_id=transaction_id,
    )


def already_reversed(transaction_id: int, reversal_id: int | None = None) -> errors.AlreadyReversed:
    by = f" by transaction {reversal_id}" if reversal_id else ""
    return errors.AlreadyReversed(
        f"transaction {transaction_id} has already been reversed{by}; a transaction is reversed at most once",
        reversal_id=reversal_id,
    )
