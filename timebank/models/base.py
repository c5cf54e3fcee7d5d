"""Shared column types and the metadata naming convention.

No ``from __future__ import annotations`` in the model modules: it breaks
SQLModel's relationship handling.
"""

import datetime as dt

from sqlalchemy import BigInteger, DateTime, Integer, MetaData
from sqlmodel import Field, SQLModel

# Stable constraint names, so migrations can refer to them on both databases.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLModel.metadata = MetaData(naming_convention=NAMING_CONVENTION)

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def id_field() -> int | None:
    return Field(default=None, primary_key=True, sa_type=BigId)


def created_at_field() -> dt.datetime:
    return Field(default_factory=utc_now, sa_type=DateTime(timezone=True), nullable=False)
