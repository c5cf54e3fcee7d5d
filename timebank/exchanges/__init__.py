"""Exchanges: logging help given and received, group activities, reversals."""
