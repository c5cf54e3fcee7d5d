"""The last good backup, as ``timebank backup`` records it in ``TIMEBANK_BACKUP_STATUS_FILE``.

The file is JSON: ``{"finished_at": "2026-12-01T02:00:07Z", "path": "...", "bytes": 123456}``,
``finished_at`` in ISO-8601 UTC. It is rewritten after each backup that completed.
"""

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BackupStatus:
    finished_at: dt.datetime
    path: str
    bytes: int | None


class UnreadableBackupStatus(Exception):
    pass


def read_backup_status(file: Path) -> BackupStatus | None:
    """The last good backup, or None if none was ever recorded; ``UnreadableBackupStatus`` if garbled."""
    try:
        raw = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise UnreadableBackupStatus(f"cannot read {file}: {exc.strerror}") from None
    try:
        status = json.loads(raw)
        finished_at = dt.datetime.fromisoformat(status["finished_at"])
        size = status.get("bytes")
        if finished_at.tzinfo is None or (size is not None and not isinstance(size, int)):
            raise ValueError("finished_at needs a time zone, bytes must be an integer")
        return BackupStatus(finished_at.astimezone(dt.UTC), str(status.get("path", "")), size)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise UnreadableBackupStatus(f"{file} is not a backup status: {exc}") from None
