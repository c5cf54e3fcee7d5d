"""Finding a person by typing part of their name: the lookup behind every "person" field.

``GET /orgs/{org}/people?q=...`` answers names only (never a balance), at most ten, of the
organisation's active members, searched by the member service the API uses. A member gets
other members; staff get members and, with ``include_centre=1``, the centre (the agency
account, named by the organisation's name).

A page with a person field (macros/person_field.html) posts three values per field:
``<name>`` (what was typed), ``<name>_account_id`` (a suggestion or radio chosen, or
``search`` to type again) and ``<name>_choosing`` (the "choose one of these people" step
was shown). ``resolve_person`` turns them into exactly one account, or candidates to choose
from, or a problem for the page to word. See /work/notes/people-lookup.md.
"""

from dataclasses import dataclass
from typing import Annotated

from litestar import get
from litestar.params import FromQuery, QueryParameter

from timebank.api.dependencies import DatabaseDep
from timebank.db import Database
from timebank.ledger import errors, shared_account_id
from timebank.ledger.reading import get_account
from timebank.members.service import list_members
from timebank.models import AccountKind
from timebank.web.context import PageContext, PageContextDep

MAX_MATCHES = 10
SEARCH_AGAIN = "search"


@dataclass(frozen=True, slots=True)
class PersonChoice:
    """Someone a person field may name: an account and how people call it."""

    account_id: int
    name: str
    is_centre: bool = False


@dataclass(frozen=True, slots=True)
class PersonField:
    """A person field after a submit.

    ``chosen`` is set when it names exactly one account. Otherwise ``problem`` says why not:
    ``missing`` (nothing typed), ``not_found`` (no one matches ``typed``), ``choose`` (several
    match: show ``candidates`` as radios; a step, not an error), ``not_chosen`` (the radios
    were shown and none was picked), or None after "search again" (show the text box again).
    """

    typed: str = ""
    chosen: PersonChoice | None = None
    candidates: tuple[PersonChoice, ...] = ()
    problem: str | None = None

    @property
    def is_resolved(self) -> bool:
        return self.chosen is not None

    @property
    def is_error(self) -> bool:
        return self.problem in {"missing", "not_found", "not_chosen"}


def _clean(typed: str) -> str:
    return " ".join(typed.split())


async def find_people(
    db: Database, ctx: PageContext, typed: str, *, include_centre: bool = False, limit: int = MAX_MATCHES
) -> list[PersonChoice]:
    """At most ``limit`` active members whose name contains ``typed`` (any case), by name.

    A member never finds themself; the centre comes first when staff ask for it and its name matches.
    """
    typed = _clean(typed)
    if not typed:
        return []
    found = []
    if include_centre and ctx.is_staff and typed.casefold() in ctx.organisation_name.casefold():
        found.append(await _centre(db, ctx))
    views, _ = await list_members(db, ctx.organisation_id, search=typed, active=True, limit=limit + 1, offset=0)
    found += [
        PersonChoice(view.account_id, view.display_name)
        for view in views
        if ctx.is_staff or view.account_id != ctx.account_id
    ]
    return found[:limit]


async def _centre(db: Database, ctx: PageContext) -> PersonChoice:
    account_id = await shared_account_id(db, ctx.organisation_id, AccountKind.AGENCY)
    return PersonChoice(account_id, ctx.organisation_name, is_centre=True)


async def _choosable(db: Database, ctx: PageContext, account_id: int, *, include_centre: bool) -> PersonChoice | None:
    """The account chosen by a suggestion or a radio, if the lookup could have offered it."""
    try:
        account = await get_account(db, ctx.organisation_id, account_id)
    except errors.AccountNotFound:
        return None
    if account.kind is AccountKind.AGENCY and include_centre and ctx.is_staff:
        return PersonChoice(account.id, ctx.organisation_name, is_centre=True)
    if account.kind is not AccountKind.MEMBER or not account.is_active:
        return None
    if not ctx.is_staff and account.id == ctx.account_id:
        return None
    return PersonChoice(account.id, account.display_name)


async def resolve_person(
    db: Database,
    ctx: PageContext,
    *,
    typed: str,
    account_id: str = "",
    choosing: bool = False,
    include_centre: bool = False,
) -> PersonField:
    """What a person field names: one account, candidates to choose from, or a problem.

    A chosen ``account_id`` (a radio, or a suggestion picked with JavaScript whose name is
    still what the box holds) wins if the lookup could have offered it; otherwise what was
    typed is searched: one exact match (ignoring case) is that person, and anything else is
    a choice or a problem.
    """
    typed = _clean(typed)
    if account_id == SEARCH_AGAIN:
        return PersonField(typed=typed)
    if account_id.isdigit():
        chosen = await _choosable(db, ctx, int(account_id), include_centre=include_centre)
        # From the radios, or the suggestion still as it was picked (not typed over since).
        if chosen is not None and (choosing or chosen.name.casefold() == typed.casefold()):
            return PersonField(typed=chosen.name, chosen=chosen)
    if not typed:
        return PersonField(problem="missing")
    candidates = await find_people(db, ctx, typed, include_centre=include_centre)
    exact = [c for c in candidates if c.name.casefold() == typed.casefold()]
    if len(exact) == 1:
        return PersonField(typed=exact[0].name, chosen=exact[0])
    if not candidates:
        return PersonField(typed=typed, problem="not_found")
    return PersonField(typed=typed, candidates=tuple(candidates), problem="not_chosen" if choosing else "choose")


@get("/people", name="people-lookup")
async def people_lookup(
    ctx: PageContextDep,
    db: DatabaseDep,
    q: Annotated[str, QueryParameter(max_length=200)] = "",
    include_centre: FromQuery[bool] = False,
) -> list[dict[str, object]]:
    """Suggestions for a person field (accessible-autocomplete): names and account ids, nothing else."""
    people = await find_people(db, ctx, q, include_centre=include_centre)
    return [{"account_id": person.account_id, "name": person.name} for person in people]


ROUTES = [people_lookup]
