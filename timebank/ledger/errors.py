"""Domain errors of the ledger. Each carries its HTTP meaning; the API maps them in one place."""

from typing import Any


class LedgerError(Exception):
    """Base of every refusal the ledger makes. ``message`` is meant for a person to act on.

    ``status_code`` is the HTTP answer; named as Litestar names it, so its logging sees a
    client error (answered, not logged with a traceback).
    """

    status_code = 400

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class InvalidEntry(LedgerError):
    """The request itself is malformed: amounts, legs, description, key, dates."""

    status_code = 400


class UnknownAccount(LedgerError):
    # 400, not 404: the account is named in the request body. The message is the same
    # whether the account does not exist or belongs to another organisation.
    status_code = 400


class UnknownCategory(LedgerError):
    status_code = 400


class FutureDate(LedgerError):
    status_code = 400


class NotAllowed(LedgerError):
    """The caller's role does not allow this (a rule of the service, so API and pages share it)."""

    status_code = 403


class NotFound(LedgerError):
    status_code = 404


class OrganisationNotFound(NotFound):
    pass


class AccountNotFound(NotFound):
    pass


class TransactionNotFound(NotFound):
    pass


class LedgerConflict(LedgerError):
    """The request is well formed but the ledger's state refuses it."""

    status_code = 409


class InsufficientBalance(LedgerConflict):
    pass


class AccountInactive(LedgerConflict):
    pass


class PeriodClosed(LedgerConflict):
    pass


class IdempotencyConflict(LedgerConflict):
    pass


class AlreadyReversed(LedgerConflict):
    pass


class CannotReverse(LedgerConflict):
    pass
