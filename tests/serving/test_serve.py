"""``timebank serve`` and ``--production``: what it refuses, what it tells uvicorn, what it logs.

uvicorn itself is replaced by a recorder here; tests/serving/test_live_server.py runs it.
"""

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiosqlite.core
import pytest
import uvicorn._subprocess
from click.testing import CliRunner

from timebank.cli import main
from timebank.config import DEVELOPMENT_SECRET, get_settings
from timebank.db.migrate import upgrade
from timebank.serving import RefusedToServe, ServePlan, fork_workers_from_this_process, plan_server, run_server

SECRET = "a-production-secret-key-of-some-length-0123456789"
POSTGRES = "postgresql://timebank@127.0.0.1:5432/timebank"
SQLITE = "sqlite:///timebank.sqlite3"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """Only what each test sets; all restored afterwards (serving sets variables for its workers)."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("TIMEBANK_") or name == "PROMETHEUS_MULTIPROC_DIR":
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env
    # run_server with several workers makes uvicorn fork them: put its way back afterwards.
    monkeypatch.setattr(uvicorn._subprocess, "spawn", uvicorn._subprocess.spawn)
    get_settings.cache_clear()
    yield monkeypatch
    os.environ.clear()
    os.environ.update(saved)
    get_settings.cache_clear()


def production(monkeypatch: pytest.MonkeyPatch, database_url: str = POSTGRES, **settings: str) -> None:
    monkeypatch.setenv("TIMEBANK_DATABASE_URL", database_url)
    monkeypatch.setenv("TIMEBANK_SECRET_KEY", SECRET)
    for name, value in settings.items():
        monkeypatch.setenv(f"TIMEBANK_{name.upper()}", value)


def plan(workers: int | None = None) -> ServePlan:
    return plan_server(host=None, port=None, workers=workers, production=True)


class TestProductionRefuses:
    def test_the_development_secret(self, environment) -> None:
        environment.setenv("TIMEBANK_DATABASE_URL", POSTGRES)
        with pytest.raises(RefusedToServe, match="TIMEBANK_SECRET_KEY must be set"):
            plan()
        environment.setenv("TIMEBANK_SECRET_KEY", DEVELOPMENT_SECRET)
        with pytest.raises(RefusedToServe, match="TIMEBANK_SECRET_KEY must be set"):
            plan()

    @pytest.mark.parametrize("where", ["environment", ".env"])
    def test_another_environment_named_explicitly(self, environment, where: str) -> None:
        production(environment)
        if where == "environment":
            environment.setenv("TIMEBANK_ENVIRONMENT", "development")
        else:
            Path(".env").write_text("TIMEBANK_ENVIRONMENT=development\n")
        with pytest.raises(RefusedToServe, match="--production runs only with 'production'"):
            plan()

    def test_several_workers_on_sqlite(self, environment) -> None:
        production(environment, SQLITE)
        with pytest.raises(RefusedToServe, match="2 workers on SQLite: SQLite takes one writer at a time"):
            plan(workers=2)
        environment.setenv("TIMEBANK_WORKERS", "3")
        with pytest.raises(RefusedToServe, match="3 workers on SQLite"):
            plan()

    def test_on_the_command_line_with_a_message_and_exit_status_2(self, environment) -> None:
        environment.setenv("TIMEBANK_DATABASE_URL", POSTGRES)
        done = CliRunner().invoke(main, ["serve", "--production"])
        assert done.exit_code == 2
        assert "Not serving: the settings are not valid: TIMEBANK_SECRET_KEY must be set" in done.output


class TestProductionRuns:
    def test_in_the_production_environment_for_the_workers_too(self, environment) -> None:
        production(environment)
        assert plan().settings.environment == "production"
        assert os.environ["TIMEBANK_ENVIRONMENT"] == "production"  # the workers read it from there

    def test_two_workers_on_postgresql_and_one_on_sqlite_unless_told(self, environment) -> None:
        production(environment)
        assert plan().workers == 2
        assert plan(workers=4).workers == 4
        environment.setenv("TIMEBANK_WORKERS", "3")
        assert plan().workers == 3
        environment.delenv("TIMEBANK_WORKERS")
        environment.setenv("TIMEBANK_DATABASE_URL", SQLITE)
        get_settings.cache_clear()
        assert plan().workers == 1

    def test_several_workers_with_metrics_share_a_directory_of_figures(self, environment) -> None:
        production(environment, metrics_token="metrics-token-0123456789")
        several = plan()
        assert several.metrics_dir is not None and several.metrics_dir.is_dir() and several.metrics_dir_is_ours
        assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(several.metrics_dir)
        several.metrics_dir.rmdir()

    def test_a_given_directory_is_emptied_of_earlier_runs_figures_only(self, environment, tmp_path: Path) -> None:
        production(environment)
        directory = tmp_path / "metrics"
        directory.mkdir()
        stale, own, other = "counter_1.db", f"counter_{os.getpid()}.db", "notes.txt"
        for name in (stale, own, other):
            (directory / name).write_text("")
        environment.setenv("PROMETHEUS_MULTIPROC_DIR", str(directory))
        given = plan()
        assert given.metrics_dir == directory and not given.metrics_dir_is_ours
        assert sorted(p.name for p in directory.iterdir()) == sorted([own, other])

    def test_uvicorn_believes_no_forwarded_headers_itself_and_the_start_is_logged(
        self, environment, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        production(environment, trusted_proxies="127.0.0.1", port="8123")
        calls: list[dict] = []
        monkeypatch.setattr("uvicorn.run", lambda app, **options: calls.append({"app": app, **options}))
        run_server(plan())
        (options,) = calls
        assert options["proxy_headers"] is False and options["workers"] == 2 and options["port"] == 8123
        assert options["app"] == "timebank.serving:create_served_app" and options["factory"] is True
        (line,) = capsys.readouterr().err.splitlines()
        logged = json.loads(line)
        assert logged["event"] == "serving on http://127.0.0.1:8123 with 2 workers"
        assert logged["database"] == "PostgreSQL database timebank on 127.0.0.1"
        assert logged["trusted_proxies"] == ["127.0.0.1/32"] and SECRET not in line
        assert logged["level"] == "info" and "warning" not in logged

    def test_the_start_warns_when_no_proxy_is_trusted(self, environment, monkeypatch, capsys) -> None:
        production(environment)
        monkeypatch.setattr("uvicorn.run", lambda app, **options: None)
        run_server(plan())
        logged = json.loads(capsys.readouterr().err)
        assert logged["level"] == "warning"
        assert logged["warning"].startswith("TIMEBANK_TRUSTED_PROXIES is empty")

    def test_development_serving_also_leaves_forwarded_headers_to_the_app(self, monkeypatch) -> None:
        calls: list[dict] = []
        monkeypatch.setattr("uvicorn.run", lambda app, **options: calls.append(options))
        # No database here: the schema check before serving (tests/operations) is not this test's.
        monkeypatch.setattr("timebank.cli._schema_status_unless_current", lambda: None)
        done = CliRunner().invoke(main, ["serve", "--port", "8124"])
        assert done.exit_code == 0, done.output
        assert calls[0]["proxy_headers"] is False and calls[0]["workers"] == 1


class TestTheParentProcess:
    def test_with_several_workers_imports_the_app_once_and_forks_them_after_the_metrics_directory_is_set(
        self, tmp_path: Path
    ) -> None:
        """Each worker is a fork of a parent that has imported the app, instead of a new
        interpreter importing it again (docs/performance.md, round seven). prometheus-client
        decides at import whether its figures are shared files: it must first be imported with
        the directory the plan makes already set, or every forked worker would count alone.
        Run in a child process, where nothing has been imported yet; live, with real workers,
        in tests/serving/test_live_server.py."""
        database = f"sqlite+aiosqlite:///{tmp_path / 'timebank.sqlite3'}"
        upgrade(database)
        child_env = {**os.environ, "TIMEBANK_DATABASE_URL": database, "TIMEBANK_METRICS_TOKEN": "m" * 32}
        child_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        child = (
            "import sys, uvicorn, uvicorn._subprocess\n"
            "from timebank.cli import main\n"
            "def handed_over(app, **options):\n"
            "    import prometheus_client.values\n"
            "    print(options['workers'], type(uvicorn._subprocess.spawn).__name__,\n"
            "          'timebank.app' in sys.modules, prometheus_client.values.ValueClass.__name__)\n"
            "uvicorn.run = handed_over\n"
            "main(['serve', '--workers', sys.argv[1]], standalone_mode=False)\n"
        )

        def handed_over(workers: int) -> list[str]:
            done = subprocess.run(
                [sys.executable, "-c", child, str(workers)], env=child_env, capture_output=True, text=True, cwd=REPO
            )
            assert done.returncode == 0, done.stderr
            return done.stdout.split()

        assert handed_over(2) == ["2", "_ForkedWorkers", "True", "MmapedValue"]
        # One worker is this process itself: nothing to fork, and its figures stay in memory.
        assert handed_over(1) == ["1", "SpawnContext", "False", "MutexValue"]

    def test_the_schema_checks_connection_thread_has_ended_when_serve_starts_its_workers(
        self, environment: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """The check's SQLite connection runs on a thread of aiosqlite's, which answers the
        close and only then ends: on a busy machine it was still there when the parent looked
        for other threads, and the workers were spawned, not forked (a CI run saw it).
        Here the thread is made slow to end after its answer, as the busy machine made it."""
        database = f"sqlite+aiosqlite:///{tmp_path / 'timebank.sqlite3'}"
        upgrade(database)
        environment.setenv("TIMEBANK_DATABASE_URL", database)
        answer_then_end = aiosqlite.core._connection_worker_thread

        def answer_then_end_slowly(*args: object) -> None:
            answer_then_end(*args)
            time.sleep(0.3)

        environment.setattr(aiosqlite.core, "_connection_worker_thread", answer_then_end_slowly)
        threads_seen: list[set[threading.Thread]] = []

        def run_server(plan: ServePlan) -> None:
            threads_seen.append(set(threading.enumerate()))
            plan.discard()

        environment.setattr("timebank.serving.run_server", run_server)
        threads_before = set(threading.enumerate())
        done = CliRunner().invoke(main, ["serve", "--workers", "2"])
        assert done.exit_code == 0, done.output
        assert threads_seen == [threads_before]

    def test_a_parent_with_a_thread_running_leaves_the_workers_spawned(self) -> None:
        """fork copies only the thread that calls it: with another running, a worker could
        inherit a lock that thread held. uvicorn's own way is kept then. (The other way round
        is the test above, in a fresh process: this one may have threads of earlier tests.)"""
        spawn = uvicorn._subprocess.spawn
        release = threading.Event()
        other = threading.Thread(target=release.wait)
        other.start()
        try:
            fork_workers_from_this_process()
        finally:
            release.set()
            other.join()
        assert uvicorn._subprocess.spawn is spawn


class TestTheServedApp:
    def test_each_worker_freezes_what_its_start_up_built(self, tmp_path: Path) -> None:
        """A worker's long-lived start-up objects leave the collector's full passes (the pages'
        latency tail). Run in a child process: freezing the test process would keep garbage."""
        database = f"sqlite+aiosqlite:///{tmp_path / 'timebank.sqlite3'}"
        upgrade(database)
        child_env = {**os.environ, "TIMEBANK_DATABASE_URL": database}
        child = (
            "import asyncio, gc\n"
            "from timebank.serving import create_served_app\n"
            "app = create_served_app()\n"
            "async def main():\n"
            "    before = gc.get_freeze_count()\n"
            "    async with app.lifespan():\n"
            "        print(before, gc.get_freeze_count())\n"
            "asyncio.run(main())\n"
        )
        done = subprocess.run([sys.executable, "-c", child], env=child_env, capture_output=True, text=True, cwd=REPO)
        assert done.returncode == 0, done.stderr
        before, during = map(int, done.stdout.split())
        assert before == 0 and during > 10_000
