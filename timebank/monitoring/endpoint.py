"""``/metrics``: everything the workers counted, and what is measured when Prometheus asks.

Served only when ``TIMEBANK_METRICS_TOKEN`` is set (else there is no such route: 404),
and only to a caller that sends it as ``Authorization: Bearer <token>`` (else 401).
The request figures come from Litestar's Prometheus middleware (``PROMETHEUS_CONFIG``),
labelled by route template, never by the raw path.
"""

import datetime as dt
import hmac
import os
import re
from collections.abc import Iterator
from pathlib import Path

import structlog
from litestar import Request, get
from litestar.exceptions import NotAuthorizedException
from litestar.plugins.prometheus import PrometheusConfig
from litestar.response import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from timebank.api.dependencies import DatabaseDep, SettingsDep
from timebank.health.endpoints import database_unreachable
from timebank.monitoring.backup_status import UnreadableBackupStatus, read_backup_status
from timebank.monitoring.metrics import PREFIX

logger = structlog.get_logger("timebank.metrics")

PROMETHEUS_CONFIG = PrometheusConfig(
    app_name="timebank",
    prefix=PREFIX,
    group_path=True,  # /api/v1/orgs/{org}/accounts/{account_id}: not one series per account
    exclude=["^/metrics$"],
)
_LIVE_GAUGE_FILE = re.compile(r"gauge_live\w+_(\d+)\.db")


@get("/metrics", include_in_schema=False, exclude_from_auth=True)
async def metrics(request: Request, db: DatabaseDep, settings: SettingsDep) -> Response[bytes]:
    expected = f"Bearer {settings.metrics_token}".encode()
    if not hmac.compare_digest(request.headers.get("authorization", "").encode(), expected):
        raise NotAuthorizedException(
            "send the metrics token (TIMEBANK_METRICS_TOKEN) as: Authorization: Bearer <token>",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    measured = MeasuredNow(
        database_up=await database_unreachable(db) is None,
        backup_status_file=settings.backup_status_file,
    )
    body = generate_latest(_Both(_counted_by_the_workers(), measured))  # type: ignore[arg-type]
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def _counted_by_the_workers() -> Collector:
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        return REGISTRY
    forget_dead_workers(Path(directory))
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def forget_dead_workers(directory: Path) -> None:
    """A worker that died (and was replaced) must not count in the live gauges any more."""
    for name in os.listdir(directory):
        found = _LIVE_GAUGE_FILE.fullmatch(name)
        if found and not _alive(int(found.group(1))):
            multiprocess.mark_process_dead(int(found.group(1)), str(directory))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class MeasuredNow(Collector):
    """What is measured at each scrape rather than counted: the database, the last backup."""

    def __init__(self, *, database_up: bool, backup_status_file: Path) -> None:
        self.database_up = database_up
        self.backup_status_file = backup_status_file

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            f"{PREFIX}_database_up", "1 if a query reached the database within two seconds, else 0",
            value=1 if self.database_up else 0,
        )  # fmt: skip
        try:
            status = read_backup_status(self.backup_status_file)
        except UnreadableBackupStatus as exc:
            logger.warning("backup status unreadable", problem=str(exc))
            status = None
        age = float("inf")  # no good backup known: older than any threshold
        if status is not None:
            age = max(0.0, (dt.datetime.now(dt.UTC) - status.finished_at).total_seconds())
            yield GaugeMetricFamily(
                f"{PREFIX}_backup_last_success_timestamp_seconds",
                "When the last good backup finished (Unix time)",
                value=status.finished_at.timestamp(),
            )
            if status.bytes is not None:
                yield GaugeMetricFamily(
                    f"{PREFIX}_backup_last_size_bytes", "Size of the last good backup", value=status.bytes
                )
        yield GaugeMetricFamily(
            f"{PREFIX}_backup_age_seconds",
            "Seconds since the last good backup finished (+Inf when none is recorded)",
            value=age,
        )


class _Both:
    def __init__(self, *collectors: Collector) -> None:
        self.collectors = collectors

    def collect(self) -> Iterator[object]:
        for collector in self.collectors:
            yield from collector.collect()
