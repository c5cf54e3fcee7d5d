"""The application factory: wires settings, the database, routes and error handling."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from litestar import Litestar, Router
from litestar.datastructures import State
from litestar.di import Provide
from litestar.logging.config import StructLoggingConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.pydantic import PydanticPlugin
from litestar.plugins.structlog import StructlogConfig, StructlogPlugin
from litestar.static_files import create_static_files_router

from timebank import __version__
from timebank.access_log import access_log_middleware
from timebank.accounts.endpoints import AccountController
from timebank.api.docs import ApiExplorerPlugin
from timebank.auth.context import provide_org_context
from timebank.auth.endpoints import AuthController, me
from timebank.config import Settings, get_settings
from timebank.db import Database, create_database
from timebank.errors import EXCEPTION_HANDLERS
from timebank.exchanges.endpoints import ExchangeController
from timebank.health.endpoints import health, ready
from timebank.members.endpoints import MemberController
from timebank.orgs.endpoints import OrganisationController, create_org
from timebank.reports.endpoints import ExportController, HourlyRateController, PeriodController, ReportController
from timebank.security import add_security_headers

STATIC_DIR = Path(__file__).parent / "static"


def create_app(settings: Settings | None = None, database: Database | None = None) -> Litestar:
    """Build the app. Pass ``database`` to share one the caller owns (tests); else one is made."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        owned = database is None
        app.state.db = database or create_database(
            settings.database_url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            timeout_seconds=settings.db_timeout_seconds,
            echo=settings.db_echo,
        )
        try:
            yield
        finally:
            if owned:
                await app.state.db.dispose()

    def provide_db(state: State) -> Database:
        return state.db  # type: ignore[no-any-return]

    organisation_api = Router(
        path="/api/v1/orgs/{org:str}",
        route_handlers=[
            OrganisationController,
            MemberController,
            AccountController,
            ExchangeController,
            ReportController,
            PeriodController,
            HourlyRateController,
            ExportController,
        ],
        # Every route in here acts inside one organisation, as an active member of it.
        dependencies={"ctx": Provide(provide_org_context)},
    )

    return Litestar(
        route_handlers=[
            health,
            ready,
            AuthController,
            me,
            create_org,
            organisation_api,
            create_static_files_router(path="/static", directories=[STATIC_DIR], include_in_schema=False),
        ],
        dependencies={
            "db": Provide(provide_db, sync_to_thread=False),
            "settings": Provide(lambda: settings, sync_to_thread=False),
        },
        request_max_body_size=settings.max_request_bytes,
        lifespan=[lifespan],
        middleware=[access_log_middleware],
        before_send=[add_security_headers],
        exception_handlers=EXCEPTION_HANDLERS,  # type: ignore[arg-type]
        openapi_config=OpenAPIConfig(
            title="Timebank",
            version=__version__,
            description="A double-entry time-bank ledger. One hour given earns one hour.",
            path="/schema",
            render_plugins=[ApiExplorerPlugin(), JsonRenderPlugin(path="/openapi.json")],
            # Bearer tokens from POST /api/v1/auth/token; the explorer's Authorize button uses this.
            components=Components(security_schemes={"BearerToken": SecurityScheme(type="http", scheme="bearer")}),
            security=[{"BearerToken": []}],
        ),
        # prefer_alias: statements answer with "from" and "to", which are Python keywords.
        plugins=[StructlogPlugin(_logging_config(settings)), PydanticPlugin(prefer_alias=True)],
        debug=False,
    )


def _logging_config(settings: Settings) -> StructlogConfig:
    return StructlogConfig(
        # Exceptions are logged by our own handlers (timebank/errors.py), which know what
        # each one is: a 500 with its traceback, an unavailable database as one warning
        # line, a client error not at all (its traceback would quote the input, and
        # pydantic's input_value would put a refused password into the log).
        structlog_logging_config=StructLoggingConfig(log_exceptions="never"),
        # Requests are logged by access_log_middleware, one line each.
        enable_middleware_logging=False,
    )
