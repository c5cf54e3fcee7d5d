"""Correction requests over HTTP: a member reports an entry of their own account; staff answer."""

from typing import Annotated, Literal

from litestar import Controller, Response, get, post
from litestar.openapi import ResponseSpec
from litestar.params import FromPath, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from timebank.api.dependencies import DatabaseDep, OrgContextDep
from timebank.api.schemas import error_responses
from timebank.corrections import service
from timebank.corrections.schemas import AnswerCreate, CorrectionCreate, CorrectionList, CorrectionPublic
from timebank.exchanges.endpoints import IdempotencyKey

_REPLAYED = ResponseSpec(
    data_container=CorrectionPublic,
    description="A replayed Idempotency-Key: the original request, unchanged (header Idempotent-Replayed: true).",
    generate_examples=False,
)


def _answer(correction: service.Correction) -> Response[CorrectionPublic]:
    """201 for a new row; 200 and the original for a replayed key."""
    headers = {} if correction.created else {"Idempotent-Replayed": "true"}
    status = HTTP_201_CREATED if correction.created else HTTP_200_OK
    return Response(CorrectionPublic.of(correction), status_code=status, headers=headers)


class CorrectionController(Controller):
    tags = ["corrections"]

    @post(
        "/exchanges/{transaction_id:int}/corrections",
        summary="Report a mistake in an entry of one's own account",
        description="Anyone reports only entries with a posting on their own account: a member asking about "
        "any other entry is answered 404, as for one that does not exist; staff and coordinators, who see "
        "every entry, are answered 403 (a coordinator corrects someone else's entry with a reversal). "
        "A request changes nothing in the ledger.",
        responses={200: _REPLAYED, **error_responses(400, 401, 403, 404, 409, 503)},
    )
    async def report(
        self,
        transaction_id: FromPath[int],
        data: JSONBody[CorrectionCreate],
        ctx: OrgContextDep,
        db: DatabaseDep,
        idempotency_key: IdempotencyKey,
    ) -> Response[CorrectionPublic]:
        correction = await service.report_mistake(
            db,
            ctx.organisation_id,
            transaction_id,
            member_id=ctx.member_id,
            account_id=ctx.account_id,
            reported_by=ctx.caller.user_id,
            what_is_wrong=data.what_is_wrong,
            what_it_should_be=data.what_it_should_be,
            sees_every_entry=ctx.is_staff,
            idempotency_key=idempotency_key,
        )
        return _answer(correction)

    @get(
        "/exchanges/{transaction_id:int}/corrections",
        summary="Correction requests about one entry (staff and coordinators: all; a member: their own)",
        description="A member sees only the requests they made, and only about entries of their own "
        "account (any other entry is answered 404, as for one that does not exist).",
        responses=error_responses(401, 404, 503),
    )
    async def list_for_entry(
        self, transaction_id: FromPath[int], ctx: OrgContextDep, db: DatabaseDep
    ) -> CorrectionList:
        await service.check_may_read(
            db, ctx.organisation_id, transaction_id, account_id=ctx.account_id, sees_every_entry=ctx.is_staff
        )
        found = await service.list_corrections(
            db,
            ctx.organisation_id,
            transaction_id=transaction_id,
            account_id=None if ctx.is_staff else ctx.account_id,
        )
        return CorrectionList(items=[CorrectionPublic.of(c) for c in found])

    @get(
        "/corrections",
        summary="Correction requests of the organisation (staff and coordinators)",
        description="?status=open: those not answered yet, oldest first; answered or none: newest first. "
        f"At most {service.MAX_LIST}.",
        responses=error_responses(400, 401, 403, 404, 503),
    )
    async def list_all(
        self,
        ctx: OrgContextDep,
        db: DatabaseDep,
        status: Annotated[Literal["open", "answered"] | None, Parameter()] = None,
        limit: Annotated[int, Parameter(ge=1, le=service.MAX_LIST)] = service.MAX_LIST,
    ) -> CorrectionList:
        ctx.require_staff()
        found = await service.list_corrections(db, ctx.organisation_id, status=status, limit=limit)
        return CorrectionList(items=[CorrectionPublic.of(c) for c in found])

    @post(
        "/corrections/{correction_id:int}/answer",
        summary="Answer a correction request (staff and coordinators), once",
        description="The member reads the answer on their statement. If the entry has been reversed by "
        "then, the answer records the reversal (reversal_id) and the member is told the entry was "
        "reversed. A second answer is refused (409). Answering changes nothing in the ledger.",
        responses={200: _REPLAYED, **error_responses(400, 401, 403, 404, 409, 503)},
    )
    async def answer(
        self,
        correction_id: FromPath[int],
        data: JSONBody[AnswerCreate],
        ctx: OrgContextDep,
        db: DatabaseDep,
        idempotency_key: IdempotencyKey,
    ) -> Response[CorrectionPublic]:
        ctx.require_staff()
        correction = await service.answer_correction(
            db,
            ctx.organisation_id,
            correction_id,
            answer=data.answer,
            answered_by=ctx.caller.user_id,
            idempotency_key=idempotency_key,
        )
        return _answer(correction)
