"""What a member may see of a transaction that touches their account.

A member never sees another member's balance, and in a mental-health day service who
attended what is sensitive: in a group activity a member sees their own leg and who
ran it (the giving side), never the other attendees. Staff and coordinators see
everything of their organisation; this rule is for members' views only, and every
view a member gets (an exchange, a list, a statement, a replayed write) goes through it.
"""

from collections.abc import Iterable

from timebank.models import TransactionKind


def legs_a_member_sees(
    kind: TransactionKind,
    reverses_kind: TransactionKind | None,
    legs: Iterable[tuple[int, int]],
    own_account_id: int,
) -> set[int]:
    """The account ids, of ``legs`` (account id, signed minutes), that the owner of
    ``own_account_id`` may see named. Balances of other accounts are never shown at all.

    Every leg of a two-sided entry (an exchange, a pot transfer, an opening balance) is
    the member's counterpart. In a group activity only the giving side is shown; in the
    reversal of one, the signs are mirrored, so the original givers are the debited legs.
    """
    activity = reverses_kind if kind is TransactionKind.REVERSAL else kind
    if activity is not TransactionKind.GROUP:
        return {account_id for account_id, _ in legs}
    giving = 1 if kind is TransactionKind.GROUP else -1
    return {own_account_id} | {account_id for account_id, minutes in legs if minutes * giving > 0}
