"""Exchanges: the ledger's writes over HTTP, each with an Idempotency-Key."""

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Protocol

from litestar import Controller, Response, get, post
from litestar.exceptions import PermissionDeniedException
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, HeaderParameter, JSONBody, Parameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from timebank import ledger
from timebank.api.dependencies import DatabaseDep, OrgAccessDep, OrgContextDep
from timebank.api.schemas import error_responses
from timebank.auth.context import OrgContext
from timebank.auth.sign_in_cache import SignInCheck
from timebank.db import Database
from timebank.exchanges.schemas import (
    ExchangeCreate,
    ReversalCreate,
    TransactionPage,
    TransactionPublic,
    decode_transaction_cursor,
    encode_transaction_cursor,
)
from timebank.ledger import PostedTransaction
from timebank.ledger.posting import MAX_KEY_LENGTH, check_idempotency_key
from timebank.ledger.reading import account_labels, list_transactions

IdempotencyKey = Annotated[
    str,
    HeaderParameter(
        name="Idempotency-Key",
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        description="Any unique string per intended entry (a UUID is ideal). Sending the same key again "
        "returns the first answer and posts nothing; the same key with a different body is refused (409).",
    ),
]

_REPLAYED = ResponseSpec(
    data_container=TransactionPublic,
    description="A replayed Idempotency-Key: the original transaction, unchanged (header Idempotent-Replayed: true).",
    generate_examples=False,
)


class Reader(Protocol):
    """Who reads: the API's OrgContext, or a page's PageContext (timebank/web/context.py)."""

    @property
    def organisation_id(self) -> int: ...
    @property
    def account_id(self) -> int: ...
    @property
    def is_staff(self) -> bool: ...


async def present(db: Database, ctx: Reader, found: list[PostedTransaction]) -> list[TransactionPublic]:
    """Transactions as the caller may see them: staff everything, a member only what is theirs
    to see (timebank/ledger/visibility.py). Every answer with a transaction goes through here."""
    labels = await _labels(db, ctx.organisation_id, found)
    member_account_id = None if ctx.is_staff else ctx.account_id
    return [TransactionPublic.of(t, labels, member_account_id) for t in found]


async def _labels(db: Database, organisation_id: int, found: list[PostedTransaction]) -> Mapping[int, str]:
    """The accounts' names: those a write read itself (PostedTransaction.labels), the rest asked."""
    known = {account: label for t in found if t.labels for account, label in t.labels.items()}
    missing = {p.account_id for t in found for p in t.postings} - known.keys()
    return known | await account_labels(db, organisation_id, missing)


async def _answer(db: Database, ctx: OrgContext, posted: PostedTransaction) -> Response[TransactionPublic]:
    """201 for a new transaction; 200 and the original for a replayed key."""
    headers = {} if posted.created else {"Idempotent-Replayed": "true"}
    [public] = await present(db, ctx, [posted])
    return Response(public, status_code=HTTP_201_CREATED if posted.created else HTTP_200_OK, headers=headers)


async def _log(
    db: Database, ctx: OrgContext, sign_in: SignInCheck | None, data: ExchangeCreate, idempotency_key: str
) -> tuple[OrgContext, PostedTransaction]:
    """Post what ``data`` asks as ``ctx``, who may: staff anything, a member only help they received."""
    check_idempotency_key(idempotency_key)
    if data.is_group:
        ctx.require_staff()
        assert data.givers is not None and data.receivers is not None
        posted = await ledger.post_group_activity(
            db,
            ctx.organisation_id,
            givers=[(leg.account_id, leg.total_minutes()) for leg in data.givers],
            receivers=[(leg.account_id, leg.total_minutes()) for leg in data.receivers],
            occurred_on=data.occurred_on,
            description=data.description,
            category=data.category,
            recorded_by=ctx.caller.user_id,
            idempotency_key=idempotency_key,
            sign_in=sign_in,
        )
        return ctx, posted
    assert data.giver_account_id is not None and data.receiver_account_id is not None
    if not ctx.is_staff and data.receiver_account_id != ctx.account_id:
        raise PermissionDeniedException(
            "a member may record only help they received: the receiver must be your own account"
        )
    posted = await ledger.post_exchange(
        db,
        ctx.organisation_id,
        giver_account_id=data.giver_account_id,
        receiver_account_id=data.receiver_account_id,
        minutes=data.total_minutes(),
        occurred_on=data.occurred_on,
        description=data.description,
        category=data.category,
        recorded_by=ctx.caller.user_id,
        idempotency_key=idempotency_key,
        sign_in=sign_in,
    )
    return ctx, posted


class ExchangeController(Controller):
    path = "/exchanges"
    tags = ["exchanges"]

    @post(
        "/",
        summary="Log an exchange or a group activity",
        description="Giving credits the giver; receiving debits the receiver. A member may log only help "
        "they received (themself as the receiver). Staff and coordinators may log between any accounts "
        "of the organisation, and group activities (many givers and receivers, both sides totalling the same).",
        responses={200: _REPLAYED, **error_responses(400, 401, 403, 404, 409, 503)},
    )
    async def create(
        self, data: JSONBody[ExchangeCreate], access: OrgAccessDep, db: DatabaseDep, idempotency_key: IdempotencyKey
    ) -> Response[TransactionPublic]:
        # The caller's standing may come from the worker's memory, confirmed by the write
        # itself before it writes anything (auth/context.py: OrgAccess).
        ctx, posted = await access.run(lambda ctx, sign_in: _log(db, ctx, sign_in, data, idempotency_key))
        return await _answer(db, ctx, posted)

    @get(
        "/",
        summary="Exchanges, newest first (staff and coordinators: all; a member: those on their own account)",
        description="Filter by service date, account and category. Pages with ?cursor= from next_cursor. "
        "A member sees only transactions with a posting on their own account; asking for any other "
        "account_id is refused with 403, whether or not that account exists.",
        responses=error_responses(400, 401, 403, 404, 503),
    )
    async def list_all(
        self,
        ctx: OrgContextDep,
        db: DatabaseDep,
        from_date: Annotated[dt.date | None, QueryParameter(name="from")] = None,
        to_date: Annotated[dt.date | None, QueryParameter(name="to")] = None,
        account_id: Annotated[int | None, Parameter(ge=1)] = None,
        category: Annotated[str | None, Parameter(max_length=80)] = None,
        cursor: Annotated[str | None, Parameter(max_length=100)] = None,
        limit: Annotated[int, Parameter(ge=1, le=200)] = 50,
    ) -> TransactionPage:
        if not ctx.is_staff:
            if account_id is not None and account_id != ctx.account_id:
                # The same answer for an account that does not exist: ids cannot be probed.
                raise PermissionDeniedException("you may list only the exchanges on your own account")
            account_id = ctx.account_id
        page = await list_transactions(
            db,
            ctx.organisation_id,
            start=from_date,
            end=to_date,
            account_id=account_id,
            category=category,
            after=decode_transaction_cursor(cursor) if cursor else None,
            limit=limit + 1,
        )
        more = len(page) > limit
        page = page[:limit]
        return TransactionPage(
            items=await present(db, ctx, page),
            next_cursor=encode_transaction_cursor(page[-1]) if more else None,
        )

    @get(
        "/{transaction_id:int}",
        summary="One exchange (staff, coordinators, or a member whose account it touches)",
        responses=error_responses(401, 403, 404, 503),
    )
    async def get_one(self, transaction_id: FromPath[int], ctx: OrgContextDep, db: DatabaseDep) -> TransactionPublic:
        posted = await ledger.get_transaction(db, ctx.organisation_id, transaction_id)
        if not ctx.is_staff and all(p.account_id != ctx.account_id for p in posted.postings):
            raise PermissionDeniedException("you may see only exchanges on your own account")
        [public] = await present(db, ctx, [posted])
        return public

    @post(
        "/{transaction_id:int}/reversal",
        summary="Reverse an exchange (coordinators)",
        description="Posts a new transaction that cancels every leg of the original, dated today. "
        "A transaction is reversed at most once: a second reversal is refused (409).",
        responses={200: _REPLAYED, **error_responses(400, 401, 403, 404, 409, 503)},
    )
    async def reverse(
        self,
        transaction_id: FromPath[int],
        data: JSONBody[ReversalCreate],
        ctx: OrgContextDep,
        db: DatabaseDep,
        idempotency_key: IdempotencyKey,
    ) -> Response[TransactionPublic]:
        ctx.require_coordinator()
        check_idempotency_key(idempotency_key)
        posted = await ledger.reverse_transaction(
            db,
            ctx.organisation_id,
            transaction_id,
            reason=data.reason,
            recorded_by=ctx.caller.user_id,
            idempotency_key=idempotency_key,
        )
        return await _answer(db, ctx, posted)
