"""Errors on pages are pages: friendly, with a way back. The API keeps its JSON.

``with_page_errors`` wraps every exception handler of the app (timebank/errors.py):
the JSON handler still runs (it logs what it should), and for a page request its
status becomes the matching page in templates/errors/. A refused CSRF check is the
"This form has expired" page, not a refusal.
"""

from collections.abc import Callable

from litestar import Request, Response
from litestar.exceptions import PermissionDeniedException

from timebank.security import DOCS_PATH_PREFIXES, NOT_PAGE_PREFIXES
from timebank.web.context import PasswordChangeRequired, SignInRequired
from timebank.web.responses import page, see_other

# Paths that are not pages: they answer JSON (or files) whatever happens.
NOT_PAGES = (*NOT_PAGE_PREFIXES, *DOCS_PATH_PREFIXES)
CSRF_FAILED = "CSRF token verification failed"
_PAGES_BY_STATUS = {400, 403, 404, 405, 429, 500, 503}

Handler = Callable[[Request, Exception], Response]


def is_page_request(request: Request) -> bool:
    return not request.url.path.startswith(NOT_PAGES)


def error_page(status_code: int, headers: dict[str, str] | None = None) -> Response:
    name = status_code if status_code in _PAGES_BY_STATUS else (500 if status_code >= 500 else 400)
    answer = page(f"errors/{name}.html", status_code=status_code)
    answer.headers.update(headers or {})
    return answer


def with_page_errors(handlers: dict[type[Exception], Handler]) -> dict[type[Exception], Handler]:
    def for_pages(json_handler: Handler) -> Handler:
        def handle(request: Request, exc: Exception) -> Response:
            answer = json_handler(request, exc)
            if not is_page_request(request):
                return answer
            if isinstance(exc, PermissionDeniedException) and exc.detail == CSRF_FAILED:
                return page("errors/expired_form.html", status_code=403)
            retry_after = answer.headers.get("Retry-After")
            return error_page(answer.status_code, {"Retry-After": retry_after} if retry_after else None)

        return handle

    wrapped = {kind: for_pages(handler) for kind, handler in handlers.items()}
    wrapped[SignInRequired] = _sign_in_required  # type: ignore[assignment]
    wrapped[PasswordChangeRequired] = _password_change_required  # type: ignore[assignment]
    return wrapped


def _sign_in_required(request: Request, exc: SignInRequired) -> Response:
    # The start page says why when a session timed out (it sees the stale cookie and clears it).
    return see_other("/")


def _password_change_required(request: Request, exc: PasswordChangeRequired) -> Response:
    return see_other("/change-password")
