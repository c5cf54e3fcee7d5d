"""Database access: engines for both databases, sessions, and migrations."""

from timebank.db.engine import Database, create_database

__all__ = ["Database", "create_database"]
