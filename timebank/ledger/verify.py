"""Check every invariant of the ledger contract over the whole database.

Independent of the write path on purpose: it recomputes everything from the
postings, so a bug in posting (or a hand edit of the database) shows up here.
"""

from dataclasses import dataclass

from sqlalchemy import text

from timebank.db import Database


@dataclass(frozen=True)
class Problem:
    invariant: str
    detail: str

    def __str__(self) -> str:
        return f"{self.invariant}: {self.detail}"


# Each check is a query that returns one row per violation, and how to describe it.
_CHECKS: list[tuple[str, str, str]] = [
    (
        "postings sum to zero",
        """
        SELECT t.id, coalesce(sum(p.minutes), 0), count(p.id)
          FROM transactions t LEFT JOIN postings p ON p.transaction_id = t.id
         GROUP BY t.id
        HAVING coalesce(sum(p.minutes), 0) <> 0 OR count(p.id) < 2
        """,
        "transaction {0} has {2} postings summing to {1} minutes",
    ),
    (
        "amounts are not zero",
        "SELECT id, transaction_id FROM postings WHERE minutes = 0",
        "posting {0} of transaction {1} moves zero minutes",
    ),
    (
        "one organisation per transaction",
        """
        SELECT p.id, p.transaction_id FROM postings p
          JOIN transactions t ON t.id = p.transaction_id
          JOIN accounts a ON a.id = p.account_id
         WHERE p.organisation_id <> t.organisation_id OR a.organisation_id <> t.organisation_id
        """,
        "posting {0} of transaction {1} crosses organisations",
    ),
    (
        "stored balance equals the sum of postings",
        """
        SELECT a.id, a.balance_minutes, coalesce(sum(p.minutes), 0)
          FROM accounts a LEFT JOIN postings p ON p.account_id = a.id
         GROUP BY a.id, a.balance_minutes
        HAVING a.balance_minutes <> coalesce(sum(p.minutes), 0)
        """,
        "account {0} stores a balance of {1} minutes but its postings sum to {2}",
    ),
    (
        "account version counts its postings",
        """
        SELECT a.id, a.version, count(p.id), coalesce(max(p.account_version), 0)
          FROM accounts a LEFT JOIN postings p ON p.account_id = a.id
         GROUP BY a.id, a.version
        HAVING a.version <> count(p.id) OR a.version <> coalesce(max(p.account_version), 0)
        """,
        "account {0} is at version {1} but has {2} postings (highest version {3})",
    ),
    (
        "each posting's balance_after follows from the ones before it",
        """
        SELECT id, account_id, balance_after, running FROM (
            SELECT id, account_id, balance_after,
                   sum(minutes) OVER (PARTITION BY account_id ORDER BY account_version) AS running
              FROM postings
        ) chain WHERE balance_after <> running
        """,
        "posting {0} on account {1} records a balance of {2} minutes, but the postings up to it sum to {3}",
    ),
    (
        "organisations sum to zero",
        """
        SELECT organisation_id, sum(balance_minutes) FROM accounts
         GROUP BY organisation_id HAVING sum(balance_minutes) <> 0
        """,
        "the accounts of organisation {0} sum to {1} minutes",
    ),
    (
        "no balance below its limit",
        """
        SELECT a.id, a.balance_minutes, o.min_balance_minutes FROM accounts a
          JOIN organisations o ON o.id = a.organisation_id
         WHERE (a.min_balance_minutes IS NOT NULL AND a.balance_minutes < a.min_balance_minutes)
            OR (a.kind = 'pot' AND a.balance_minutes < 0)
        """,
        "account {0} has a balance of {1} minutes, below its limit",
    ),
    (
        "a reversal posts back exactly the original",
        """
        SELECT r.id, r.reverses_id FROM transactions r
         WHERE r.reverses_id IS NOT NULL AND EXISTS (
            SELECT p.account_id, p.minutes FROM postings p WHERE p.transaction_id = r.id
            EXCEPT
            SELECT o.account_id, -o.minutes FROM postings o WHERE o.transaction_id = r.reverses_id
         ) OR r.reverses_id IS NOT NULL AND EXISTS (
            SELECT o.account_id, -o.minutes FROM postings o WHERE o.transaction_id = r.reverses_id
            EXCEPT
            SELECT p.account_id, p.minutes FROM postings p WHERE p.transaction_id = r.id
         )
        """,
        "reversal {0} does not mirror transaction {1}",
    ),
    (
        "a transaction is reversed at most once, and never a reversal",
        """
        SELECT r.reverses_id, count(*) FROM transactions r
          JOIN transactions o ON o.id = r.reverses_id
         GROUP BY r.reverses_id, o.kind HAVING count(*) > 1 OR o.kind = 'reversal'
        """,
        "transaction {0} is reversed {1} times, or is itself a reversal",
    ),
    (
        # The balances every later report starts from (timebank/reports): nothing may have
        # been dated in a closed month since. Checked for each organisation's newest close.
        "the balances stored at the last close still hold",
        """
        SELECT b.account_id, c.closed_through, b.balance_minutes, coalesce(sum(p.minutes), 0)
          FROM period_closes c
          JOIN closed_balances b ON b.period_close_id = c.id
          LEFT JOIN postings p ON p.account_id = b.account_id AND p.occurred_on <= c.closed_through
         WHERE c.closed_through = (
            SELECT max(l.closed_through) FROM period_closes l WHERE l.organisation_id = c.organisation_id
         )
         GROUP BY b.account_id, c.closed_through, b.balance_minutes
        HAVING b.balance_minutes <> coalesce(sum(p.minutes), 0)
        """,
        "account {0} was closed on {1} with {2} minutes, but its postings up to that day now sum to {3}",
    ),
]


async def verify_ledger(db: Database) -> list[Problem]:
    """Every violation of the ledger's invariants in the database; empty when all hold."""
    problems: list[Problem] = []
    async with db.engine.connect() as conn:
        for invariant, query, template in _CHECKS:
            for row in await conn.execute(text(query)):
                problems.append(Problem(invariant, template.format(*row)))
    return problems
