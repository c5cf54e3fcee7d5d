"""Monthly activity reports, month close, statements and ledger exports as CSV and JSON lines."""
