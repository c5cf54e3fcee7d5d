"""Names of what handlers receive by injection (Litestar's explicit dependency markers)."""

from litestar.di import NamedDependency

from timebank.auth.context import Caller, OrgAccess, OrgContext
from timebank.config import Settings
from timebank.db import Database

DatabaseDep = NamedDependency[Database]
SettingsDep = NamedDependency[Settings]
# The signed-in user (any organisation-free route).
CallerDep = NamedDependency[Caller]
# The signed-in user as an active member of the organisation in the path.
OrgContextDep = NamedDependency[OrgContext]
# The same, possibly remembered by the worker, for a route whose own statement confirms it
# (the hot routes only: see OrgAccess.run).
OrgAccessDep = NamedDependency[OrgAccess]
