"""``/metrics``: behind its token, labelled by route template, and the figures move as the ledger does.

In one process prometheus-client keeps the figures in memory (tests/serving/test_live_server.py
covers several workers); they are shared by every app of the test run, so each test compares
a scrape before with one after.
"""

import datetime as dt
import json
import os
import subprocess
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.api.conftest import ApiOrg, client_for, make_app
from tests.api.conftest import test_settings as settings_for_tests
from tests.api.support import error, exchange_body
from timebank.db import Database, create_database
from timebank.monitoring.endpoint import forget_dead_workers

METRICS_TOKEN = "metrics-token-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {METRICS_TOKEN}"}
EXCHANGES_ROUTE = "/api/v1/orgs/{org}/exchanges"

Samples = dict[tuple[str, frozenset], float]


async def scrape(http: httpx.AsyncClient) -> Samples:
    response = await http.get("/metrics", headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def metrics_app(db: Database, **overrides: object):
    return make_app(db, metrics_token=METRICS_TOKEN, **overrides)


class TestTheToken:
    async def test_without_the_setting_there_is_no_metrics_route(self, client: httpx.AsyncClient) -> None:
        error(await client.get("/metrics", headers=AUTH), 404)

    @pytest.mark.parametrize(
        "headers",
        [{}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": METRICS_TOKEN}],
        ids=["none", "wrong", "not-bearer"],
    )
    async def test_a_scrape_without_the_right_token_is_refused(self, db: Database, headers) -> None:
        async with client_for(metrics_app(db)) as http:
            refused = await http.get("/metrics", headers=headers)
        error(refused, 401)
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert "timebank_" not in refused.text

    def test_a_token_too_short_to_be_secret_is_refused(self) -> None:
        with pytest.raises(ValueError, match="at least 16"):
            settings_for_tests(metrics_token="short")


class TestRequestFigures:
    async def test_are_counted_per_route_template_never_per_raw_path(self, db: Database, api_org: ApiOrg) -> None:
        async with client_for(metrics_app(db)) as http:
            before = await scrape(http)
            body = exchange_body(api_org.member.account_id, api_org.other_member.account_id, minutes=5)
            created = await http.post(api_org.url("/exchanges"), json=body, headers=api_org.staff.posting())
            assert created.status_code == 201, created.text
            error(await http.post(api_org.url("/exchanges"), json=body, headers=api_org.member.posting()), 403)
            after = await scrape(http)
        route = {"app_name": "timebank", "method": "POST", "path": EXCHANGES_ROUTE}
        for status in ("201", "403"):
            labels = {**route, "status_code": status}
            assert (
                value(after, "timebank_requests_total", **labels)
                == value(before, "timebank_requests_total", **labels) + 1
            )
            count = "timebank_request_duration_seconds_count"
            assert value(after, count, **labels) == value(before, count, **labels) + 1
        assert not [labels for _, labels in after if any(api_org.slug in str(v) for _, v in labels)]


class TestLedgerFigures:
    async def test_postings_replays_and_refusals_are_counted_by_kind_and_reason(self, db, api_org: ApiOrg) -> None:
        giver, receiver = api_org.member.account_id, api_org.other_member.account_id
        async with client_for(metrics_app(db)) as http:
            before = await scrape(http)
            key = api_org.staff.posting()
            body = exchange_body(giver, receiver, minutes=10)
            assert (await http.post(api_org.url("/exchanges"), json=body, headers=key)).status_code == 201
            assert (await http.post(api_org.url("/exchanges"), json=body, headers=key)).status_code == 200
            too_much = exchange_body(giver, receiver, hours="50")
            error(await http.post(api_org.url("/exchanges"), json=too_much, headers=api_org.staff.posting()), 409)
            other = exchange_body(giver, receiver, minutes=11)
            error(await http.post(api_org.url("/exchanges"), json=other, headers=key), 409)  # key reused
            after = await scrape(http)

        def moved(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert moved("timebank_ledger_transactions_posted_total", kind="exchange") == 1
        assert moved("timebank_ledger_idempotent_replays_total", kind="exchange") == 1
        refusals = "timebank_ledger_refusals_total"
        assert moved(refusals, kind="exchange", reason="insufficient_balance") == 1
        assert moved(refusals, kind="exchange", reason="idempotency_conflict") == 1


class TestMeasuredAtEachScrape:
    async def test_the_age_of_the_last_good_backup_comes_from_the_status_file(self, db, tmp_path: Path) -> None:
        status_file = tmp_path / "timebank-backup-status.json"
        async with client_for(metrics_app(db, backup_status_file=status_file)) as http:
            never = await scrape(http)
            finished = dt.datetime.now(dt.UTC) - dt.timedelta(hours=30)
            status_file.write_text(
                json.dumps({"finished_at": finished.isoformat().replace("+00:00", "Z"), "path": "/b/x", "bytes": 4096})
            )
            recorded = await scrape(http)
            status_file.write_text("{not json")
            garbled = await scrape(http)
        assert value(never, "timebank_backup_age_seconds") == float("inf")
        assert ("timebank_backup_last_success_timestamp_seconds", frozenset()) not in never
        assert 30 * 3600 <= value(recorded, "timebank_backup_age_seconds") < 31 * 3600  # over the 26-hour alert
        assert value(recorded, "timebank_backup_last_success_timestamp_seconds") == pytest.approx(finished.timestamp())
        assert value(recorded, "timebank_backup_last_size_bytes") == 4096
        assert value(garbled, "timebank_backup_age_seconds") == float("inf")

    async def test_the_database_is_up_or_not(self, db: Database) -> None:
        async with client_for(metrics_app(db)) as http:
            reachable = await scrape(http)
        gone = create_database("postgresql://postgres@127.0.0.1:9/nowhere", timeout_seconds=1)
        try:
            async with client_for(metrics_app(gone)) as http:
                unreachable = await scrape(http)
                error(await http.post("/api/v1/auth/token", json={"username": "a", "password": "b"}), 503)
                after_503 = await scrape(http)
        finally:
            await gone.dispose()
        assert value(reachable, "timebank_database_up") == 1
        assert value(unreachable, "timebank_database_up") == 0
        unavailable = "timebank_database_unavailable_total"
        assert value(after_503, unavailable) == value(unreachable, unavailable) + 1

    async def test_the_pools_report_their_size_and_connections_in_use(self, db: Database) -> None:
        async with client_for(metrics_app(db)) as http:
            samples = await scrape(http)
            async with db.transaction():
                in_use = await scrape(http)
        for pool in ("transaction", "autocommit"):
            assert value(samples, "timebank_db_pool_size", pool=pool) >= 5  # this run's pools, however many
        checked_out = "timebank_db_pool_checked_out"
        assert value(in_use, checked_out, pool="transaction") == value(samples, checked_out, pool="transaction") + 1


class TestSeveralWorkers:
    def test_a_dead_workers_live_gauges_stop_counting_but_its_counters_stay(self, tmp_path: Path) -> None:
        dead = subprocess.Popen(["true"])
        dead.wait()
        names = [f"gauge_livesum_{dead.pid}.db", f"counter_{dead.pid}.db", f"gauge_livesum_{os.getpid()}.db"]
        for name in names:
            (tmp_path / name).write_bytes(b"")
        forget_dead_workers(tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[1:])
