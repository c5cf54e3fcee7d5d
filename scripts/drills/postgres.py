"""Databases for drills: a scratch database on a shared server, or a private cluster to stop and start.

A drill that stops PostgreSQL must never touch a server others use, so it
starts its own cluster (``initdb`` in a scratch directory, on a free port,
listening on the loopback only). Run as root, the cluster runs as the
``postgres`` user, as PostgreSQL requires.
"""

import asyncio
import glob
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg

from scripts.drills.live_server import free_port

DEFAULT_SERVER_URL = os.environ.get("TIMEBANK_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")


async def _execute(server_url: str, statement: str) -> None:
    conn = await asyncpg.connect(f"{server_url}/postgres", timeout=10)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def create_database(server_url: str, name: str | None = None) -> str:
    """A new empty database on ``server_url``; returns its URL."""
    name = name or f"timebank_drill_{uuid.uuid4().hex[:12]}"
    asyncio.run(_execute(server_url, f'CREATE DATABASE "{name}"'))
    return f"{server_url}/{name}"


def drop_database(database_url: str) -> None:
    server_url, name = database_url.rsplit("/", 1)
    asyncio.run(_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def scratch_database(server_url: str, *, keep: bool = False) -> Iterator[str]:
    """A new database on ``server_url`` for the length of the block, dropped afterwards unless ``keep``."""
    url = create_database(server_url)
    try:
        yield url
    finally:
        if not keep:
            drop_database(url)


def find_postgres_bindir() -> Path | None:
    """Where ``initdb`` and ``pg_ctl`` live: $TIMEBANK_PG_BIN, ``pg_config --bindir``, the newest Debian one, PATH."""
    candidates = [os.environ.get("TIMEBANK_PG_BIN", "")]
    if shutil.which("pg_config"):
        done = subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True, check=False)
        candidates.append(done.stdout.strip())
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    candidates += [str(Path(found).parent) for found in [shutil.which("initdb")] if found]
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    return None


class PrivateCluster:
    """A throwaway PostgreSQL cluster in ``directory``, on a free loopback port."""

    def __init__(self, directory: Path, *, bindir: Path | None = None, port: int | None = None) -> None:
        found = bindir or find_postgres_bindir()
        if found is None:
            raise RuntimeError("initdb and pg_ctl not found: install PostgreSQL or set TIMEBANK_PG_BIN")
        self.bindir = found
        self.directory = directory
        self.data = directory / "data"
        self.port = port or free_port()
        self.server_url = f"postgresql://postgres@127.0.0.1:{self.port}"
        self._as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def _run(self, *args: str) -> None:
        done = subprocess.run([*self._as_postgres, *args], capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    def init(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            # PostgreSQL refuses to run as root: the postgres user owns the cluster.
            shutil.chown(self.directory, "postgres", "postgres")
            reachable = subprocess.run([*self._as_postgres, "test", "-w", str(self.directory)], check=False)
            if reachable.returncode != 0:
                raise RuntimeError(f"the postgres user cannot reach {self.directory}: make its parents traversable")
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def start(self) -> float:
        """Start the cluster; returns once it accepts connections (seconds taken)."""
        began = time.monotonic()
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._run(
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options,
            "-l", str(self.directory / "postgres.log"), "-w", "-t", "60", "start",
        )  # fmt: skip
        return time.monotonic() - began

    def stop(self, mode: str = "fast") -> float:
        """Stop the cluster (``fast``: roll back open transactions; ``immediate``: as in a crash)."""
        began = time.monotonic()
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")
        return time.monotonic() - began

    def is_running(self) -> bool:
        done = subprocess.run(
            [*self._as_postgres, str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
            check=False,
        )
        return done.returncode == 0

    def stop_if_running(self) -> None:
        if self.data.exists() and self.is_running():
            self.stop("immediate")
