"""Helpers shared by the HTTP specification: request bodies with sensible defaults, and
checks on the error shape that every refusal goes through."""

import datetime as dt
from typing import Any

import httpx

from tests.api.conftest import ApiOrg, Person
from tests.conftest import today


def days_ago(days: int) -> dt.date:
    return today() - dt.timedelta(days=days)


def exchange_body(giver: int, receiver: int, **overrides: Any) -> dict[str, Any]:
    """An exchange of one hour today; ``overrides`` replace or add fields (None removes one).
    Giving ``hours`` leaves out the default ``minutes``."""
    body: dict[str, Any] = {
        "giver_account_id": giver,
        "receiver_account_id": receiver,
        "minutes": 60,
        "occurred_on": today().isoformat(),
        "description": "Help with the shopping",
    }
    if "hours" in overrides:
        del body["minutes"]
    body.update(overrides)
    return {name: value for name, value in body.items() if value is not None}


async def post_exchange(
    client: httpx.AsyncClient,
    api_org: ApiOrg,
    giver: int,
    receiver: int,
    *,
    by: Person | None = None,
    key: str | None = None,
    **overrides: Any,
) -> httpx.Response:
    """POST an exchange (by the staff member unless ``by`` is given)."""
    author = by or api_org.staff
    return await client.post(
        api_org.url("/exchanges"), json=exchange_body(giver, receiver, **overrides), headers=author.posting(key)
    )


async def posted(client: httpx.AsyncClient, api_org: ApiOrg, giver: int, receiver: int, **kwargs: Any) -> dict:
    """POST an exchange that must succeed; returns the transaction."""
    response = await post_exchange(client, api_org, giver, receiver, **kwargs)
    assert response.status_code == 201, response.text
    return response.json()


async def balance(client: httpx.AsyncClient, api_org: ApiOrg, account_id: int) -> int:
    """An account's balance in minutes, read through the API by the coordinator."""
    response = await client.get(api_org.url(f"/accounts/{account_id}"), headers=api_org.coordinator.headers)
    assert response.status_code == 200, response.text
    return response.json()["balance"]["minutes"]


def error(response: httpx.Response, status: int) -> dict:
    """Check the response is the error ``status`` in the one error shape; returns its body."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"status_code", "detail", "extra"}, body
    assert body["status_code"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def invalid(response: httpx.Response, field: str | None = None) -> dict:
    """Check the response is a 400; with ``field``, that the answer names it."""
    body = error(response, 400)
    if field is not None:
        problems = body["extra"] if isinstance(body["extra"], list) else []
        named = [problem.get("key") for problem in problems]
        said = " ".join([body["detail"], *(problem.get("message", "") for problem in problems)])
        assert field in named or field in said, body
    return body
