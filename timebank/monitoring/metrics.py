"""What the service counts, besides the per-route request figures of Litestar's Prometheus middleware.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``timebank serve`` sets it for several
workers), prometheus-client keeps each process's figures in a file there and a
scrape of any worker adds them all up; gauges say how (``livesum``: the sum over
the workers that are alive). Each update costs a few microseconds.
"""

import os
import re
from enum import Enum

from prometheus_client import Counter, Gauge
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

# No imports from the ledger or the database package: both import this module.

PREFIX = "timebank"

# prometheus-client opens its files there as soon as a figure is first counted, in any
# command (`timebank migrate` counts pool connections too): make sure the directory exists.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

transactions_posted = Counter(
    f"{PREFIX}_ledger_transactions_posted", "Transactions posted to the ledger, by kind", ["kind"]
)
idempotent_replays = Counter(
    f"{PREFIX}_ledger_idempotent_replays",
    "Writes answered with the transaction an earlier request with the same Idempotency-Key posted",
    ["kind"],
)
refusals = Counter(
    f"{PREFIX}_ledger_refusals", "Writes the ledger refused, by kind and reason (the error's name)", ["kind", "reason"]
)
database_unavailable = Counter(
    f"{PREFIX}_database_unavailable", "Requests answered 503 because the database could not be reached"
)
pool_checked_out = Gauge(
    f"{PREFIX}_db_pool_checked_out",
    "Database connections in use, over all workers",
    ["pool"],
    multiprocess_mode="livesum",
)
pool_size = Gauge(
    f"{PREFIX}_db_pool_size",
    "Connections each pool keeps open (its size, without overflow), over all workers",
    ["pool"],
    multiprocess_mode="livesum",
)

_reasons: dict[type[Exception], str] = {}


def refusal_reason(exc: Exception) -> str:
    """``InsufficientBalance`` -> ``insufficient_balance``: a small, fixed set of label values."""
    kind = type(exc)
    if kind not in _reasons:
        _reasons[kind] = re.sub(r"(?<!^)(?=[A-Z])", "_", kind.__name__).lower()
    return _reasons[kind]


def count_posting(kind: Enum, created: bool) -> None:
    (transactions_posted if created else idempotent_replays).labels(kind.value).inc()


def count_refusal(kind: Enum, exc: Exception) -> None:
    refusals.labels(kind.value, refusal_reason(exc)).inc()


def instrument_pool(engine: AsyncEngine, name: str) -> None:
    """Keep the pool gauges of ``engine`` current: ``name`` is its label (transaction, autocommit)."""
    checked_out = pool_checked_out.labels(name)
    pool = engine.sync_engine.pool
    size = getattr(pool, "size", None)
    pool_size.labels(name).inc(size() if callable(size) else 0)
    event.listen(pool, "checkout", lambda *_: checked_out.inc())
    event.listen(pool, "checkin", lambda *_: checked_out.dec())


def forget_pool(engine: AsyncEngine, name: str) -> None:
    """The pool of ``engine`` is disposed of: it no longer counts towards the size."""
    size = getattr(engine.sync_engine.pool, "size", None)
    pool_size.labels(name).dec(size() if callable(size) else 0)
