"""The fault drills of scripts/, run at a small size exactly as a maintainer runs them.

scripts/drill-server-kill SIGKILLs the server during a load of exchanges;
scripts/drill-database-restart stops and starts PostgreSQL during one. Each
audits the ledger afterwards and exits non-zero on any lost, duplicated or
unexpected write, any invariant violation, or (for the database) any answer
other than a prompt 503 while it is down, or a slow recovery.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.drills.postgres import find_postgres_bindir
from tests.conftest import POSTGRES_SERVER_URL, REQUIRE_POSTGRES, require_postgres

pytestmark = pytest.mark.live_server

ROOT = Path(__file__).resolve().parents[2]
DRILL_TIMEOUT_SECONDS = 300


def run_drill(module: str, tmp_path: Path, *options: str) -> dict:
    """Run a drill; returns its figures after checking it passed."""
    report = tmp_path / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", f"scripts.drills.{module}", *options, "--seed", "1", "--report-json", str(report)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=DRILL_TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    result = json.loads(report.read_text())
    assert result["passed"] and result["problems"] == []
    return dict(result["figures"])


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_killing_the_server_loses_and_duplicates_nothing(database: str, tmp_path: Path) -> None:
    if database == "postgresql":
        require_postgres()
    figures = run_drill(
        "server_kill", tmp_path,
        "--database", database, "--postgres-server", POSTGRES_SERVER_URL,
        "--exchanges", "300", "--clients", "8", "--kills", "3",
    )  # fmt: skip

    assert figures["faults injected (SIGKILLs)"] == 3
    assert figures["connections refused or reset"] > 0, "no request was ever cut off: the kills tested nothing"
    assert figures["acknowledged writes"] + figures["refused writes (4xx)"] == 300
    for must_be_zero in (
        "lost acknowledged writes",
        "duplicated writes",
        "unexpected transactions",
        "balance mismatches",
        "invariant violations (timebank verify)",
        "server errors (5xx other than 503)",
    ):
        assert figures[must_be_zero] == 0, must_be_zero


def test_stopping_postgresql_gives_503s_then_recovers_without_a_restart(tmp_path: Path) -> None:
    if find_postgres_bindir() is None or (os.geteuid() == 0 and not _postgres_user_exists()):
        reason = "initdb and pg_ctl are needed for a private PostgreSQL cluster (set TIMEBANK_PG_BIN)"
        if REQUIRE_POSTGRES:
            pytest.fail(f"{reason}, and TIMEBANK_REQUIRE_POSTGRES=1")
        pytest.skip(reason)
    figures = run_drill(
        "database_restart", tmp_path,
        "--exchanges", "300", "--clients", "8", "--restarts", "2", "--down-seconds", "1.5",
    )  # fmt: skip

    assert figures["faults injected (database stops)"] == 2
    assert figures["stop modes"] == {"fast": 1, "immediate": 1}
    answered = figures["answers while the database was down"]
    assert answered.get("/ready 503", 0) > 0 and answered.get("write 503", 0) > 0
    assert figures["  not 503 (must be 0)"] == 0
    assert all(seconds <= 5 for seconds in figures["seconds from return to a successful write"])
    assert figures["service restarts needed"] == 0
    assert figures["lost acknowledged writes"] == 0
    assert figures["invariant violations (timebank verify)"] == 0


def _postgres_user_exists() -> bool:
    import pwd

    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return True
