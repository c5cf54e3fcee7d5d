"""The audit: what the service acknowledged, against what the database holds.

For one organisation, with every write a load sent:

- every acknowledged write is in the ledger exactly once, under the id it was
  acknowledged with, with the postings it asked for (else *lost*, *wrong id*,
  *wrong postings*);
- nothing else is: every transaction in the ledger carries the key of a write
  that was sent and not refused (else *unexpected*); writes never answered may
  or may not have landed, and are only counted;
- every balance is the sum of the writes in the ledger, as the client computes
  it from its own requests (else *balance mismatch*);
- the balances the acknowledged answers report (``balance_after``) could come
  from one serial order of those postings (else *not serialisable*) — checked
  when every write in the ledger was acknowledged;
- ``timebank verify`` passes.
"""

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import text

from scripts.drills.live_server import VerifyResult
from scripts.drills.load import Write
from timebank.db import create_database


@dataclass
class LedgerAudit:
    sent: int = 0
    acknowledged: int = 0
    refused: int = 0
    unanswered: int = 0
    unanswered_in_ledger: int = 0
    # Acknowledged as a replay on a retry: an earlier attempt had landed without an answer
    # (the connection died with the commit in flight); the key kept it from posting twice.
    landed_unanswered: list[str] = field(default_factory=list)
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    wrong_id: list[str] = field(default_factory=list)
    wrong_postings: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    balance_mismatches: list[str] = field(default_factory=list)
    not_serialisable: list[str] = field(default_factory=list)
    verify_problems: list[str] = field(default_factory=list)
    keys_in_ledger: set[str] = field(default_factory=set)

    @property
    def problems(self) -> list[str]:
        """Every violation, one line each."""
        return [
            *(f"lost: acknowledged write {k} is not in the ledger" for k in self.lost),
            *(f"duplicated: key {k} is in the ledger more than once" for k in self.duplicated),
            *(f"wrong id: {line}" for line in self.wrong_id),
            *(f"wrong postings: {line}" for line in self.wrong_postings),
            *(f"unexpected: {line}" for line in self.unexpected),
            *(f"balance mismatch: {line}" for line in self.balance_mismatches),
            *(f"not serialisable: {line}" for line in self.not_serialisable),
            *(f"timebank verify: {line}" for line in self.verify_problems),
        ]

    def figures(self) -> list[tuple[str, object]]:
        return [
            ("writes sent", self.sent),
            ("acknowledged writes", self.acknowledged),
            ("refused writes (4xx)", self.refused),
            ("unanswered writes (gave up)", self.unanswered),
            ("  of which in the ledger", self.unanswered_in_ledger),
            ("retries answered with the original (landed unanswered)", len(self.landed_unanswered)),
            ("lost acknowledged writes", len(self.lost)),
            ("duplicated writes", len(self.duplicated) + len(self.wrong_id)),
            ("unexpected transactions", len(self.unexpected)),
            ("wrong postings", len(self.wrong_postings)),
            ("balance mismatches", len(self.balance_mismatches)),
            ("answers not serialisable", len(self.not_serialisable)),
            ("invariant violations (timebank verify)", len(self.verify_problems)),
        ]


async def audit_ledger(database_url: str, slug: str, writes: Iterable[Write], verified: VerifyResult) -> LedgerAudit:
    """Compare ``writes`` (everything sent to organisation ``slug``) with the database."""
    sent = {w.key: w for w in writes if w.attempts > 0}
    in_ledger, balances = await _read_ledger(database_url, slug)
    audit = LedgerAudit(sent=len(sent), verify_problems=list(verified.problems))
    audit.keys_in_ledger = set(in_ledger)
    expected: Counter[int] = Counter()

    for key, found in in_ledger.items():
        if len(found) > 1:
            audit.duplicated.append(key)
        write = sent.get(key)
        if write is None:
            audit.unexpected.append(f"transaction {found[0][0]} has key {key!r}, which no client sent")
            continue
        if write.refused:
            audit.unexpected.append(f"transaction {found[0][0]} has key {key!r}, refused with {write.status}")
        transaction_id, legs = found[0]
        if legs != write.legs:
            audit.wrong_postings.append(f"{key}: asked for {write.legs}, the ledger holds {legs}")
        expected.update(write.legs)
        if write.acknowledged and write.transaction_id != transaction_id:
            audit.wrong_id.append(f"{key} was acknowledged as {write.transaction_id}, the ledger has {transaction_id}")
        if write.unanswered:
            audit.unanswered_in_ledger += 1

    for write in sent.values():
        audit.acknowledged += write.acknowledged
        audit.refused += write.refused
        audit.unanswered += write.unanswered
        if write.acknowledged and write.replayed:
            audit.landed_unanswered.append(f"{write.key}: {_runs(write.history)}")
        if write.acknowledged and write.key not in in_ledger:
            audit.lost.append(write.key)
        if write.acknowledged and write.answered_legs != write.legs:
            audit.wrong_postings.append(f"{write.key}: asked for {write.legs}, acknowledged {write.answered_legs}")

    for account_id, (balance, _floor) in sorted(balances.items()):
        if balance != expected.get(account_id, 0):
            audit.balance_mismatches.append(
                f"account {account_id} holds {balance} minutes; the writes in the ledger make {expected[account_id]}"
            )
    if audit.unanswered_in_ledger == 0:
        audit.not_serialisable = _unserialisable_accounts(
            [w for w in sent.values() if w.acknowledged], {a: b for a, (b, _) in balances.items()}
        )
    return audit


def _runs(history: list[int | str]) -> str:
    """``['no connection', 'no connection', 200]`` as ``no connection x2, 200``."""
    runs: list[list] = []
    for answer in history:
        if runs and runs[-1][0] == answer:
            runs[-1][1] += 1
        else:
            runs.append([answer, 1])
    return ", ".join(f"{answer} x{n}" if n > 1 else str(answer) for answer, n in runs)


async def _read_ledger(
    database_url: str, slug: str
) -> tuple[dict[str, list[tuple[int, dict[int, int]]]], dict[int, tuple[int, int | None]]]:
    """The organisation's transactions by key (id and postings), and its accounts' balances and floors."""
    db = create_database(database_url)
    try:
        async with db.engine.connect() as conn:
            organisation_id = (
                await conn.execute(text("SELECT id FROM organisations WHERE slug = :slug"), {"slug": slug})
            ).scalar_one()
            rows = await conn.execute(
                text(
                    "SELECT t.id, t.idempotency_key, p.account_id, p.minutes FROM transactions t"
                    " JOIN postings p ON p.transaction_id = t.id WHERE t.organisation_id = :org ORDER BY t.id"
                ),
                {"org": organisation_id},
            )
            legs: dict[tuple[int, str], dict[int, int]] = defaultdict(dict)
            for transaction_id, key, account_id, minutes in rows:
                legs[(transaction_id, key)][account_id] = minutes
            accounts = await conn.execute(
                text("SELECT id, balance_minutes, min_balance_minutes FROM accounts WHERE organisation_id = :org"),
                {"org": organisation_id},
            )
            balances = {row[0]: (row[1], row[2]) for row in accounts}
    finally:
        await db.dispose()
    by_key: dict[str, list[tuple[int, dict[int, int]]]] = defaultdict(list)
    for (transaction_id, key), postings in legs.items():
        by_key[key].append((transaction_id, postings))
    return by_key, balances


def _unserialisable_accounts(acknowledged: list[Write], balances: dict[int, int]) -> list[str]:
    """Accounts whose acknowledged ``balance_after`` values no serial order of their postings gives."""
    steps: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for write in acknowledged:
        for account_id, after in write.balances_after.items():
            steps[account_id].append((after - write.answered_legs[account_id], after))
    return [
        f"account {account_id}: {len(path)} acknowledged postings"
        for account_id, path in sorted(steps.items())
        if not fits_one_serial_order(path, balances.get(account_id, 0))
    ]


def fits_one_serial_order(steps: list[tuple[int, int]], final_balance: int) -> bool:
    """Whether postings, each a step (balance before, balance after), can follow one another from 0.

    They can exactly when the steps form one path from 0 to the final balance (an
    Euler path): every balance is entered as often as it is left, except 0 (left
    once more) and the final balance (entered once more), and all the steps are
    connected. Two postings computed from the same starting balance (a lost
    update) break it.
    """
    net: Counter[int] = Counter()
    parent: dict[int, int] = {0: 0}

    def root(node: int) -> int:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for before, after in steps:
        net[before] += 1
        net[after] -= 1
        parent[root(before)] = root(after)
    wanted: Counter[int] = Counter({0: 1})
    wanted[final_balance] -= 1
    if any(net[node] != wanted[node] for node in set(net) | set(wanted)):
        return False
    return len({root(node) for node in list(parent)}) == 1
