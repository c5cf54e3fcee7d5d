"""Accounts: balances and statements, read through the ledger."""
