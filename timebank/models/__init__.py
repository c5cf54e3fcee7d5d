"""Table models, one module per table. Import from here so every table is registered."""

from timebank.models.account import Account, AccountKind
from timebank.models.base import NAMING_CONVENTION
from timebank.models.category import Category
from timebank.models.member import Member, Role
from timebank.models.organisation import Organisation
from timebank.models.transaction import Posting, Transaction, TransactionKind
from timebank.models.user import User

__all__ = [
    "NAMING_CONVENTION",
    "Account",
    "AccountKind",
    "Category",
    "Member",
    "Organisation",
    "Posting",
    "Role",
    "Transaction",
    "TransactionKind",
    "User",
]
