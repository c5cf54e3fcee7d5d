"""Concurrency through HTTP, against a real server process on PostgreSQL.

Many clients at once, each on its own connection, as in production. After each
test the ledger is audited (scripts/drills/audit.py): every acknowledged write
is in the ledger once, nothing else is, every balance is what the acknowledged
answers make, the answers' running balances fit one serial order, and
``timebank verify`` passes.
"""

import asyncio
import dataclasses
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from scripts.drills.audit import LedgerAudit, audit_ledger
from scripts.drills.live_server import SeededOrg, ServerProcess, seed_organisation
from scripts.drills.load import ExchangeLoad, HttpTally, RetryPolicy, Write, client, exchange, reversal, send

pytestmark = pytest.mark.live_server

# A careful client's: an answer that is neither 2xx nor 4xx (a 503 when the connection
# pool is busy for long on a loaded machine) is retried with the same key.
POLICY = RetryPolicy(request_timeout=30.0)


async def seeded(server: ServerProcess, *, members: int, min_balance_hours: str) -> SeededOrg:
    return await asyncio.to_thread(seed_organisation, server, members=members, min_balance_hours=min_balance_hours)


async def audited(server: ServerProcess, org: SeededOrg, writes: list[Write]) -> LedgerAudit:
    verified = await asyncio.to_thread(server.verify)
    return await audit_ledger(server.database_url, org.slug, writes, verified)


def server_errors_logged(server: ServerProcess) -> str:
    """The lines of the server's log about errors (tracebacks included), for a failure's message."""
    lines = server.log_file.read_text(errors="replace").splitlines()
    return "\n".join(line for line in lines if '"status":5' in line or "error" in line.lower())[-6000:]


async def balance(http: httpx.AsyncClient, org: SeededOrg, account_id: int) -> int:
    response = await http.get(org.url(f"/accounts/{account_id}"), headers=org.headers)
    assert response.status_code == 200, response.text
    return int(response.json()["balance"]["minutes"])


async def send_at_once(clients: list[httpx.AsyncClient], writes: list[Write], org: SeededOrg) -> None:
    """Each write from its own client, all at the same moment."""
    tally = HttpTally()
    await asyncio.gather(*(send(http, w, org.headers, POLICY, tally) for http, w in zip(clients, writes, strict=True)))
    assert tally.server_errors == 0 and tally.timeouts == 0, tally


@pytest.fixture
async def clients(live_server: ServerProcess) -> AsyncIterator[list[httpx.AsyncClient]]:
    """Twenty-four clients, each with a connection of its own."""
    opened = [client(live_server.base_url, POLICY) for _ in range(24)]
    yield opened
    for http in opened:
        await http.aclose()


class TestOppositeExchangesNearTheMinimumBalance:
    async def test_every_balance_is_what_the_acknowledged_exchanges_make(self, live_server: ServerProcess) -> None:
        # Three accounts, a floor of one hour below zero, up to 40 minutes at a time:
        # a good share of exchanges would cross the floor, and must be refused whole.
        org = await seeded(live_server, members=3, min_balance_hours="-1")
        load = ExchangeLoad(
            live_server.base_url, org, exchanges=400, clients=32, rng=random.Random(20), minutes=(20, 40), policy=POLICY
        )
        await load.run()

        audit = await audited(live_server, org, load.writes)
        assert audit.problems == []
        assert set(load.tally.by_status) <= {201, 409, 503}, load.tally.by_status
        assert load.tally.timeouts == 0
        refused = [w for w in load.writes if w.refused]
        assert refused, "the load never reached the minimum balance: it tests nothing"
        assert all(w.is_insufficient_balance for w in refused)
        assert audit.acknowledged + len(refused) == len(load.writes)
        async with httpx.AsyncClient(base_url=live_server.base_url) as http:
            for account_id in org.account_ids:
                made = sum(w.legs.get(account_id, 0) for w in load.writes if w.acknowledged)
                assert await balance(http, org, account_id) == made >= org.min_balance_minutes


class TestOneKeyFromManyClients:
    async def test_exactly_one_is_posted_and_every_other_answer_replays_it(
        self, live_server: ServerProcess, clients: list[httpx.AsyncClient]
    ) -> None:
        org = await seeded(live_server, members=2, min_balance_hours="-20")
        giver, receiver = org.account_ids
        firsts = []
        for _ in range(8):
            template = exchange(org, giver, receiver, 30)
            writes = [dataclasses.replace(template) for _ in clients]
            await send_at_once(clients, writes, org)

            assert Counter(w.status for w in writes) == {201: 1, 200: len(clients) - 1}
            assert len({w.transaction_id for w in writes}) == 1
            assert all(w.replayed for w in writes if w.status == 200)
            firsts += [w for w in writes if w.status == 201]

        audit = await audited(live_server, org, firsts)
        assert audit.problems == []
        assert audit.acknowledged == len(firsts) == 8

    async def test_a_different_request_under_a_taken_key_is_refused(
        self, live_server: ServerProcess, clients: list[httpx.AsyncClient]
    ) -> None:
        org = await seeded(live_server, members=2, min_balance_hours="-20")
        giver, receiver = org.account_ids
        winners = []
        for _ in range(8):
            key = f"contested-{uuid.uuid4().hex}"
            writes = [exchange(org, giver, receiver, 30 if n % 2 else 45, key=key) for n in range(len(clients))]
            await send_at_once(clients, writes, org)

            (winner,) = [w for w in writes if w.status == 201]
            for write in writes:
                if write.body == winner.body:
                    assert write.status in (200, 201) and write.transaction_id == winner.transaction_id
                else:
                    assert write.status == 409, write.refusal
                    assert write.refusal["extra"]["transaction_id"] == winner.transaction_id
            winners.append(winner)

        audit = await audited(live_server, org, winners)
        assert audit.problems == []


class TestEveryTransactionReversedTwiceAtOnce:
    async def test_exactly_one_reversal_of_each_succeeds(self, live_server: ServerProcess) -> None:
        # A floor far below anything these exchanges reach: no reversal may be refused for balance.
        org = await seeded(live_server, members=4, min_balance_hours="-100")
        load = ExchangeLoad(live_server.base_url, org, exchanges=60, clients=16, rng=random.Random(3), policy=POLICY)
        await load.run()
        assert all(w.status == 201 for w in load.writes)

        pairs = [(reversal(org, w), reversal(org, w)) for w in load.writes]
        async with httpx.AsyncClient(
            base_url=live_server.base_url, timeout=30, limits=httpx.Limits(max_connections=64)
        ) as http:
            tally = HttpTally()
            await asyncio.gather(*(send(http, r, org.headers, POLICY, tally) for pair in pairs for r in pair))
            # On failure, what the server logged (a 500 is logged with its traceback).
            assert tally.server_errors == 0 and tally.timeouts == 0, (tally, server_errors_logged(live_server))

            for first, second in pairs:
                assert sorted([first.status, second.status]) == [201, 409], (first.refusal, second.refusal)
                refused = second if first.status == 201 else first
                assert "already been reversed" in refused.refusal["detail"]
            again = dataclasses.replace(pairs[0][0] if pairs[0][0].acknowledged else pairs[0][1], attempts=0)
            await send(http, again, org.headers, POLICY, tally)
            assert again.status == 200 and again.replayed

            for account_id in org.account_ids:
                assert await balance(http, org, account_id) == 0

        audit = await audited(live_server, org, [*load.writes, *(r for pair in pairs for r in pair)])
        assert audit.problems == []
        assert audit.acknowledged == 2 * len(load.writes)
