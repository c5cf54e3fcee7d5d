"""The ledger: the only code that writes hours. No HTTP in here.

Every write is one database transaction that either posts a whole, balanced
transaction or nothing; see ``posting.py`` for how the contract is kept.
"""

from timebank.ledger.amounts import hours_to_minutes, minutes_to_hours
from timebank.ledger.entries import Leg, PostedTransaction, PostingLine, Statement, StatementCursor, StatementEntry
from timebank.ledger.posting import (
    donate_to_pot,
    grant_from_pot,
    post_exchange,
    post_group_activity,
    post_opening_balance,
    reverse_transaction,
    shared_account_id,
)
from timebank.ledger.reading import balance_as_of, current_balance, get_transaction, statement

__all__ = [
    "Leg",
    "PostedTransaction",
    "PostingLine",
    "Statement",
    "StatementCursor",
    "StatementEntry",
    "balance_as_of",
    "current_balance",
    "donate_to_pot",
    "get_transaction",
    "grant_from_pot",
    "hours_to_minutes",
    "minutes_to_hours",
    "post_exchange",
    "post_group_activity",
    "post_opening_balance",
    "reverse_transaction",
    "shared_account_id",
    "statement",
]
