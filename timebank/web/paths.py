"""Where the pages' files are, and the URLs of the vendored assets (versions in package.json)."""

from pathlib import Path

WEB_DIR = Path(__file__).parent
TEMPLATES_DIR = WEB_DIR / "templates"

GOVUK_FRONTEND = "/static/vendor/govuk-frontend-6.3.0"
ACCESSIBLE_AUTOCOMPLETE = "/static/vendor/accessible-autocomplete-3.0.1"
HTMX = "/static/vendor/htmx.org-2.0.11"

_ASSETS = {
    "govuk.css": f"{GOVUK_FRONTEND}/govuk-frontend.min.css",
    "govuk.js": f"{GOVUK_FRONTEND}/govuk-frontend.min.js",
    "autocomplete.css": f"{ACCESSIBLE_AUTOCOMPLETE}/accessible-autocomplete.min.css",
    "autocomplete.js": f"{ACCESSIBLE_AUTOCOMPLETE}/accessible-autocomplete.min.js",
    "htmx.js": f"{HTMX}/htmx.min.js",
    "timebank.css": "/static/web/timebank.css",
    "reports.css": "/static/web/reports.css",
    "init.js": "/static/web/init.js",
    "idle-timeout.js": "/static/web/idle-timeout.js",
    "group-totals.js": "/static/web/group-totals.js",
    "person-field.js": "/static/web/person-field.js",
    "favicon.svg": "/static/web/favicon.svg",
}


def asset(name: str) -> str:
    """The URL of a front-end file by its short name (``asset('govuk.css')``)."""
    return _ASSETS[name]
