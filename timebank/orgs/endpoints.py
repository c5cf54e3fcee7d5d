"""Organisations: created by a site administrator, read by members, run by coordinators."""

from litestar import Controller, get, patch, post
from litestar.di import Provide
from litestar.exceptions import PermissionDeniedException
from litestar.params import JSONBody

from timebank.api.dependencies import CallerDep, DatabaseDep, OrgContextDep
from timebank.api.schemas import amount, error_responses
from timebank.auth.context import provide_caller
from timebank.ledger import errors
from timebank.orgs.schemas import OrganisationCreate, OrganisationPublic, OrganisationUpdate
from timebank.orgs.service import (
    FirstCoordinator,
    create_organisation,
    get_organisation_details,
    update_organisation,
)


async def _public(db: DatabaseDep, organisation_id: int) -> OrganisationPublic:
    details = await get_organisation_details(db, organisation_id)
    organisation = details.organisation
    assert organisation.id is not None
    return OrganisationPublic(
        id=organisation.id,
        slug=organisation.slug,
        name=organisation.name,
        timezone=organisation.timezone,
        min_balance=amount(organisation.min_balance_minutes),
        books_closed_through=organisation.books_closed_through,
        categories=details.categories,
        agency_account_id=details.agency_account_id,
        pot_account_id=details.pot_account_id,
    )


@post(
    "/api/v1/orgs",
    summary="Create an organisation (site administrators)",
    description="Creates the organisation with its agency account, community pot and default categories, "
    "and, given `first_coordinator`, its first coordinator (who signs in with that username and password "
    "and registers everyone else).",
    tags=["organisations"],
    dependencies={"caller": Provide(provide_caller)},
    responses=error_responses(400, 401, 403, 409, 503),
)
async def create_org(data: JSONBody[OrganisationCreate], caller: CallerDep, db: DatabaseDep) -> OrganisationPublic:
    if not caller.is_site_admin:
        raise PermissionDeniedException("only a site administrator may create organisations")
    minimum = data.min_balance()
    organisation = await create_organisation(
        db,
        slug=data.slug,
        name=data.name,
        timezone=data.timezone,
        **({"min_balance_minutes": minimum} if minimum is not None else {}),
        first_coordinator=FirstCoordinator(**data.first_coordinator.model_dump()) if data.first_coordinator else None,
        changed_by=caller.user_id,
    )
    assert organisation.id is not None
    return await _public(db, organisation.id)


class OrganisationController(Controller):
    path = "/"
    tags = ["organisations"]

    @get("/", summary="The organisation (any member of it)", responses=error_responses(401, 404, 503))
    async def get_org(self, ctx: OrgContextDep, db: DatabaseDep) -> OrganisationPublic:
        return await _public(db, ctx.organisation_id)

    @patch(
        "/",
        summary="Change the organisation's settings (coordinators)",
        description="Name, time zone, minimum balance and categories. `books_closed_through` is not set here: "
        "it moves only by closing a month (`POST /periods/{YYYY-MM}/close`). Tightening the minimum balance "
        "never makes an existing balance illegal: a member already below it may still receive hours, but not "
        "spend more.",
        responses=error_responses(400, 401, 403, 404, 503),
    )
    async def update_org(
        self, data: JSONBody[OrganisationUpdate], ctx: OrgContextDep, db: DatabaseDep
    ) -> OrganisationPublic:
        ctx.require_coordinator()
        if "books_closed_through" in data.model_fields_set:
            raise errors.InvalidEntry(
                "books_closed_through cannot be set here: the books close only by closing a month, with "
                f"POST /api/v1/orgs/{ctx.slug}/periods/YYYY-MM/close, and a closed month is never reopened",
                field="books_closed_through",
            )
        await update_organisation(
            db,
            ctx.organisation_id,
            name=data.name,
            timezone=data.timezone,
            min_balance_minutes=data.min_balance(),
            categories=data.categories,
            changed_by=ctx.caller.user_id,
        )
        return await _public(db, ctx.organisation_id)
