"""Turning domain and database errors into HTTP answers, in one place.

Every answer has Litestar's error shape: ``{"status_code", "detail", "extra"}``. A server
error (5xx) also carries the request's id in ``extra.request_id`` (every answer has it in
the ``X-Request-ID`` header), so "it said error 503" can be found in the log.
"""

import asyncpg
import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException
from sqlalchemy.exc import DataError, DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from timebank.auth.rate_limit import SignInThrottled
from timebank.db.hot_path import CONNECTION_ERRORS
from timebank.ledger.errors import LedgerError
from timebank.monitoring import metrics
from timebank.proxy import current_request_id

# structlog, not the standard library: its lines carry the request id (timebank/proxy.py).
logger = structlog.get_logger("timebank.errors")

# Not "nothing was recorded": a connection lost while a commit was in flight may have
# recorded the write (the fault drills see it). The same key makes a retry safe either way.
SERVICE_UNAVAILABLE = (
    "The database is unavailable; try again in a moment. Retry a write with the same Idempotency-Key: "
    "if it was recorded after all, you get the original answer and nothing is posted twice."
)


def error_response(
    status_code: int, detail: str, extra: dict | list | None = None, headers: dict | None = None
) -> Response:
    if status_code >= 500:
        extra = {**(extra or {}), "request_id": current_request_id()}  # type: ignore[dict-item]
    return Response(
        {"status_code": status_code, "detail": detail, "extra": extra or {}},
        status_code=status_code,
        headers=headers,
    )


def ledger_error_handler(_: Request, exc: LedgerError) -> Response:
    return error_response(exc.status_code, exc.message, exc.extra)


def is_database_unavailable(exc: BaseException) -> bool:
    """True for failures to reach the database, as opposed to errors in what we asked it.

    Both SQLAlchemy's errors and asyncpg's own (raised on the hot path, see db/hot_path.py).
    """
    if isinstance(exc, (PoolTimeout, OSError, ConnectionError, *CONNECTION_ERRORS)):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated or isinstance(exc, InterfaceError):
            return True
        cause = exc.orig.__cause__ if exc.orig is not None else None
        if isinstance(cause, (OSError, ConnectionError)):
            return True
        # SQLSTATE class 08 (connection exception), 57P0x (admin shutdown, cannot connect now).
        code = str(getattr(exc.orig, "sqlstate", "") or getattr(exc.orig, "pgcode", "") or "")
        if code.startswith("08") or code.startswith("57P"):
            return True
        if isinstance(exc, OperationalError) and "unable to open database" in str(exc.orig):
            return True
    return False


OUT_OF_RANGE = "a value in the request is out of range, or has characters that cannot be stored"


def is_bad_input(exc: BaseException) -> bool:
    """True for database errors only input can cause (a number beyond 64 bits, a NUL in text).

    asyncpg's are not SQLAlchemy ``DataError``s: they carry SQLSTATE class 22 (data exception).
    """
    if isinstance(exc, (DataError, asyncpg.exceptions.DataError)):
        return True
    orig = getattr(exc, "orig", None)
    return str(getattr(orig, "sqlstate", "") or "").startswith("22")


def database_error_handler(request: Request, exc: Exception) -> Response:
    if is_bad_input(exc):
        return error_response(400, OUT_OF_RANGE)
    if is_database_unavailable(exc):
        metrics.database_unavailable.inc()
        logger.warning("database unavailable", error=type(exc).__name__)
        return error_response(503, SERVICE_UNAVAILABLE, headers={"Retry-After": "2"})
    logger.exception("unexpected database error", method=request.method, path=request.url.path)
    return error_response(500, "Internal server error")


def http_exception_handler(_: Request, exc: HTTPException) -> Response:
    return error_response(exc.status_code, exc.detail, exc.extra or {}, exc.headers)  # type: ignore[arg-type]


def throttled_handler(_: Request, exc: SignInThrottled) -> Response:
    return error_response(
        429,
        f"too many failed sign-ins; try again in {exc.retry_after_seconds} seconds",
        {"retry_after_seconds": exc.retry_after_seconds},
        headers={"Retry-After": str(exc.retry_after_seconds)},
    )


def out_of_range_handler(_: Request, exc: OverflowError) -> Response:
    # SQLite's driver cannot bind an integer beyond 64 bits (an id such as /accounts/10**20).
    return error_response(400, OUT_OF_RANGE)


def too_deep_handler(_: Request, exc: RecursionError) -> Response:
    # The JSON decoder gives up on absurdly nested bodies; no request of ours nests deeply.
    return error_response(400, "the request body is nested too deeply to be a valid request")


def internal_error_handler(request: Request, exc: Exception) -> Response:
    """Anything unexpected: logged with its traceback, answered without details."""
    logger.exception("unexpected error", method=request.method, path=request.url.path)
    return error_response(500, "Internal server error")


EXCEPTION_HANDLERS = {
    Exception: internal_error_handler,
    RecursionError: too_deep_handler,
    OverflowError: out_of_range_handler,
    HTTPException: http_exception_handler,
    SignInThrottled: throttled_handler,
    LedgerError: ledger_error_handler,
    DBAPIError: database_error_handler,
    asyncpg.PostgresError: database_error_handler,
    asyncpg.InterfaceError: database_error_handler,
    asyncpg.exceptions.InternalClientError: database_error_handler,
    PoolTimeout: database_error_handler,
    OSError: database_error_handler,
}
