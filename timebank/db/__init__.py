"""Database access: engines for both databases, sessions, and migrations."""

from timebank.db.engine import Database, as_utc, create_database

__all__ = ["Database", "as_utc", "create_database"]
