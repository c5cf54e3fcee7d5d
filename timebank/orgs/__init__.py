"""Organisations: the day services that each run a time bank."""
