"""Security headers on every response."""

from litestar.datastructures import MutableScopeHeaders
from litestar.types import Message, Scope

# The API answers JSON: it needs to load nothing, and may be framed by nobody.
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
# The API explorer: our own vendored scripts and styles only (Swagger UI sets inline styles).
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
DOCS_PATH_PREFIXES = ("/schema", "/static/")
# The pages: this site's own scripts, styles and images only; no inline script or style;
# forms post only here. Everything else (the API, /health, /ready) keeps API_CSP.
PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; font-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# The report's charts (web/charts.py): pygal writes its styles inside the SVG, so a chart is
# its own response that may use inline style and nothing else (it is shown by an <img>).
CHART_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'"
NOT_PAGE_PREFIXES = ("/api/", "/health", "/ready", "/metrics")

_COMMON = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
]
_API_HEADERS = [*_COMMON, (b"content-security-policy", API_CSP.encode()), (b"cache-control", b"no-store")]
_DOCS_HEADERS = [*_COMMON, (b"content-security-policy", DOCS_CSP.encode())]
# no-store: Back after "Sign out" on a shared computer must not show anyone's hours.
_PAGE_HEADERS = [*_COMMON, (b"content-security-policy", PAGE_CSP.encode()), (b"cache-control", b"no-store")]
_CHART_HEADERS = [*_COMMON, (b"content-security-policy", CHART_CSP.encode()), (b"cache-control", b"no-store")]


def is_chart(path: str) -> bool:
    """/orgs/{org}/reports/charts/<name>.svg"""
    parts = path.split("/")
    return len(parts) == 6 and parts[1] == "orgs" and parts[3:5] == ["reports", "charts"]


def _headers_for(path: str) -> list[tuple[bytes, bytes]]:
    if path.startswith(DOCS_PATH_PREFIXES):
        return _DOCS_HEADERS
    if path.startswith(NOT_PAGE_PREFIXES):
        return _API_HEADERS
    if is_chart(path):
        return _CHART_HEADERS
    return _PAGE_HEADERS


async def add_security_headers(message: Message, scope: Scope) -> None:
    """A ``before_send`` hook: it sees every response, 404s for unknown paths included."""
    if message["type"] == "http.response.start":
        extra = _headers_for(scope["path"])
        headers = MutableScopeHeaders.from_message(message)
        for name, value in extra:
            headers.add(name.decode(), value.decode())
