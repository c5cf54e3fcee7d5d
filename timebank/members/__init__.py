"""Members: people's membership of an organisation, each with a time account."""
