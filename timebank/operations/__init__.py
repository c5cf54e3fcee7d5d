"""Running Timebank for real: backups and restores, moving between databases."""
