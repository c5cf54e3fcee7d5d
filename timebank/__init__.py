"""Timebank: a double-entry time-bank ledger for day services."""

__version__ = "0.1.0"
