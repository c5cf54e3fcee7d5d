"""Correction requests: a member reports an entry of their own account as wrong; staff answer."""
