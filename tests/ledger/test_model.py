"""Every reply checked against an independent model of the ledger (an auditor, as in
TigerBeetle's simulator): a seeded random run of every kind of transaction, in which
the model predicts each posting line, or the refusal, before the ledger answers."""

import random
from collections import defaultdict

from tests.conftest import new_key, today
from tests.ledger.support import days_ago, org_total
from timebank import ledger
from timebank.ledger import PostingLine, errors

OPERATIONS = 250


class Auditor:
    """What the ledger must answer, worked out from the contract alone."""

    def __init__(self, org, members):
        self.floors = {m: org.min_balance_minutes for m in members}
        self.floors |= {org.agency_account_id: None, org.pot_account_id: 0}
        self.balances = defaultdict(int)
        self.versions = defaultdict(int)
        self.legs = {}  # transaction id -> its legs, for reversals
        self.reversals = {}  # reversal id -> original id
        self.reversed = set()

    def expect(self, legs):
        """The posting lines for ``legs``, or the refusal the limits call for."""
        lines = []
        for account, minutes in legs:
            after = self.balances[account] + minutes
            floor = self.floors[account]
            if minutes < 0 and floor is not None and after < floor:
                return errors.InsufficientBalance
            lines.append(PostingLine(account, minutes, after, self.versions[account] + 1))
        return tuple(lines)

    def expect_reversal(self, transaction_id):
        if transaction_id in self.reversals:
            return errors.CannotReverse, ()
        if transaction_id in self.reversed:
            return errors.AlreadyReversed, ()
        legs = tuple((account, -minutes) for account, minutes in self.legs[transaction_id])
        return self.expect(legs), legs

    def record(self, posted, reverses=None):
        for line in posted.postings:
            self.balances[line.account_id] = line.balance_after
            self.versions[line.account_id] = line.account_version
        self.legs[posted.id] = tuple((line.account_id, line.minutes) for line in posted.postings)
        if reverses is not None:
            self.reversals[posted.id] = reverses
            self.reversed.add(reverses)


class TestAgainstAnIndependentModel:
    async def test_every_reply_is_the_one_the_model_predicts(self, org, db):
        members = [await org.member(f"Member {i}") for i in range(5)]
        auditor = Auditor(org, members)
        rng = random.Random(1127)
        common = {"recorded_by": None}
        outcomes = defaultdict(int)

        for _ in range(OPERATIONS):
            choice = rng.choices(["exchange", "group", "donate", "grant", "opening", "reverse"], [5, 2, 2, 2, 1, 2])[0]
            minutes = rng.randint(1, 90)
            reverses = None
            if choice == "exchange":
                giver, receiver = rng.sample([*members, org.agency_account_id], 2)
                legs = ((giver, minutes), (receiver, -minutes))
                call = ledger.post_exchange(
                    db,
                    org.id,
                    giver_account_id=giver,
                    receiver_account_id=receiver,
                    minutes=minutes,
                    occurred_on=days_ago(rng.randint(0, 30)),
                    description="Help",
                    idempotency_key=new_key(),
                    **common,
                )
            elif choice == "group":
                giver, *receivers = rng.sample(members, rng.randint(3, 5))
                shares = [rng.randint(1, 40) for _ in receivers]
                legs = ((giver, sum(shares)), *((r, -m) for r, m in zip(receivers, shares, strict=True)))
                call = ledger.post_group_activity(
                    db,
                    org.id,
                    givers=[(giver, sum(shares))],
                    receivers=list(zip(receivers, shares, strict=True)),
                    occurred_on=today(),
                    description="Session",
                    idempotency_key=new_key(),
                    **common,
                )
            elif choice in ("donate", "grant"):
                member = rng.choice(members)
                sign = 1 if choice == "donate" else -1
                legs = ((member, -sign * minutes), (org.pot_account_id, sign * minutes))
                if choice == "grant":
                    legs = legs[::-1]
                operation = ledger.donate_to_pot if choice == "donate" else ledger.grant_from_pot
                call = operation(
                    db,
                    org.id,
                    member_account_id=member,
                    minutes=minutes,
                    occurred_on=today(),
                    description="Pot",
                    idempotency_key=new_key(),
                    **common,
                )
            elif choice == "opening":
                member, signed = rng.choice(members), rng.choice([minutes, -minutes])
                legs = ((member, signed), (org.agency_account_id, -signed))
                call = ledger.post_opening_balance(
                    db,
                    org.id,
                    member_account_id=member,
                    minutes=signed,
                    occurred_on=today(),
                    idempotency_key=new_key(),
                    **common,
                )
            else:
                if not auditor.legs:
                    continue
                reverses = rng.choice(sorted(auditor.legs))
                refusal, legs = auditor.expect_reversal(reverses)
                call = ledger.reverse_transaction(
                    db, org.id, reverses, reason="Correction", idempotency_key=new_key(), **common
                )
                if refusal in (errors.CannotReverse, errors.AlreadyReversed):
                    try:
                        await call
                    except refusal:
                        outcomes[refusal.__name__] += 1
                        continue
                    raise AssertionError(f"reversing {reverses} should have been refused with {refusal.__name__}")

            expected = auditor.expect(legs)
            if expected is errors.InsufficientBalance:
                try:
                    await call
                except errors.InsufficientBalance:
                    outcomes["InsufficientBalance"] += 1
                    continue
                raise AssertionError(f"{choice} {legs} should have been refused")
            posted = await call
            assert posted.postings == expected, f"{choice} {legs}"
            auditor.record(posted, reverses)
            outcomes[choice] += 1

        # The run means something only if it reached every kind of reply.
        assert set(outcomes) >= {
            "exchange",
            "group",
            "donate",
            "grant",
            "opening",
            "reverse",
            "InsufficientBalance",
            "AlreadyReversed",
            "CannotReverse",
        }, dict(outcomes)
        for account in auditor.floors:
            assert await ledger.current_balance(db, org.id, account) == auditor.balances[account]
        assert await org_total(db, org.id) == 0
