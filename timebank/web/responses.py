"""Answers of page handlers: a rendered page, or a redirect after a POST (post/redirect/get)."""

import datetime as dt
import uuid
from typing import Any

from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER

from timebank.web.context import PageContext, SignedIn


def page(
    template_name: str,
    *,
    user: SignedIn | None = None,
    ctx: PageContext | None = None,
    status_code: int = 200,
    **context: Any,
) -> Template:
    """Render ``pages/<template_name>`` for ``user`` (or the person in ``ctx``; None when signed out)."""
    user = user or (ctx.user if ctx else None)
    values: dict[str, Any] = {"user": user, "ctx": ctx, **context}
    if user is not None:
        seconds_left = max(int((user.idle_deadline - dt.datetime.now(dt.UTC)).total_seconds()), 0)
        values["idle_seconds_left"] = seconds_left
        values["idle_warning_seconds"] = user.idle_warning_seconds
        # Said in whole minutes ("in 3 minutes"), never "in 0 minutes".
        values["idle_warning_minutes"] = max(round(user.idle_warning_seconds / 60), 1)
    return Template(template_name=template_name, context=values, status_code=status_code)


def new_form_key() -> str:
    """The idempotency key of one showing of a form (the form_key macro puts it in the form).

    The POST hands it to the ledger as its Idempotency-Key: a second submit of the same form
    replays the first result instead of posting again.
    """
    return uuid.uuid4().hex


def see_other(path: str) -> Redirect:
    """After a successful POST: the browser GETs ``path``, so Back or refresh never posts again."""
    return Redirect(path=path, status_code=HTTP_303_SEE_OTHER)
