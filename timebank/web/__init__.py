"""The web pages: server-rendered (Jinja + govuk-frontend), on the same services as the API.

``page_routes()`` gives the route handlers, ``csrf_config()`` the form protection and
``template_config()`` (templating.py) the templates; timebank/app.py wires them.
See docs/architecture.md "Pages" for how to add a page.
"""

from litestar import Router
from litestar.config.csrf import CSRFConfig
from litestar.di import Provide

from timebank.config import Settings
from timebank.web import (
    access,
    corrections,
    exchanges,
    group_activities,
    history,
    home,
    members,
    people,
    record_help,
    reports,
    settings,
    signing_in,
    statement,
    transactions,
)
from timebank.web.context import provide_page_context, provide_signed_in

CSRF_COOKIE = "timebank_csrf"


def page_routes() -> list:
    organisation_pages = Router(
        path="/orgs/{org:str}",
        route_handlers=[
            *home.ROUTES,
            *exchanges.ROUTES,
            *group_activities.ROUTES,
            *members.ROUTES,
            *people.ROUTES,
            *statement.ROUTES,
            *record_help.ROUTES,
            *reports.ROUTES,
            *corrections.ROUTES,
            *transactions.ROUTES,
            *settings.ROUTES,
            *access.ROUTES,
            *history.ROUTES,
        ],
        # Every page in here is seen as an active member of the organisation in the path.
        dependencies={"ctx": Provide(provide_page_context)},
        include_in_schema=False,
    )
    outside = Router(
        path="/",
        route_handlers=signing_in.ROUTES,
        dependencies={"user": Provide(provide_signed_in)},
        include_in_schema=False,
    )
    return [outside, organisation_pages]


def csrf_config(settings: Settings) -> CSRFConfig:
    """Every form carries a token (the post_form macro adds it). The API is left out by path
    only: it never accepts the session cookie, so there is nothing there to forge."""
    return CSRFConfig(
        secret=settings.secret_key,
        cookie_name=CSRF_COOKIE,
        cookie_secure=settings.secure_cookies,
        cookie_httponly=True,
        cookie_samesite="lax",
        exclude=["^/api/"],
    )
