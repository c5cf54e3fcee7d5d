"""Posting on PostgreSQL in one round trip, through the ``timebank_post`` function.

The function (created by the migrations) does inside the database what
``stepwise.py`` does statement by statement: claim the idempotency key, lock
the accounts in id order, read the organisation's rules after the locks, check
every leg, write the postings and the balances. One statement instead of seven
round trips is most of the difference between a slow ledger and a fast one.

Its refusals arrive as ``RAISE EXCEPTION 'timebank:<reason>'`` with the facts in
``DETAIL`` as JSON; they are turned into the same domain errors, worded by
``refusals.py``, as the step-by-step writer raises.
"""

import datetime as dt
import json
from dataclasses import replace
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.auth.sign_in_cache import SignInChanged
from timebank.db import Database
from timebank.db.hot_path import driver_connection, pooled_driver_connection
from timebank.ledger import errors, refusals
from timebank.ledger.entries import PostedTransaction, PostingLine, PostingRequest
from timebank.ledger.reading import account_label, get_transaction, load_transaction
from timebank.models import AccountKind

# ``timebank_post_as`` (migration 0012) is ``timebank_post`` behind a check of the caller's
# sign-in version, when their standing came from a worker's memory (auth/sign_in_cache.py).
# The accounts' kinds and members' names come in the same statement: every write answers
# with them (present() in exchanges/endpoints.py), and asking in a second round trip cost
# about a fifth of a write's CPU. The join reads the rows as they were when the statement
# began, which is what the function saw too (a post changes no kind and no name).
# scripts/benchmark/ceiling.py sends this same statement, as the bench's ceiling.
POST_STATEMENT = (
    "SELECT p.transaction_id, p.replayed, p.category_id, p.category_name, p.account_id, p.minutes, "
    "p.balance_after, p.account_version, a.kind AS account_kind, m.display_name "
    "FROM timebank_post_as($13, $14, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) WITH ORDINALITY AS p "
    "LEFT JOIN accounts a ON a.organisation_id = $1 AND a.id = p.account_id "
    "LEFT JOIN members m ON m.organisation_id = a.organisation_id AND m.id = a.member_id "
    "ORDER BY p.ordinality"
)
_REFUSAL_PREFIX = "timebank:"
_SIGN_IN_CHANGED = "timebank:sign_in_changed"


async def post_in_one_round_trip(on: Database | AsyncConnection, request: PostingRequest) -> PostedTransaction:
    """Post ``request`` with one statement: its own transaction on a connection from ``on``'s
    pool, or part of the transaction open on ``on``."""
    assert request.occurred_on is not None and request.reverses_id is None
    recorded_at = dt.datetime.now(dt.UTC)
    connection = driver_connection(on) if isinstance(on, AsyncConnection) else pooled_driver_connection(on)
    try:
        async with connection as raw:
            rows = await raw.fetch(
                POST_STATEMENT,
                request.organisation_id,
                request.kind.value,
                [leg.account_id for leg in request.legs],
                [leg.minutes for leg in request.legs],
                [",".join(sorted(request.allowed_kinds[leg.account_id])) for leg in request.legs],
                request.occurred_on,
                request.description,
                request.category_key,
                request.recorded_by,
                request.idempotency_key,
                request.fingerprint,
                recorded_at,
                request.sign_in.user_id if request.sign_in else None,
                request.sign_in.version if request.sign_in else None,
            )
    except asyncpg.exceptions.RaiseError as raised:
        if raised.message == _SIGN_IN_CHANGED:
            raise SignInChanged from None
        refusal = _refusal(raised, request)
        if refusal is None:
            raise
        raise refusal from None
    first = rows[0]
    if first["replayed"]:
        if isinstance(on, AsyncConnection):
            original = await load_transaction(on, request.organisation_id, first["transaction_id"])
        else:
            original = await get_transaction(on, request.organisation_id, first["transaction_id"])
        assert original is not None
        return replace(original, created=False)
    return PostedTransaction(
        id=first["transaction_id"],
        organisation_id=request.organisation_id,
        kind=request.kind,
        occurred_on=request.occurred_on,
        recorded_at=recorded_at,
        recorded_by_user_id=request.recorded_by,
        description=request.description,
        category=first["category_name"],  # the organisation's own spelling
        idempotency_key=request.idempotency_key,
        reverses_id=None,
        postings=tuple(
            PostingLine(r["account_id"], r["minutes"], r["balance_after"], r["account_version"]) for r in rows
        ),
        labels={r["account_id"]: account_label(AccountKind(r["account_kind"]), r["display_name"]) for r in rows},
    )


def _refusal(raised: asyncpg.exceptions.RaiseError, request: PostingRequest) -> errors.LedgerError | None:
    """The domain error behind a ``RAISE EXCEPTION 'timebank:...'``, or None for anything else."""
    message = raised.message or ""
    if not message.startswith(_REFUSAL_PREFIX):
        return None
    reason = message[len(_REFUSAL_PREFIX) :]
    facts: dict[str, Any] = json.loads(raised.detail or "{}")
    if reason == "idempotency_conflict":
        return refusals.idempotency_conflict(request.idempotency_key, facts["transaction_id"])
    if reason == "unknown_category":
        return refusals.unknown_category(request.category or "")
    if reason == "unknown_account":
        return refusals.unknown_account(facts["account_id"])
    if reason == "future_date":
        return refusals.future_date(
            request.occurred_on,
            dt.date.fromisoformat(facts["today"]),
            facts["timezone"],  # type: ignore[arg-type]
        )
    if reason == "period_closed":
        return refusals.period_closed(
            request.occurred_on,  # type: ignore[arg-type]
            dt.date.fromisoformat(facts["books_closed_through"]),
        )
    if reason == "wrong_account_kind":
        return refusals.wrong_account_kind(facts["account_id"], facts["account_kind"], request.kind)
    if reason == "account_inactive":
        return refusals.account_inactive(facts["account_id"])
    if reason == "insufficient_balance":
        return refusals.insufficient_balance(
            facts["account_id"], facts["balance_minutes"], facts["floor_minutes"], facts["requested_minutes"]
        )
    return None
