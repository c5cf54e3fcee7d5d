"""``timebank serve --production`` with two workers, as behind nginx: one set of figures at
/metrics while exchanges are posted, and every request's id in its log line.

PostgreSQL only: on SQLite production serving runs one worker (tests/serving/test_serve.py).
The load is seeded (SEED); what is asserted does not depend on timing.
"""

import json
import random
import re
import signal
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from scripts.drills.live_server import SeededOrg, ServerProcess, seed_organisation
from tests.conftest import EmptyDatabase, today

pytestmark = pytest.mark.live_server

SEED = 20261201
METRICS_TOKEN = "live-metrics-token-0123456789"
POSTED = "timebank_ledger_transactions_posted_total"
EXCHANGES_ROUTE = "/api/v1/orgs/{org}/exchanges"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    workdir = tmp_path_factory.mktemp("production")
    databases = EmptyDatabase("postgresql", workdir)
    try:
        with ServerProcess(
            databases.create(),
            workdir,
            workers=2,
            production=True,
            extra_env={"PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics")},
            log_level="INFO",
            trusted_proxies="127.0.0.1",
            metrics_token=METRICS_TOKEN,
        ) as server:
            server.migrate()
            server.start()
            yield server
    finally:
        databases.drop_all()


@pytest.fixture(scope="module")
def seeded(server: ServerProcess) -> SeededOrg:
    return seed_organisation(server, members=8)


def scrape(server: ServerProcess) -> dict[tuple[str, frozenset], float]:
    response = httpx.get(f"{server.base_url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200, response.text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def posted_exchanges(samples: dict) -> float:
    return samples.get((POSTED, frozenset({("kind", "exchange")})), 0.0)


def post_exchanges(server: ServerProcess, org: SeededOrg, count: int, rng: random.Random) -> int:
    """``count`` exchanges from four clients, a new connection each (so both workers take some)."""
    pairs = [rng.sample(org.account_ids, 2) for _ in range(count)]

    def post(pair: list[int]) -> int:
        body = {
            "giver_account_id": pair[0], "receiver_account_id": pair[1], "minutes": rng.randint(1, 30),
            "occurred_on": today().isoformat(), "description": "Live metrics load",
        }  # fmt: skip
        headers = {**org.headers, "Idempotency-Key": uuid.uuid4().hex, "Connection": "close"}
        return httpx.post(f"{server.base_url}{org.url('/exchanges')}", json=body, headers=headers).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(post, pairs))
    assert statuses == [201] * count
    return count


def log_lines(server: ServerProcess) -> list[dict]:
    lines = []
    for line in server.log_file.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def logged_request(server: ServerProcess, request_id: str, *, within_seconds: float = 10.0) -> list[dict]:
    """The log lines of the request with ``request_id``. The server logs a request just after
    answering it, so the line may land a moment after the answer: wait for it (a bounded wait,
    not a timing assertion)."""
    deadline = time.monotonic() + within_seconds
    while True:
        found = [line for line in log_lines(server) if line.get("request_id") == request_id]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


class TestProductionServing:
    def test_logs_where_it_listens_and_with_how_many_workers(self, server: ServerProcess) -> None:
        (serving,) = [line for line in log_lines(server) if line["event"].startswith("serving on")]
        assert serving["event"] == f"serving on {server.base_url} with 2 workers"
        assert serving["environment"] == "production" and serving["workers"] == 2
        assert serving["trusted_proxies"] == ["127.0.0.1/32"]
        assert METRICS_TOKEN not in server.log_file.read_text()

    def test_each_worker_is_a_fork_of_the_server_with_the_signal_handlers_of_a_new_process(
        self, server: ServerProcess
    ) -> None:
        """Forked, not spawned: a worker runs the server's own command line, where a spawned one
        would run multiprocessing's. And none keeps the supervisor's handlers, which only queue
        a signal for the supervisor's loop (timebank/serving.py, fork_workers_from_this_process)."""
        assert server.pid is not None
        workers = children_of(server.pid)
        assert len(workers) == 2
        assert all(command_line(worker) == command_line(server.pid) for worker in workers)
        supervisors_only = {signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGTTIN, signal.SIGWINCH}
        assert supervisors_only <= caught_signals(server.pid)
        for worker in workers:
            assert signal.SIGTERM in caught_signals(worker)  # uvicorn's graceful shutdown
            assert not supervisors_only & caught_signals(worker)


def children_of(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_text().split("\0")


def caught_signals(pid: int) -> set[signal.Signals]:
    """The signals ``pid`` has a handler for (SigCgt in /proc: bit n-1 for signal n)."""
    (mask,) = [
        line.split()[1] for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("SigCgt:")
    ]
    return {signum for signum in signal.Signals if int(mask, 16) >> (signum - 1) & 1}


class TestMetricsUnderLoad:
    def test_the_figures_of_both_workers_move_with_the_load(self, server: ServerProcess, seeded: SeededOrg) -> None:
        rng = random.Random(SEED)
        start = posted_exchanges(scrape(server))
        first = post_exchanges(server, seeded, 60, rng)
        middle = scrape(server)
        with ThreadPoolExecutor(max_workers=1) as scraper:
            during = scraper.submit(lambda: [posted_exchanges(scrape(server)) for _ in range(5)])
            second = post_exchanges(server, seeded, 60, rng)
            scraped_during = during.result()
        end = scrape(server)

        assert posted_exchanges(middle) == start + first
        assert posted_exchanges(end) == start + first + second
        assert scraped_during == sorted(scraped_during)  # never goes backwards, whichever worker answers
        assert all(start + first <= figure <= start + first + second for figure in scraped_during)
        route = {"app_name": "timebank", "method": "POST", "path": EXCHANGES_ROUTE, "status_code": "201"}
        assert end[("timebank_requests_total", frozenset(route.items()))] >= first + second
        assert end[("timebank_database_up", frozenset())] == 1
        assert end[("timebank_db_pool_size", frozenset({("pool", "autocommit")}))] == 2 * 16  # two workers' pools
        # One set of figures from two processes: each wrote its own share to the shared directory.
        per_worker = self._posted_per_worker(Path(server.environment()["PROMETHEUS_MULTIPROC_DIR"]))
        assert len([n for n in per_worker.values() if n > 0]) == 2, per_worker
        assert sum(per_worker.values()) == posted_exchanges(end)

    @staticmethod
    def _posted_per_worker(directory: Path) -> dict[str, float]:
        figures = {}
        for file in directory.glob("counter_*.db"):
            merged = MultiProcessCollector.merge([str(file)], accumulate=True)  # type: ignore[no-untyped-call]
            figures[file.name] = sum(
                s.value for m in merged for s in m.samples if s.name == POSTED and s.labels == {"kind": "exchange"}
            )
        return figures


class TestRequestIds:
    def test_a_refused_request_is_found_in_the_log_by_the_id_it_was_answered_with(
        self, server: ServerProcess, seeded: SeededOrg
    ) -> None:
        body = {
            "giver_account_id": seeded.account_ids[0], "receiver_account_id": seeded.account_ids[1], "hours": "500",
            "occurred_on": today().isoformat(), "description": "Far too much",
        }  # fmt: skip
        refused = httpx.post(
            f"{server.base_url}{seeded.url('/exchanges')}",
            json=body,
            headers={**seeded.headers, "Idempotency-Key": uuid.uuid4().hex},
        )
        assert refused.status_code == 409, refused.text
        request_id = refused.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)
        (line,) = logged_request(server, request_id)
        assert line["status"] == 409 and line["path"] == seeded.url("/exchanges")

    def test_the_trusted_proxys_request_id_is_kept_and_logged(self, server: ServerProcess) -> None:
        answered = httpx.get(f"{server.base_url}/no/such/page", headers={"X-Request-ID": "nginx-7f3a9c"})
        assert answered.status_code == 404
        assert answered.headers["x-request-id"] == "nginx-7f3a9c"
        (line,) = logged_request(server, "nginx-7f3a9c")
        assert line["status"] == 404

    def test_every_request_line_carries_an_id(self, server: ServerProcess) -> None:
        requests = [line for line in log_lines(server) if line["event"] == "request"]
        assert requests and all(line.get("request_id") for line in requests)
