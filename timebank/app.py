"""The application factory: wires settings, the database, routes and error handling."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
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
from sqlalchemy.exc import DBAPIError

from timebank import __version__
from timebank.access_log import access_log_middleware
from timebank.accounts.endpoints import AccountController
from timebank.api.docs import ApiExplorerPlugin
from timebank.auth.context import provide_org_access, provide_org_context
from timebank.auth.endpoints import AuthController, change_my_password, me
from timebank.auth.sign_in_cache import SignInCache
from timebank.config import Settings, get_settings
from timebank.control_characters import control_character_middleware
from timebank.corrections.endpoints import CorrectionController
from timebank.db import Database, create_database
from timebank.db.schema_version import SchemaNotCurrent, schema_status_unless_current
from timebank.errors import EXCEPTION_HANDLERS
from timebank.exchanges.endpoints import ExchangeController
from timebank.health.endpoints import health, ready
from timebank.history.endpoints import HistoryController
from timebank.members.endpoints import MemberController
from timebank.monitoring.endpoint import PROMETHEUS_CONFIG, metrics
from timebank.orgs.endpoints import OrganisationController, create_org
from timebank.privacy.endpoints import PrivacyController
from timebank.proxy import request_context_middleware
from timebank.reports.endpoints import ExportController, HourlyRateController, PeriodController, ReportController
from timebank.security import add_security_headers
from timebank.web import csrf_config, page_routes
from timebank.web.errors import with_page_errors
from timebank.web.i18n import PageLocale
from timebank.web.templating import template_config

STATIC_DIR = Path(__file__).parent / "static"
logger = structlog.get_logger("timebank")


def create_app(
    settings: Settings | None = None, database: Database | None = None, language: PageLocale | None = None
) -> Litestar:
    """Build the app. Pass ``database`` to share one the caller owns (tests); else one is made.

    ``language`` is the pages' locale (en-GB unless given; tests pass a pseudo-locale)."""
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
            await refuse_a_schema_that_is_not_current(app.state.db)
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
            PrivacyController,
            AccountController,
            ExchangeController,
            CorrectionController,
            ReportController,
            PeriodController,
            HourlyRateController,
            ExportController,
            HistoryController,
        ],
        # Every route in here acts inside one organisation, as an active member of it.
        dependencies={"ctx": Provide(provide_org_context), "access": Provide(provide_org_access)},
    )

    app = Litestar(
        route_handlers=[
            health,
            ready,
            AuthController,
            me,
            change_my_password,
            create_org,
            organisation_api,
            create_static_files_router(path="/static", directories=[STATIC_DIR], include_in_schema=False),
            *page_routes(),
            *([metrics] if settings.metrics_token else []),
        ],
        dependencies={
            "db": Provide(provide_db, sync_to_thread=False),
            "settings": Provide(lambda: settings, sync_to_thread=False),
        },
        request_max_body_size=settings.max_request_bytes,
        lifespan=[lifespan],
        middleware=[
            control_character_middleware,
            *([PROMETHEUS_CONFIG.middleware] if settings.metrics_token else []),
        ],
        before_send=[add_security_headers],
        exception_handlers=with_page_errors(EXCEPTION_HANDLERS),  # type: ignore[arg-type]
        template_config=template_config(language),
        csrf_config=csrf_config(settings),
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
    # Around Litestar's router, not inside it: these must see requests that match no route
    # (a 404) too, and the client address must be the real one before anything reads it.
    app.asgi_handler = request_context_middleware(access_log_middleware(app.asgi_handler), settings.trusted_proxies)
    # On the app's state, not a dependency: a second leaf dependency beside "db" would make
    # Litestar resolve the two in an anyio task group on every hot request (4 % of a write's
    # samples in py-spy).
    app.state.sign_in_cache = SignInCache(settings.sign_in_cache_entries)
    return app


async def refuse_a_schema_that_is_not_current(db: Database) -> None:
    """Raise SchemaNotCurrent when the database is behind or ahead of this code.

    A database that cannot be reached is not refused: the service starts, answers 503
    and recovers when the database returns (the check then happens at the next start).
    """
    try:
        async with db.engine.connect() as conn:
            status = await schema_status_unless_current(conn)
    except (OSError, DBAPIError) as exc:
        logger.warning("schema check skipped: database unreachable", error=type(exc).__name__)
        return
    if status is not None:
        raise SchemaNotCurrent(status)


def _logging_config(settings: Settings) -> StructlogConfig:
    return StructlogConfig(
        # Exceptions are logged by our own handlers (timebank/errors.py), which know what
        # each one is: a 500 with its traceback, an unavailable database as one warning
        # line, a client error not at all (its traceback would quote the input, and
        # pydantic's input_value would put a refused password into the log).
        structlog_logging_config=StructLoggingConfig(log_exceptions="never"),
        # Requests are logged by access_log_middleware, one line each, with the request id.
        enable_middleware_logging=False,
    )
