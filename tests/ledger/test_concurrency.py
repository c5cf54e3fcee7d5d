"""Under concurrency: no lost update, no balance below its limit, each key posted once,
each transaction reversed once. Every reply is checked against an independent model
rebuilt from the replies themselves (as TigerBeetle's auditor does)."""

import asyncio
import random
from collections import defaultdict

from tests.conftest import new_key, today
from tests.ledger.support import exchange, ledger_state, opening_balance, org_total
from timebank import ledger
from timebank.ledger import PostedTransaction, errors
from timebank.ledger.verify import verify_ledger

REQUESTS = 200


def sorted_outcomes(results, *expected_errors):
    """Split results into postings and expected refusals; anything else fails the test."""
    posted = [r for r in results if isinstance(r, PostedTransaction)]
    refusals = [r for r in results if isinstance(r, expected_errors)]
    unexpected = [r for r in results if r not in posted and r not in refusals]
    assert not unexpected, f"unexpected outcomes: {unexpected[:3]!r}"
    return posted, refusals


def assert_chains_follow(posted, start, floor):
    """Rebuild each account from the replies alone: versions must run on without gaps or
    repeats, and each posting's balance must follow from the one before it.

    ``start`` maps account id to its (balance, version) before the concurrent writes.
    Returns the balance each account must have now.
    """
    chains = defaultdict(list)
    for transaction in posted:
        for line in transaction.postings:
            chains[line.account_id].append(line)
    expected = {}
    for account_id, (balance, version) in start.items():
        lines = sorted(chains[account_id], key=lambda line: line.account_version)
        assert [line.account_version for line in lines] == list(range(version + 1, version + 1 + len(lines)))
        for line in lines:
            balance += line.minutes
            assert line.balance_after == balance, f"account {account_id}: a posting was computed from a stale balance"
            if floor is not None:
                assert balance >= floor
        expected[account_id] = balance
    return expected


class TestConcurrentPosting:
    async def test_no_update_is_lost_and_nobody_goes_below_the_minimum(self, org, db):
        neighbours = [await org.member(f"Neighbour {i}") for i in range(4)]
        start = dict(zip(neighbours, (-100, -90, 100, 90), strict=True))
        for account_id, minutes in start.items():
            await opening_balance(org, account_id, minutes)
        rng = random.Random(20261127)
        requests = []
        for _ in range(REQUESTS):
            giver, receiver = rng.sample(neighbours, 2)
            requests.append((giver, receiver, rng.randint(5, 40)))

        results = await asyncio.gather(
            *(exchange(org, giver, receiver, minutes) for giver, receiver, minutes in requests),
            return_exceptions=True,
        )

        posted, refusals = sorted_outcomes(results, errors.InsufficientBalance)
        assert posted and refusals, "the test must exercise both outcomes to mean anything"
        expected = assert_chains_follow(posted, {a: (m, 1) for a, m in start.items()}, floor=org.min_balance_minutes)
        for account_id in neighbours:
            assert await ledger.current_balance(db, org.id, account_id) == expected[account_id]
        assert (await ledger_state(db, org.id)).transactions == len(neighbours) + len(posted)
        assert await org_total(db, org.id) == 0
        assert await verify_ledger(db) == []

    async def test_the_pot_never_goes_below_zero_under_concurrent_grants(self, org, db):
        members = [await org.member(f"Member {i}") for i in range(3)]
        for account_id in members:
            await opening_balance(org, account_id, 600)
        rng = random.Random(7)
        # 50 donations of 5-15 minutes and 50 grants of 20-40: the grants ask for more
        # than is ever donated, so some must be refused, whatever order they run in.
        requests = [(ledger.donate_to_pot, rng.choice(members), rng.randint(5, 15)) for _ in range(50)]
        requests += [(ledger.grant_from_pot, rng.choice(members), rng.randint(20, 40)) for _ in range(50)]
        rng.shuffle(requests)

        results = await asyncio.gather(
            *(
                operation(
                    db,
                    org.id,
                    member_account_id=member,
                    minutes=minutes,
                    occurred_on=today(),
                    description="Pot",
                    recorded_by=None,
                    idempotency_key=new_key(),
                )
                for operation, member, minutes in requests
            ),
            return_exceptions=True,
        )

        posted, refusals = sorted_outcomes(results, errors.InsufficientBalance)
        assert posted and refusals
        assert all(r.extra["account_id"] == org.pot_account_id for r in refusals)
        expected = assert_chains_follow(posted, {org.pot_account_id: (0, 0)}, floor=0)
        assert await ledger.current_balance(db, org.id, org.pot_account_id) == expected[org.pot_account_id]
        assert await verify_ledger(db) == []

    async def test_one_key_sent_twenty_times_at_once_posts_once(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        key = new_key()

        results = await asyncio.gather(*(exchange(org, alice, bob, 30, idempotency_key=key) for _ in range(20)))

        assert len({r.id for r in results}) == 1
        assert sum(r.created for r in results) == 1
        assert (await ledger_state(db, org.id)).transactions == 1
        assert await ledger.current_balance(db, org.id, bob) == -30

    async def test_concurrent_reversals_of_one_transaction_reverse_it_once(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        original = await exchange(org, alice, bob, 30)

        results = await asyncio.gather(
            *(
                ledger.reverse_transaction(
                    db, org.id, original.id, reason="Mistake", recorded_by=None, idempotency_key=new_key()
                )
                for _ in range(10)
            ),
            return_exceptions=True,
        )

        posted, refusals = sorted_outcomes(results, errors.AlreadyReversed)
        assert len(posted) == 1 and len(refusals) == 9
        assert {r.extra["reversal_id"] for r in refusals} == {posted[0].id}
        assert [await ledger.current_balance(db, org.id, a) for a in (alice, bob)] == [0, 0]
        assert (await ledger_state(db, org.id)).transactions == 2
        assert await verify_ledger(db) == []

    async def test_one_reversal_key_sent_ten_times_at_once_reverses_once(self, org, db):
        alice, bob = await org.member("Alice"), await org.member("Bob")
        original = await exchange(org, alice, bob, 30)
        key = new_key()

        results = await asyncio.gather(
            *(
                ledger.reverse_transaction(
                    db, org.id, original.id, reason="Mistake", recorded_by=None, idempotency_key=key
                )
                for _ in range(10)
            )
        )

        assert len({r.id for r in results}) == 1
        assert sum(r.created for r in results) == 1
        assert [await ledger.current_balance(db, org.id, a) for a in (alice, bob)] == [0, 0]
