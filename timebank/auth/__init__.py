"""Sign-in: users, password hashing and (later) tokens."""
