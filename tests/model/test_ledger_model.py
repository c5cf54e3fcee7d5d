"""The ledger checked step by step against an independent model (``tests/model/reference.py``).

A Hypothesis state machine sends the ledger service random requests — exchanges
(the agency account on either side), group activities, donations to and grants
from the pot, opening balances, reversals (of reversals, twice over, of another
organisation's transactions), replays of earlier requests with the same key,
the same key with a different request, keys of refused requests used again —
and changes around them: new members, deactivation and reactivation, a
tightened or loosened minimum balance, closed books, categories retired, renamed
and added. Dates are past, today and future; amounts small, at an account's
limit or one minute either side of it; now and then the input is malformed. The
reference model says first what the answer must be, and the service must agree
exactly: the same error class when it refuses; the original transaction,
created False, when it replays; the same legs, balances after, versions, date,
description and category when it posts.

After every step the whole organisation is compared with the model: each
account's balance (through ``current_balance`` and as stored), version, limit and
active flag; the number of transactions and postings (so a refusal or a replay
wrote nothing); each stored balance equal to the sum of its postings; the
organisation summing to zero; no balance below its limit. Reads are checked too:
transactions read back, balances as of a date, statements. At the end of each
example ``verify_ledger`` must find nothing wrong in the whole database.

Each example works in a new organisation (its own minimum balance and time zone),
so examples never see each other. The machine runs on its own event loop with its
own engine on the backend's shared test database: Hypothesis' state machines are
synchronous, and the session ``db`` fixture's engine belongs to pytest's loop.

Size: by default 50 examples of up to 30 steps per backend (about half a minute
each). Run it bigger with, for example::

    TIMEBANK_MODEL_EXAMPLES=500 TIMEBANK_MODEL_STEPS=100 .venv/bin/python -m pytest tests/model

``-rP`` prints how often each operation posted, replayed or was refused with each
error. A failure is shrunk to a short sequence of steps (shrinking against a real
database can take minutes) and saved in ``.hypothesis/``, so the next run tries it first.
"""

import asyncio
import datetime as dt
import itertools
import os
import time
from collections import Counter
from collections.abc import Awaitable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select, update

from tests.conftest import make_org, new_key
from tests.ledger.support import new_user
from tests.model.reference import (
    MAX_LEG_MINUTES,
    ModelTransaction,
    NewTransaction,
    ReferenceLedger,
    Refusal,
    Replay,
    Request,
)
from timebank import ledger
from timebank.db import Database, create_database
from timebank.ledger import errors
from timebank.ledger.verify import verify_ledger
from timebank.members.service import create_member, set_member_active
from timebank.models import Account, AccountKind, Organisation, Posting, Transaction, TransactionKind
from timebank.orgs.service import update_organisation

EXAMPLES = int(os.environ.get("TIMEBANK_MODEL_EXAMPLES", "50"))
STEPS = int(os.environ.get("TIMEBANK_MODEL_STEPS", "30"))
MAX_MEMBERS = 8
# Categories to post with and to set: three of the defaults, two of them in another case
# (a rename, for the settings; unknown, for a posting while the name differs), and a new one.
CATEGORY_NAMES = ["Gardening", "Befriending", "Cooking", "gardening", "BEFRIENDING", "Juggling"]

accounts = Account.__table__
postings = Posting.__table__
transactions = Transaction.__table__

T = TypeVar("T")


async def change_organisation_directly(db: Database, organisation_id: int, through: dt.date) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            update(Organisation).where(Organisation.id == organisation_id).values(books_closed_through=through)  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class Outsiders:
    """What lives outside the machine's organisations: another organisation, and a staff login."""

    foreign_account_id: int
    foreign_transaction_id: int
    staff_user_id: int


def test_the_ledger_agrees_with_its_model_step_by_step(database_url: str) -> None:
    with _own_loop_and_database(database_url) as (loop, db):
        outsiders = loop.run_until_complete(_outsiders(db))
        outcomes: Counter[str] = Counter()
        run_state_machine_as_test(
            lambda: LedgerMachine(loop, db, outsiders, outcomes),
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
            ),
        )
    # What the run covered, shown with ``-rP`` (or ``-s``).
    print("\n".join(f"{count:6}  {outcome}" for outcome, count in sorted(outcomes.items())))


@contextmanager
def _own_loop_and_database(url: str) -> Iterator[tuple[asyncio.AbstractEventLoop, Database]]:
    loop = asyncio.new_event_loop()
    db = create_database(url)
    try:
        yield loop, db
    finally:
        loop.run_until_complete(db.dispose())
        loop.close()


async def _outsiders(db: Database) -> Outsiders:
    foreign = await make_org(db)
    alice, bob = await foreign.member("Alice"), await foreign.member("Bob")
    posted = await ledger.post_exchange(
        db, foreign.id, giver_account_id=alice, receiver_account_id=bob, minutes=30,
        occurred_on=dt.date(2024, 1, 2), description="Elsewhere", recorded_by=None, idempotency_key=new_key(),
    )  # fmt: skip
    return Outsiders(alice, posted.id, await new_user(foreign))


def _pick(data: st.DataObject, weights: dict[str, int]) -> str:
    """One of the keys, drawn with the given weights (shrinks towards the first)."""
    return data.draw(st.sampled_from([name for name, weight in weights.items() for _ in range(weight)]))


class LedgerMachine(RuleBasedStateMachine):
    def __init__(
        self, loop: asyncio.AbstractEventLoop, db: Database, outsiders: Outsiders, outcomes: Counter[str]
    ) -> None:
        super().__init__()
        self.outcomes = outcomes
        self.loop = loop
        self.db = db
        self.outsiders = outsiders
        self.org_id: int | None = None
        self.model: ReferenceLedger
        self.members: dict[int, int] = {}  # account id -> member id
        self.accepted: list[Request] = []  # requests that posted, to replay or contradict
        self.refused_keys: list[str] = []  # keys of refused requests: still free
        self.touched: list[int] = []  # accounts posted to by the last step

    def run(self, work: Awaitable[T]) -> T:
        return self.loop.run_until_complete(work)

    # ------------------------------------------------------------------ the organisation

    @initialize(
        min_balance=st.sampled_from([-120, 0, -60, -20 * 60]),
        timezone=st.sampled_from(["Europe/London", "Pacific/Kiritimati", "Pacific/Pago_Pago"]),
        members=st.integers(2, 4),
    )
    def open_organisation(self, min_balance: int, timezone: str, members: int) -> None:
        org = self.run(make_org(self.db, min_balance_minutes=min_balance, timezone=timezone))
        self.org_id = org.id
        self.model = ReferenceLedger(min_balance=min_balance, timezone=timezone)
        self.model.open_account(org.agency_account_id, AccountKind.AGENCY)
        self.model.open_account(org.pot_account_id, AccountKind.POT)
        self.agency = org.agency_account_id
        self.pot = org.pot_account_id
        for _ in range(members):
            self.add_member()

    @precondition(lambda self: len(self.members) < MAX_MEMBERS)
    @rule()
    def add_member(self) -> None:
        new = self.run(
            create_member(self.db, self.org_id, display_name=f"Member {len(self.members) + 1}", changed_by=None)
        )
        self.members[new.account.id] = new.member.id
        self.model.open_account(new.account.id, AccountKind.MEMBER, new.member.id)
        note(f"member account {new.account.id}")

    @rule(data=st.data(), active=st.booleans())
    def set_member_active(self, data: st.DataObject, active: bool) -> None:
        account_id = data.draw(st.sampled_from(sorted(self.members)), label="member account")
        self.run(set_member_active(self.db, self.org_id, self.members[account_id], active, changed_by=None))
        self.model.accounts[account_id].active = active

    @rule(minutes=st.sampled_from([-60, -120, 0, -30, -600, -20 * 60, 30]))
    def change_minimum_balance(self, minutes: int) -> None:
        expected = self.model.change_minimum(minutes)
        self._expect_settings_change(
            expected, update_organisation(self.db, self.org_id, min_balance_minutes=minutes, changed_by=None)
        )

    @rule(days_ago=st.sampled_from([30, 10, 3, 1]))
    def close_the_books(self, days_ago: int) -> None:
        """The writers' refusal of closed dates, whatever day the books are closed through.

        Set directly: the service moves it only by closing whole months (tests/reports), and
        this model checks what both writers do with it, on any day.
        """
        today = self._today()
        through = today - dt.timedelta(days=days_ago)
        expected = self.model.close_books(through, today)
        self._expect_settings_change(expected, change_organisation_directly(self.db, self.org_id, through))

    @rule(
        names=st.lists(
            st.sampled_from(CATEGORY_NAMES),
            max_size=4,
        )
    )
    def change_categories(self, names: list[str]) -> None:
        """Categories retired, brought back, renamed (by case) and added."""
        self._expect_settings_change(None, update_organisation(self.db, self.org_id, categories=names, changed_by=None))
        self.model.set_categories(names)

    def _expect_settings_change(self, expected: Refusal | None, change: Awaitable[None]) -> None:
        note(f"settings change: model expects {expected or 'success'}")
        try:
            self.run(change)
        except errors.LedgerError as exc:
            assert expected is not None, f"refused with {type(exc).__name__}: {exc.message}"
            assert type(exc) is expected.error, f"refused with {type(exc).__name__}, model expected {expected}"
        else:
            assert expected is None, f"accepted, model expected {expected}"

    # ------------------------------------------------------------------ postings

    @rule(data=st.data())
    def exchange(self, data: st.DataObject) -> None:
        giver = self._draw_account(data, "giver")
        receiver = self._draw_account(data, "receiver")
        self._submit(
            Request(
                "post_exchange",
                {
                    "giver_account_id": giver,
                    "receiver_account_id": receiver,
                    "minutes": self._draw_amount(data, receiver),
                    "category": self._draw_category(data),
                    **self._draw_common(data),
                },
            )
        )

    @rule(data=st.data())
    def group_activity(self, data: st.DataObject) -> None:
        people = [*self.members, self.agency]
        chosen = data.draw(st.lists(st.sampled_from(people), min_size=2, max_size=5, unique=True), label="accounts")
        split = data.draw(st.integers(1, len(chosen) - 1), label="givers")
        givers_ids, receivers_ids = chosen[:split], chosen[split:]
        odd = _pick(data, {"none": 20, "pot": 1, "twice": 1, "unbalanced": 1, "empty": 1})
        if odd == "pot":
            receivers_ids = [*receivers_ids, self.pot]
        elif odd == "twice":
            receivers_ids = [*receivers_ids, givers_ids[0]]
        receivers = [(a, self._draw_amount(data, a, invalid=False)) for a in receivers_ids]
        total = sum(m for _, m in receivers)
        givers = list(zip(givers_ids, _split(data, total, len(givers_ids)), strict=True))
        if odd == "unbalanced":
            givers[-1] = (givers[-1][0], givers[-1][1] + 1)
        elif odd == "empty":
            givers = []
        self._submit(
            Request(
                "post_group_activity",
                {
                    "givers": givers,
                    "receivers": receivers,
                    "category": self._draw_category(data),
                    **self._draw_common(data),
                },
            )
        )

    @rule(data=st.data())
    def donate_to_pot(self, data: st.DataObject) -> None:
        member = self._draw_account(data, "member", agency=False)
        self._submit(
            Request(
                "donate_to_pot",
                {"member_account_id": member, "minutes": self._draw_amount(data, member), **self._draw_common(data)},
            )
        )

    @rule(data=st.data())
    def grant_from_pot(self, data: st.DataObject) -> None:
        member = self._draw_account(data, "member", agency=False)
        self._submit(
            Request(
                "grant_from_pot",
                {"member_account_id": member, "minutes": self._draw_amount(data, self.pot), **self._draw_common(data)},
            )
        )

    @rule(data=st.data())
    def opening_balance(self, data: st.DataObject) -> None:
        member = self._draw_account(data, "member", agency=False)
        sign = _pick(data, {"credit": 1, "debit": 1})
        minutes = self._draw_amount(data, member)
        if sign == "debit" and isinstance(minutes, int) and not isinstance(minutes, bool):
            minutes = -minutes
        self._submit(
            Request(
                "post_opening_balance",
                {"member_account_id": member, "minutes": minutes, **self._draw_common(data)},
            )
        )

    @rule(data=st.data())
    def reverse(self, data: st.DataObject) -> None:
        known = sorted(self.model.transactions)
        corrected = [
            t.id for t in self.model.transactions.values() if t.reversed_by or t.kind is TransactionKind.REVERSAL
        ]
        which = _pick(data, {"any": 8 if known else 0, "corrected": 3 if corrected else 0, "stranger": 1})
        if which == "any":
            target = data.draw(st.sampled_from(known), label="transaction")
        elif which == "corrected":
            target = data.draw(st.sampled_from(corrected), label="reversed or reversal")
        else:
            target = data.draw(
                st.sampled_from([self.outsiders.foreign_transaction_id, 10**15, 0, -1]), label="stranger"
            )
        common = self._draw_common(data)
        self._submit(
            Request(
                "reverse_transaction",
                {
                    "transaction_id": target,
                    "reason": common["description"],
                    "recorded_by": common["recorded_by"],
                    "idempotency_key": common["idempotency_key"],
                },
            )
        )

    # ------------------------------------------------------------------ the same key again

    @precondition(lambda self: self.accepted)
    @rule(data=st.data(), cosmetic=st.booleans())
    def replay(self, data: st.DataObject, cosmetic: bool) -> None:
        """The same request again: the original answer, even if it could not post now."""
        request = data.draw(st.sampled_from(self.accepted), label="request to replay")
        if cosmetic:  # differences the fingerprint must not see
            request = _cosmetically_different(request)
        self._submit(request)

    @precondition(lambda self: self.accepted)
    @rule(data=st.data())
    def contradict(self, data: st.DataObject) -> None:
        """The key of a posted request with something changed: a conflict (or invalid)."""
        request = data.draw(st.sampled_from(self.accepted), label="request to contradict")
        self._submit(_changed(data, request, self))

    # ------------------------------------------------------------------ reads

    @precondition(lambda self: self.model.transactions)
    @rule(data=st.data())
    def read_a_transaction(self, data: st.DataObject) -> None:
        transaction = self.model.transactions[data.draw(st.sampled_from(sorted(self.model.transactions)))]
        read = self.run(ledger.get_transaction(self.db, self.org_id, transaction.id))
        assert read == self._as_read_now(transaction)

    @rule(data=st.data(), days_ago=st.integers(-1, 45))
    def balance_as_of(self, data: st.DataObject, days_ago: int) -> None:
        account_id = data.draw(st.sampled_from(sorted(self.model.accounts)), label="account")
        on = self._today() - dt.timedelta(days=days_ago)
        read = self.run(ledger.balance_as_of(self.db, self.org_id, account_id, on))
        assert read == self.model.balance_as_of(account_id, on), f"balance of {account_id} as of {on}"

    @rule(data=st.data(), start_days_ago=st.integers(0, 45), length=st.integers(0, 45))
    def statement(self, data: st.DataObject, start_days_ago: int, length: int) -> None:
        account_id = data.draw(st.sampled_from(sorted(self.model.accounts)), label="account")
        start = self._today() - dt.timedelta(days=start_days_ago)
        end = start + dt.timedelta(days=length)
        read = self.run(ledger.statement(self.db, self.org_id, account_id, start, end))
        opening = self.model.balance_as_of(account_id, start - dt.timedelta(days=1))
        lines = self.model.statement_lines(account_id, start, end)
        assert read.opening_balance == opening
        assert [(e.transaction_id, e.occurred_on, e.minutes) for e in read.entries] == lines
        running = [opening + sum(m for _, _, m in lines[: i + 1]) for i in range(len(lines))]
        assert [e.running_balance for e in read.entries] == running
        assert read.closing_balance == opening + sum(m for _, _, m in lines)

    # ------------------------------------------------------------------ after every step

    @invariant()
    def the_ledger_matches_the_model(self) -> None:
        self.run(self._check_ledger())
        # What a caller reads: every account the last step posted to (all of them at the end).
        for account_id in self.touched:
            balance = self.run(ledger.current_balance(self.db, self.org_id, account_id))
            assert balance == self.model.accounts[account_id].balance, f"current_balance of {account_id}"
        self.touched = []

    async def _check_ledger(self) -> None:
        """The organisation as stored, against the model and against its own postings."""
        of_account = postings.c.account_id == accounts.c.id
        async with self.db.engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        accounts.c.id,
                        accounts.c.balance_minutes,
                        accounts.c.version,
                        accounts.c.min_balance_minutes,
                        accounts.c.is_active,
                        select(func.coalesce(func.sum(postings.c.minutes), 0)).where(of_account).scalar_subquery(),
                        select(func.count()).select_from(postings).where(of_account).scalar_subquery(),
                    ).where(accounts.c.organisation_id == self.org_id)
                )
            ).all()
            transaction_count = await conn.scalar(
                select(func.count()).select_from(transactions).where(transactions.c.organisation_id == self.org_id)
            )
        assert {row.id for row in rows} == set(self.model.accounts)
        assert sum(row.balance_minutes for row in rows) == 0, "the organisation does not sum to zero"
        for account_id, balance, version, limit, active, posted_sum, posted_count in rows:
            account = self.model.accounts[account_id]
            expected = (account.balance, account.version, self.model.stored_floor(account), account.active)
            actual = (balance, version, limit, active)
            assert actual == expected, f"account {account_id} ({account.kind}): (balance, version, limit, active)"
            assert (balance, version) == (posted_sum, posted_count), f"account {account_id} disagrees with its postings"
            assert limit is None or balance >= limit, f"account {account_id} is below its limit"
        posting_count = sum(row[-1] for row in rows)
        assert (transaction_count, posting_count) == (len(self.model.transactions), self.model.posting_count)

    def teardown(self) -> None:
        if self.org_id is not None:
            self.touched = sorted(self.model.accounts)
            self.the_ledger_matches_the_model()
            assert self.run(verify_ledger(self.db)) == []

    # ------------------------------------------------------------------ sending a request

    def _submit(self, request: Request) -> None:
        today = self._today()
        expected = self.model.expect(request, today)
        note(f"{request.operation}({request.arguments}) — model expects {expected}")
        self.outcomes[f"{request.operation}: {_outcome_name(expected)}"] += 1
        call = getattr(ledger, request.operation)(self.db, self.org_id, **request.arguments)
        try:
            posted = self.run(call)
        except errors.LedgerError as exc:
            assert isinstance(expected, Refusal), f"refused with {type(exc).__name__}: {exc.message}"
            assert type(exc) is expected.error, f"refused with {type(exc).__name__}: {exc.message}"
            key = request.arguments["idempotency_key"]
            if key not in self.model.keys and key not in self.refused_keys:
                self.refused_keys.append(key)
            return
        assert not isinstance(expected, Refusal), f"posted {posted}"
        if isinstance(expected, Replay):
            assert posted == replace(self._as_read_now(self.model.transactions[expected.transaction_id]), created=False)
            return
        self._check_new(expected, posted)
        self.model.record(expected, posted)
        self.touched = [account_id for account_id, _ in expected.legs]
        self.accepted.append(request)
        if request.arguments["idempotency_key"] in self.refused_keys:
            self.refused_keys.remove(request.arguments["idempotency_key"])

    def _as_read_now(self, transaction: ModelTransaction) -> ledger.PostedTransaction:
        """The transaction as first posted, with what may have changed since: reversal, category name."""
        return replace(
            transaction.posted,
            reversed_by_id=transaction.reversed_by,
            category=self.model.category_name(transaction),
        )

    def _check_new(self, expected: NewTransaction, posted: ledger.PostedTransaction) -> None:
        assert posted.created
        assert posted.id not in self.model.transactions
        assert posted.organisation_id == self.org_id
        assert (posted.kind, posted.occurred_on, posted.reverses_id) == (
            expected.kind,
            expected.occurred_on,
            expected.reverses_id,
        )
        assert (posted.description, posted.category, posted.recorded_by_user_id, posted.idempotency_key) == (
            expected.description,
            expected.category,
            expected.recorded_by,
            expected.idempotency_key,
        )
        assert [(p.account_id, p.minutes) for p in posted.postings] == list(expected.legs)
        for line in posted.postings:
            account = self.model.accounts[line.account_id]
            assert (line.balance_after, line.account_version) == (account.balance + line.minutes, account.version + 1)
        assert posted.reversed_by_id is None

    # ------------------------------------------------------------------ drawing requests

    def _today(self) -> dt.date:
        """Today in the organisation's time zone, never within seconds of its midnight."""
        zone = ZoneInfo(self.model.timezone)
        now = dt.datetime.now(zone)
        midnight = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), zone)
        left = (midnight.astimezone(dt.UTC) - now.astimezone(dt.UTC)).total_seconds()
        if left < 5:  # let the date turn before the step, not during it
            time.sleep(left + 0.5)
            now = dt.datetime.now(zone)
        return now.date()

    def _draw_account(self, data: st.DataObject, label: str, *, agency: bool = True) -> int:
        """A member's account mostly; the agency account if it may take part; rarely an odd one."""
        which = _pick(data, {"member": 20, "agency": 4 if agency else 0, "odd": 1})
        if which == "member":
            return data.draw(st.sampled_from(sorted(self.members)), label=label)
        if which == "agency":
            return self.agency
        odd = [self.pot, self.agency, self.outsiders.foreign_account_id, 10**15]
        return data.draw(st.sampled_from(odd), label=f"{label} (odd)")

    def _draw_amount(self, data: st.DataObject, debited: int, *, invalid: bool = True) -> Any:
        """Minutes to take from ``debited``: small, or at its limit ± 1, or (rarely) not valid."""
        headroom = self.model.headroom(debited)
        limit = (MAX_LEG_MINUTES,) if headroom is None else (headroom - 1, headroom, headroom + 1)
        near = [m for m in limit if m > 0]
        return _draw_weighted(
            data,
            "minutes",
            (12, list(range(1, 181))),
            (8, near),
            (1 if invalid else 0, [0, -15, MAX_LEG_MINUTES + 1, True, 1.5]),
        )

    def _draw_common(self, data: st.DataObject) -> dict[str, Any]:
        description = _draw_weighted(
            data,
            "description",
            (20, ["Help with the shopping", "Gardening", "  Padded  ", "x" * 500]),
            (1, ["   ", "", "x" * 501]),
        )
        return {
            "occurred_on": self._draw_date(data),
            "description": description,
            "recorded_by": data.draw(st.sampled_from([None, self.outsiders.staff_user_id]), label="recorded_by"),
            "idempotency_key": self._draw_key(data),
        }

    def _draw_date(self, data: st.DataObject) -> dt.date:
        today = self._today()
        days_ago = _draw_weighted(data, "days ago", (10, [0]), (6, list(range(1, 41))), (1, [-1, -2, -366]))
        return today - dt.timedelta(days=days_ago)

    def _draw_category(self, data: st.DataObject) -> str | None:
        return _draw_weighted(
            data,
            "category",
            (8, [None]),
            (8, CATEGORY_NAMES),
            (1, [" Cooking ", ""]),  # the same as "Cooking" and None
        )

    def _draw_key(self, data: st.DataObject) -> str:
        return (
            _draw_weighted(
                data,
                "idempotency key",
                (20, [None]),
                (4, self.refused_keys),  # free again: their requests were refused
                (1, sorted(self.model.keys)),
                (1, ["", "ключ", "k" * 129, "k" * 128, " ", "tab\tkey"]),
            )
            or new_key()
        )


def _draw_weighted(data: st.DataObject, label: str, *groups: tuple[int, list[Any]]) -> Any:
    """A value from one of the groups, each group drawn with its weight (empty groups never)."""
    weights = {index: weight for index, (weight, values) in enumerate(groups) if values and weight}
    group = int(_pick(data, {str(index): weight for index, weight in weights.items()}))
    return data.draw(st.sampled_from(groups[group][1]), label=label)


def _outcome_name(outcome: Refusal | Replay | NewTransaction) -> str:
    if isinstance(outcome, Refusal):
        return outcome.error.__name__
    return "replayed" if isinstance(outcome, Replay) else "posted"


def _split(data: st.DataObject, total: int, parts: int) -> list[int]:
    """``total`` as ``parts`` positive amounts (or one amount if it is too small to split)."""
    if parts == 1 or total < parts:
        return [total] + [1] * (parts - 1)
    cuts = sorted(data.draw(st.lists(st.integers(1, total - 1), min_size=parts - 1, max_size=parts - 1, unique=True)))
    bounds = [0, *cuts, total]
    return [b - a for a, b in itertools.pairwise(bounds)]


def _cosmetically_different(request: Request) -> Request:
    """The same request as the fingerprint sees it: padded text, legs in another order."""
    args = request.arguments
    if "reason" in args:
        return request.with_arguments(reason=f" {args['reason']} ")
    changes: dict[str, Any] = {"description": f"  {args['description']}\n"}
    if args.get("category"):
        changes["category"] = f" {args['category'].swapcase()} "
    if request.operation == "post_group_activity":
        changes["givers"] = list(reversed(args["givers"]))
        changes["receivers"] = list(reversed(args["receivers"]))
    return request.with_arguments(**changes)


def _changed(data: st.DataObject, request: Request, machine: LedgerMachine) -> Request:
    """The request with one thing changed that the fingerprint must see."""
    args = request.arguments
    if request.operation == "reverse_transaction":
        which = _pick(data, {"reason": 1, "recorded_by": 1, "target": 1, "kind": 1})
        if which == "reason":
            return request.with_arguments(reason=args["reason"] + " (again)")
        if which == "recorded_by":
            return request.with_arguments(recorded_by=_other_recorder(args["recorded_by"], machine))
        if which == "target":
            return request.with_arguments(transaction_id=args["transaction_id"] + 1)
        member = sorted(machine.members)[0]
        return Request(
            "post_opening_balance",
            {
                "member_account_id": member,
                "minutes": 30,
                "occurred_on": machine._today(),
                "description": args["reason"],
                "recorded_by": args["recorded_by"],
                "idempotency_key": args["idempotency_key"],
            },
        )
    which = _pick(data, {"minutes": 1, "date": 1, "description": 1, "recorded_by": 1, "category": 1, "kind": 1})
    if which == "date":
        return request.with_arguments(occurred_on=args["occurred_on"] - dt.timedelta(days=1))
    if which == "description":
        return request.with_arguments(description=args["description"] + "!")
    if which == "recorded_by":
        return request.with_arguments(recorded_by=_other_recorder(args["recorded_by"], machine))
    if which == "category" and "category" in args:
        return request.with_arguments(category=None if args["category"] else "Other")
    if which == "kind" and request.operation == "post_exchange":
        return Request(
            "post_group_activity",
            {
                "givers": [(args["giver_account_id"], args["minutes"])],
                "receivers": [(args["receiver_account_id"], args["minutes"])],
                **{k: v for k, v in args.items() if k not in ("giver_account_id", "receiver_account_id", "minutes")},
            },
        )
    if request.operation == "post_group_activity":
        (account, minutes), *rest = args["givers"]
        receivers = [*args["receivers"][:-1], (args["receivers"][-1][0], args["receivers"][-1][1] + 1)]
        return request.with_arguments(givers=[(account, minutes + 1), *rest], receivers=receivers)
    return request.with_arguments(minutes=args["minutes"] + (1 if args["minutes"] > 0 else -1))


def _other_recorder(recorded_by: int | None, machine: LedgerMachine) -> int | None:
    return machine.outsiders.staff_user_id if recorded_by is None else None
