"""Table models, one module per table. Import from here so every table is registered."""

from timebank.models.account import Account, AccountKind
from timebank.models.api_token import ApiToken
from timebank.models.base import NAMING_CONVENTION
from timebank.models.browser_session import BrowserSession
from timebank.models.category import Category, category_key
from timebank.models.change import Change
from timebank.models.correction import CorrectionAnswer, CorrectionRequest
from timebank.models.hourly_rate import HourlyRate
from timebank.models.member import Member, Role
from timebank.models.organisation import Organisation
from timebank.models.period_close import ClosedBalance, PeriodClose
from timebank.models.sign_in_failure import SignInFailure
from timebank.models.transaction import Posting, Transaction, TransactionKind
from timebank.models.user import User

__all__ = [
    "NAMING_CONVENTION",
    "Account",
    "AccountKind",
    "ApiToken",
    "BrowserSession",
    "Category",
    "Change",
    "ClosedBalance",
    "CorrectionAnswer",
    "CorrectionRequest",
    "HourlyRate",
    "Member",
    "Organisation",
    "PeriodClose",
    "Posting",
    "Role",
    "SignInFailure",
    "Transaction",
    "TransactionKind",
    "User",
    "category_key",
]
