"""Refusing control characters in the address: in any query parameter or path segment.

NUL cannot be stored or compared in PostgreSQL text, and SQLite cuts a pattern at it, so
the same request used to answer 400 on one database and search something else on the
other. No parameter of ours needs a control character (tab, line feed and carriage
return excepted, as in request bodies), so every one is refused first, with a 400 that
names the parameter, before anything reaches a database.
"""

import re
from urllib.parse import parse_qsl

from litestar.exceptions import ValidationException
from litestar.types import ASGIApp, Receive, Scope, Send

# Unicode's control characters (category Cc: U+0000 to U+001F and U+007F to U+009F), less
# tab, line feed and carriage return. One regular expression: this runs on every request.
_REFUSED = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def has_control_character(text: str) -> bool:
    """True if ``text`` holds a control character other than tab, line feed and carriage return."""
    return _REFUSED.search(text) is not None


def _refusal(where: str, name: str) -> ValidationException:
    message = f"the {where} contains a control character (such as NUL), which no value here may hold; remove it"
    return ValidationException(detail=message, extra=[{"key": name, "source": where, "message": message}])


def control_character_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if has_control_character(scope["path"]):
                raise _refusal("address", "path")
            query = scope.get("query_string", b"").decode("latin-1")
            parameters = parse_qsl(query, keep_blank_values=True, encoding="utf-8", errors="replace") if query else ()
            for name, value in parameters:
                if has_control_character(name) or has_control_character(value):
                    raise _refusal(f"query parameter {name!r}", name)
        await app(scope, receive, send)

    return middleware
