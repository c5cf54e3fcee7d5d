"""``/health``: the process is up. ``/ready``: and it can reach its database."""

import asyncio

from litestar import get
from litestar.openapi import ResponseSpec
from litestar.response import Response
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from sqlalchemy import text

from timebank.api.dependencies import DatabaseDep
from timebank.db import Database

READY_TIMEOUT_SECONDS = 2.0


@get("/health", summary="The process is up", tags=["health"], exclude_from_auth=True, security=[{}])
async def health() -> dict[str, str]:
    return {"status": "ok"}


@get(
    "/ready",
    summary="The service can reach its database",
    description="200 when a query reaches the database within two seconds, else 503.",
    tags=["health"],
    exclude_from_auth=True,
    security=[{}],  # public: no bearer token needed
    responses={503: ResponseSpec(data_container=dict[str, str], description="The database is unreachable")},
)
async def ready(db: DatabaseDep) -> Response[dict[str, str]]:
    problem = await database_unreachable(db)
    if problem:
        return Response(
            {"status": "unavailable", "detail": f"database unreachable: {problem}"},
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
        )
    return Response({"status": "ready"}, status_code=HTTP_200_OK)


async def database_unreachable(db: Database) -> str | None:
    """None if a query reaches the database within two seconds, else the name of what went wrong."""
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            async with db.autocommit() as conn:
                await conn.execute(text("SELECT 1"))
    except Exception as exc:  # any failure to reach the database means "not ready"
        return type(exc).__name__
    return None
