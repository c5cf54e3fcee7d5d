"""A member's data for a subject access request, and erasure of a member who has left (coordinators)."""

from typing import Any

import structlog
from litestar import Controller, get, post
from litestar.params import FromPath, JSONBody

from timebank.api.dependencies import DatabaseDep, OrgContextDep
from timebank.api.schemas import error_responses
from timebank.ledger import errors
from timebank.members.service import get_member
from timebank.privacy.schemas import ErasurePublic, ErasureRequest
from timebank.privacy.service import erase_member, erased_name, export_member

logger = structlog.get_logger("timebank.privacy")


class PrivacyController(Controller):
    path = "/members/{member_id:int}"
    tags = ["data protection"]

    @get(
        "/export",
        summary="Everything held about a member: a subject access request (coordinators)",
        description="A readable JSON document. Other people's names are left out.",
        responses=error_responses(401, 403, 404, 503),
    )
    async def export(self, member_id: FromPath[int], ctx: OrgContextDep, db: DatabaseDep) -> dict[str, Any]:
        ctx.require_coordinator()
        document = await export_member(db, ctx.organisation_id, member_id)
        logger.info("member data exported", organisation_id=ctx.organisation_id, member_id=member_id)
        return document

    @post(
        "/erasure",
        status_code=200,
        summary="Erase a member who has left (coordinators)",
        description="Their name, email, login and the descriptions that name them are removed; their postings "
        "stay, so every balance and report still adds up. Cannot be undone: confirm with their current name.",
        responses=error_responses(400, 401, 403, 404, 409, 503),
    )
    async def erase(
        self, member_id: FromPath[int], data: JSONBody[ErasureRequest], ctx: OrgContextDep, db: DatabaseDep
    ) -> ErasurePublic:
        ctx.require_coordinator()
        current = await get_member(db, ctx.organisation_id, member_id)
        if " ".join(data.confirm_display_name.split()).casefold() != current.display_name.casefold():
            raise errors.InvalidEntry("confirm_display_name does not match the member's name: nothing was erased")
        done = await erase_member(db, ctx.organisation_id, member_id, by_user_id=ctx.caller.user_id)
        # Ids only: the log must not keep what was just erased.
        logger.info("member erased", organisation_id=ctx.organisation_id, member_id=member_id, by=ctx.caller.user_id)
        return ErasurePublic(
            member_id=member_id,
            display_name=erased_name(member_id),
            descriptions_removed=done.descriptions_removed,
            login=done.login,
            sign_in_records_removed=done.sign_in_records_removed,
        )
