"""One structured log line per request: method, path, status and duration.

Never bodies, headers, cookies or query strings: they carry passwords, tokens
and names. (Litestar's logging middleware writes two lines per request and
costs twice as much.)
"""

import time

import structlog
from litestar.types import ASGIApp, Message, Receive, Scope, Send

logger = structlog.get_logger("timebank.access")


def access_log_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, send_and_note_status)
        finally:
            logger.info(
                "request",
                method=scope["method"],
                path=scope["path"],
                status=status,
                ms=round((time.perf_counter() - started) * 1000, 1),
            )

    return middleware
