"""A real ``timebank serve`` process: start it, wait for /ready, kill it, start it again.

The server runs as in production: its own process, event loop and connection
pool, configured only by ``TIMEBANK_*`` variables, in a scratch working directory
(so no stray ``.env`` or SQLite file is read). Organisations are seeded the way a
maintainer would: ``timebank org create`` for the coordinator, then the API.
"""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

SECRET_KEY = "drill-secret-key-not-for-production-0123456789"
COORDINATOR_PASSWORD = "drill coordinator password"
START_TIMEOUT_SECONDS = 30.0
CLI_TIMEOUT_SECONDS = 120.0


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class VerifyResult:
    """What ``timebank verify`` said."""

    passed: bool
    problems: list[str]
    output: str


class ServerProcess:
    """``timebank serve`` on a loopback port, restartable on the same port."""

    def __init__(
        self,
        database_url: str,
        workdir: Path,
        *,
        port: int | None = None,
        workers: int = 1,
        production: bool = False,
        extra_env: dict[str, str] | None = None,
        **settings: str,
    ) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.port = port or free_port()
        self.workers = workers
        self.production = production  # `timebank serve --production`
        self._extra_env = extra_env or {}  # variables other than TIMEBANK_* ones
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log_file = workdir / f"serve-{self.port}.log"
        self.starts = 0
        self.kills = 0
        self._settings = {f"TIMEBANK_{name.upper()}": value for name, value in settings.items()}
        self._process: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ the command line

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "TIMEBANK_DATABASE_URL": self.database_url,
            "TIMEBANK_ENVIRONMENT": "production",
            "TIMEBANK_SECRET_KEY": SECRET_KEY,
            "TIMEBANK_LOG_LEVEL": "WARNING",
            **self._extra_env,
            **self._settings,
        }

    def cli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run ``timebank <args>`` against this server's database; output captured."""
        return subprocess.run(
            [sys.executable, "-m", "timebank", *args],
            env={**self.environment(), **(env or {})},
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_SECONDS,
            check=False,
        )

    def migrate(self) -> None:
        _check(self.cli("migrate"), "timebank migrate")

    def verify(self) -> VerifyResult:
        done = self.cli("verify")
        problems = [line for line in done.stderr.splitlines() if line.startswith("FAIL")]
        if done.returncode != 0 and not problems:
            problems = [f"timebank verify exited with {done.returncode}: {done.stderr.strip()[-2000:]}"]
        return VerifyResult(done.returncode == 0, problems, done.stdout + done.stderr)

    # ------------------------------------------------------------------ the server

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None and self._process.poll() is None else None

    def command(self) -> list[str]:
        return [
            *(sys.executable, "-m", "timebank", "serve", "--port", str(self.port)),
            *("--workers", str(self.workers), *(["--production"] if self.production else [])),
        ]

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> float:
        """Start the server and wait until /ready answers 200; returns the seconds that took."""
        if self.pid is not None:
            raise RuntimeError(f"the server is already running (pid {self.pid})")
        began = time.monotonic()
        with self.log_file.open("ab") as log:
            # A session of its own, so a kill reaches every worker process too.
            self._process = subprocess.Popen(
                self.command(),
                env=self.environment(),
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        self._wait_until_ready(began + timeout)
        return time.monotonic() - began

    def kill(self) -> None:
        """SIGKILL the server (and its workers): no shutdown, no cleanup, as in a crash."""
        self._signal(signal.SIGKILL)
        self.kills += 1

    def stop(self) -> None:
        """Shut the server down gracefully (SIGTERM), killing it if it does not go."""
        if self._process is None:
            return
        self._signal(signal.SIGTERM, wait=10.0)

    def _signal(self, signum: int, wait: float = 5.0) -> None:
        process = self._process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signum)
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self._process = None

    def _wait_until_ready(self, deadline: float) -> None:
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"timebank serve exited with {self._process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.base_url}/ready", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"timebank serve was not ready in time:\n{self.log_tail()}")

    def log_tail(self, characters: int = 4000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-characters:]
        except FileNotFoundError:
            return ""

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


@dataclass(frozen=True)
class SeededOrg:
    """An organisation to load: a coordinator's token and member accounts to move hours between."""

    slug: str
    token: str
    coordinator_username: str
    coordinator_account_id: int
    account_ids: list[int]
    min_balance_minutes: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def url(self, path: str = "") -> str:
        return f"/api/v1/orgs/{self.slug}{path}"


def seed_organisation(server: ServerProcess, *, members: int, min_balance_hours: str = "-20") -> SeededOrg:
    """A new organisation (``timebank org create``) with ``members`` members registered through the API."""
    slug = f"drill-{uuid.uuid4().hex[:10]}"
    coordinator = f"coordinator-{slug}"
    _check(
        server.cli(
            "org", "create", slug, "--name", f"Drill centre {slug}", "--coordinator", coordinator,
            "--min-balance-hours", min_balance_hours,
            env={"TIMEBANK_INITIAL_PASSWORD": COORDINATOR_PASSWORD},
        ),
        "timebank org create",
    )  # fmt: skip
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        signed_in = http.post("/api/v1/auth/token", json={"username": coordinator, "password": COORDINATOR_PASSWORD})
        signed_in.raise_for_status()
        token = signed_in.json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        me = http.get("/api/v1/me", headers=headers)
        me.raise_for_status()
        (membership,) = me.json()["organisations"]
        organisation = http.get(f"/api/v1/orgs/{slug}", headers=headers)
        organisation.raise_for_status()
        account_ids = []
        for number in range(1, members + 1):
            created = http.post(
                f"/api/v1/orgs/{slug}/members", json={"display_name": f"Member {number}"}, headers=headers
            )
            created.raise_for_status()
            account_ids.append(created.json()["account_id"])
    return SeededOrg(
        slug=slug,
        token=token,
        coordinator_username=coordinator,
        coordinator_account_id=membership["account_id"],
        account_ids=account_ids,
        min_balance_minutes=organisation.json()["min_balance"]["minutes"],
    )


def _check(done: subprocess.CompletedProcess[str], what: str) -> None:
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
