"""How ``timebank serve`` runs: uvicorn, with checks first, in development or in production.

``--production`` is for running behind a reverse proxy (docs/deploy/): it insists on
``TIMEBANK_ENVIRONMENT=production`` (so the settings refuse the development secret),
runs two workers on PostgreSQL unless told otherwise, and refuses several workers on
SQLite. In every mode uvicorn's own handling of forwarded headers is off: the app
believes them only from ``TIMEBANK_TRUSTED_PROXIES`` (timebank/proxy.py).
"""

import datetime as dt
import gc
import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy.engine import make_url

from timebank.config import Settings, get_settings

if TYPE_CHECKING:
    from litestar import Litestar

PRODUCTION_POSTGRES_WORKERS = 2
GRACEFUL_SHUTDOWN_SECONDS = 20
# Written by prometheus-client in multiprocess mode: one file per process and kind of metric.
_METRICS_FILE_PREFIXES = ("counter_", "gauge_", "histogram_", "summary_")

SQLITE_ONE_WORKER = (
    "SQLite takes one writer at a time for the whole file, so several worker processes would only "
    "queue on its lock (each waiting up to 30 s) instead of on one event loop; they add no write "
    "capacity. Run one worker on SQLite (--workers 1), or move to PostgreSQL for several."
)


NO_TRUSTED_PROXIES = (
    "TIMEBANK_TRUSTED_PROXIES is empty: behind a reverse proxy every client has the proxy's address, "
    "and one person's failed sign-ins can lock out everyone (set it to the proxy's address)"
)


class RefusedToServe(Exception):
    """The server would not start safely with these settings; the message says what to change."""


@dataclass(frozen=True)
class ServePlan:
    settings: Settings
    host: str
    port: int
    workers: int
    production: bool
    # Where the workers' metric files go (multiprocess mode), and whether we made it ourselves.
    metrics_dir: Path | None = None
    metrics_dir_is_ours: bool = False

    def discard(self) -> None:
        """Remove what planning made for the run (the metrics' directory, if ours)."""
        if self.metrics_dir_is_ours and self.metrics_dir:
            shutil.rmtree(self.metrics_dir, ignore_errors=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def describe(self) -> dict[str, object]:
        """The one log line that says how the server runs (no secrets in it)."""
        settings = self.settings
        workers = f"{self.workers} worker{'s' if self.workers != 1 else ''}"
        return {
            "event": f"serving on {self.url} with {workers}",
            "url": self.url,
            "workers": self.workers,
            "environment": settings.environment,
            "database": describe_database(settings.database_url),
            "trusted_proxies": [str(network) for network in settings.trusted_proxies],
            "metrics": "at /metrics (token required)"
            if settings.metrics_token
            else "off (TIMEBANK_METRICS_TOKEN unset)",
            **({"metrics_dir": str(self.metrics_dir)} if self.metrics_dir else {}),
            **({"warning": NO_TRUSTED_PROXIES} if self.production and not settings.trusted_proxies else {}),
        }


def plan_server(*, host: str | None, port: int | None, workers: int | None, production: bool) -> ServePlan:
    """Check the settings and decide how to run; raises ``RefusedToServe`` with what to change."""
    if production:
        _insist_on_production_environment()
    try:
        settings = get_settings()
    except ValidationError as exc:
        problems = "; ".join(error["msg"].removeprefix("Value error, ") for error in exc.errors())
        raise RefusedToServe(f"the settings are not valid: {problems}") from None
    on_sqlite = make_url(settings.async_database_url).get_backend_name() == "sqlite"
    workers = workers or settings.workers or (PRODUCTION_POSTGRES_WORKERS if production and not on_sqlite else 1)
    if workers < 1:
        raise RefusedToServe("--workers must be at least 1")
    if production and on_sqlite and workers > 1:
        raise RefusedToServe(f"{workers} workers on SQLite: {SQLITE_ONE_WORKER}")
    metrics_dir, ours = _metrics_directory(settings, workers)
    return ServePlan(
        settings=settings,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers,
        production=production,
        metrics_dir=metrics_dir,
        metrics_dir_is_ours=ours,
    )


def create_served_app() -> "Litestar":
    """The app as ``timebank serve`` runs it in each worker: ``create_app`` and one start-up step.

    Once the worker is up, everything it has imported and built (Litestar's routes,
    SQLAlchemy's and pydantic's machinery, the templates' environment: some 160,000 objects
    that live as long as the process) is moved out of the garbage collector's sight
    with ``gc.freeze()``. Otherwise every full collection walks all of it again, and the
    request that happens to trigger one waits for it (90 to 110 ms on this machine): that was the tail of the
    pages' latency (docs/performance.md, round four). Only the served app does this, not the
    tests' many in-process apps, whose frozen objects would never be collected."""
    from timebank.app import create_app

    app = create_app()
    app.on_startup.append(freeze_what_start_up_built)
    return app


def freeze_what_start_up_built() -> None:
    # No gc.collect() first: at this point it found about 300 garbage objects (a few KB,
    # frozen with the rest) and took 76 ms, added to every worker's start.
    gc.freeze()


def run_server(plan: ServePlan) -> None:
    """Log how the server runs, then run uvicorn until it is stopped."""
    import uvicorn

    if plan.workers > 1:
        fork_workers_from_this_process()
    described = plan.describe()
    level = "warning" if "warning" in described else "info"
    line = {**described, "level": level, "timestamp": dt.datetime.now(dt.UTC).isoformat()}
    print(json.dumps(line), file=sys.stderr, flush=True)
    try:
        uvicorn.run(
            "timebank.serving:create_served_app",
            factory=True,
            host=plan.host,
            port=plan.port,
            workers=plan.workers,
            log_level=plan.settings.log_level.lower(),
            access_log=False,  # the app logs each request itself, without secrets
            proxy_headers=False,  # believed only from TIMEBANK_TRUSTED_PROXIES, by the app
            server_header=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS if plan.production else None,
        )
    finally:
        plan.discard()


def fork_workers_from_this_process() -> None:
    """Start uvicorn's workers as copies of this process, with the app's code already imported.

    uvicorn starts each worker as a new interpreter (multiprocessing's "spawn") that imports
    the whole app for itself: about 2 s of CPU per worker, all of them at once on the same
    cores, after the parent's own start. Imported once here and forked, a worker only builds
    its app (``create_served_app``) and opens its database pool, and the imported code's
    memory is shared between the workers until one writes to it: two workers start in the
    time one did (docs/performance.md, round seven).

    Forking is safe here because this process runs one thread and no event loop (the schema
    check's loop has ended, its pool is closed), and the workers open their own connections.
    If another thread is running, fork would copy only this one: the workers are spawned as
    before. The metrics' directory (``PROMETHEUS_MULTIPROC_DIR``) is set before anything
    imports prometheus-client (``plan_server`` runs first), which makes its figures
    per-process files, and prometheus-client starts a forked process's figures afresh.

    ``uvicorn._subprocess.spawn`` is the one multiprocessing context uvicorn makes its workers
    with; it has no setting for this (uvicorn is pinned, and tests/serving checks the name).
    """
    import uvicorn._subprocess

    if threading.active_count() > 1:
        return
    import timebank.app  # noqa: F401  (what each forked worker shares instead of importing)

    uvicorn._subprocess.spawn = _ForkedWorkers()  # type: ignore[assignment]


class _ForkedWorkers:
    """Makes uvicorn's workers as forks of this process, each starting with default signal handlers."""

    # Named as multiprocessing's contexts name it: uvicorn calls ``spawn.Process(...)``.
    def Process(self, target: Callable[..., None], kwargs: dict[str, Any]) -> BaseProcess:
        fork = multiprocessing.get_context("fork")
        return fork.Process(target=_as_a_new_process, args=(target,), kwargs=kwargs)


def _as_a_new_process(started: Callable[..., None], **kwargs: Any) -> None:
    """In a forked worker: forget the supervisor's signal handlers, then be the worker.

    The supervisor's handlers only queue a signal for its own loop, which a worker does not
    run; a spawned worker would have had the defaults, and uvicorn installs its own for
    SIGINT and SIGTERM as it starts serving."""
    from uvicorn.supervisors.multiprocess import SIGNALS

    for signum in SIGNALS:
        signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
    started(**kwargs)


def describe_database(url: str) -> str:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite file {parsed.database}"
    return f"PostgreSQL database {parsed.database} on {parsed.host}"


def _insist_on_production_environment() -> None:
    """``--production`` runs with environment=production, and refuses to be told otherwise."""
    explicit = os.environ.get("TIMEBANK_ENVIRONMENT")
    if explicit is None:  # perhaps in .env
        try:
            from_file = Settings()
        except ValidationError:
            from_file = None  # whatever is wrong is reported once the environment is production
        if from_file is not None and "environment" in from_file.model_fields_set:
            explicit = from_file.environment
    if explicit not in (None, "production"):
        raise RefusedToServe(f"TIMEBANK_ENVIRONMENT is {explicit!r}, but --production runs only with 'production'")
    os.environ["TIMEBANK_ENVIRONMENT"] = "production"  # for the workers too: they read the environment
    get_settings.cache_clear()


def _metrics_directory(settings: Settings, workers: int) -> tuple[Path | None, bool]:
    """The directory several workers write their figures to, so that a scrape of one reports all.

    ``PROMETHEUS_MULTIPROC_DIR`` if set (emptied of earlier runs' figures), else, for
    several workers with metrics on, a private temporary one, removed at exit. One worker
    without it keeps its figures in memory.
    """
    given = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if given:
        directory = Path(given)
        directory.mkdir(parents=True, exist_ok=True)
        ours = f"_{os.getpid()}.db"  # this process's own, opened at import: keep it
        for file in directory.iterdir():
            name = file.name
            if name.startswith(_METRICS_FILE_PREFIXES) and name.endswith(".db") and not name.endswith(ours):
                file.unlink()
        return directory, False
    if settings.metrics_token and workers > 1:
        directory = Path(tempfile.mkdtemp(prefix="timebank-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)  # inherited by the workers
        return directory, True
    return None, False
