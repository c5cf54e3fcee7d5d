"""Load: many HTTP clients sending ledger writes, each named by its own Idempotency-Key.

A client behaves as a careful real one would: when a request gets no answer (the
connection is refused, reset or times out) or a 503, it sends the *same* request
with the *same* key again, a bounded number of times and for a bounded time. A
definite answer (2xx, or a 4xx refusal) ends the write. Every write remembers
what became of it, so an audit can compare what the service acknowledged with
what the database holds. Loopback only: the base URL is the drill's own server.
"""

import argparse
import asyncio
import datetime as dt
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from scripts.drills.live_server import SeededOrg

ACKNOWLEDGED = frozenset({200, 201})


@dataclass(frozen=True)
class RetryPolicy:
    """How long a client keeps trying one write: bounded in attempts and in time."""

    max_attempts: int = 200
    give_up_after: float = 60.0
    # An answer slower than this counts as a hang.
    request_timeout: float = 10.0
    first_backoff: float = 0.02
    max_backoff: float = 0.5


@dataclass
class Write:
    """One intended ledger write (one Idempotency-Key) and what became of it."""

    key: str
    path: str
    body: dict[str, Any]
    # The postings it must make if it lands: account id -> minutes.
    legs: dict[int, int]
    attempts: int = 0
    # The last answer's status; None while no attempt has been answered.
    status: int | None = None
    transaction_id: int | None = None
    replayed: bool = False
    # From the acknowledged answer: its postings, and each account's balance right after.
    answered_legs: dict[int, int] = field(default_factory=dict)
    balances_after: dict[int, int] = field(default_factory=dict)
    # From a refusal: the error's ``extra`` and ``detail``.
    refusal: dict[str, Any] = field(default_factory=dict)
    # What each attempt got: a status code, "no connection" or "timeout".
    history: list[int | str] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return self.status in ACKNOWLEDGED

    @property
    def refused(self) -> bool:
        """A definite refusal: nothing was posted, and retrying as is would not change that."""
        return self.status is not None and 400 <= self.status < 500

    @property
    def unanswered(self) -> bool:
        """Sent, but never definitely answered: it may or may not be in the ledger."""
        return self.attempts > 0 and not self.acknowledged and not self.refused

    @property
    def is_insufficient_balance(self) -> bool:
        return self.status == 409 and "requested_minutes" in self.refusal.get("extra", {})

    def record_answer(self, response: httpx.Response) -> None:
        self.status = response.status_code
        body = response.json()
        if self.acknowledged:
            self.transaction_id = body["id"]
            self.replayed = response.headers.get("Idempotent-Replayed") == "true"
            self.answered_legs = {p["account_id"]: p["minutes"] for p in body["postings"]}
            self.balances_after = {p["account_id"]: p["balance_after"] for p in body["postings"]}
        elif self.refused:
            self.refusal = {"detail": body.get("detail"), "extra": body.get("extra") or {}}


@dataclass
class HttpTally:
    """Every HTTP attempt, by what came back."""

    requests: int = 0
    by_status: Counter[int] = field(default_factory=Counter)
    connection_errors: int = 0
    # No answer within the request timeout: the service hung.
    timeouts: int = 0
    slowest_answer: float = 0.0

    @property
    def server_errors(self) -> int:
        """5xx answers other than 503: never acceptable, whatever fails underneath."""
        return sum(n for status, n in self.by_status.items() if status >= 500 and status != 503)

    def record(self, status: int, seconds: float) -> None:
        self.by_status[status] += 1
        self.slowest_answer = max(self.slowest_answer, seconds)


def exchange(org: SeededOrg, giver: int, receiver: int, minutes: int, *, key: str | None = None) -> Write:
    """An exchange of ``minutes`` from ``giver`` to ``receiver``, dated yesterday (never in the future)."""
    occurred_on = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
    return Write(
        key=key or f"drill-{uuid.uuid4().hex}",
        path=org.url("/exchanges"),
        body={
            "giver_account_id": giver,
            "receiver_account_id": receiver,
            "minutes": minutes,
            "occurred_on": occurred_on.isoformat(),
            "description": "Drill exchange",
        },
        legs={giver: minutes, receiver: -minutes},
    )


def reversal(org: SeededOrg, original: Write, *, key: str | None = None) -> Write:
    """A reversal of ``original`` (acknowledged), which must post every leg back."""
    assert original.transaction_id is not None
    return Write(
        key=key or f"drill-reversal-{uuid.uuid4().hex}",
        path=org.url(f"/exchanges/{original.transaction_id}/reversal"),
        body={"reason": "Drill reversal"},
        legs={account: -minutes for account, minutes in original.legs.items()},
    )


def client(base_url: str, policy: RetryPolicy) -> httpx.AsyncClient:
    """One HTTP client with one connection, as a separate real client would have."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=policy.request_timeout,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
    )


async def send(
    http: httpx.AsyncClient, write: Write, headers: dict[str, str], policy: RetryPolicy, tally: HttpTally
) -> Write:
    """Send ``write`` until it gets a definite answer, retrying with the same key within ``policy``."""
    started = time.monotonic()
    backoff = policy.first_backoff
    while write.attempts < policy.max_attempts:
        write.attempts += 1
        tally.requests += 1
        sent_at = time.monotonic()
        try:
            response = await http.post(write.path, json=write.body, headers={**headers, "Idempotency-Key": write.key})
        except httpx.TimeoutException:
            tally.timeouts += 1
            write.history.append("timeout")
        except httpx.TransportError:
            tally.connection_errors += 1
            write.history.append("no connection")
        else:
            tally.record(response.status_code, time.monotonic() - sent_at)
            write.history.append(response.status_code)
            write.record_answer(response)
            if write.acknowledged or write.refused:
                return write
        if time.monotonic() - started + backoff > policy.give_up_after:
            break
        await asyncio.sleep(random.uniform(backoff / 2, backoff))
        backoff = min(backoff * 2, policy.max_backoff)
    return write


class ExchangeLoad:
    """``exchanges`` exchanges in random directions between the given accounts, from ``clients`` clients.

    The writes are drawn up front from ``rng``, so a seed reproduces the same load.
    ``completed`` counts the writes finished so far: faults are timed by it.
    """

    def __init__(
        self,
        base_url: str,
        org: SeededOrg,
        *,
        exchanges: int,
        clients: int,
        rng: random.Random,
        account_ids: list[int] | None = None,
        minutes: tuple[int, ...] = (15, 30, 45, 60),
        policy: RetryPolicy = RetryPolicy(),
        time_limit: float = 3600.0,
    ) -> None:
        accounts = account_ids or org.account_ids
        run = uuid.UUID(int=rng.getrandbits(128)).hex[:12]
        self.base_url = base_url
        self.org = org
        self.clients = clients
        self.policy = policy
        self.time_limit = time_limit
        self.tally = HttpTally()
        self.completed = 0
        self.finished = False
        self.writes = [
            exchange(org, *rng.sample(accounts, 2), rng.choice(minutes), key=f"drill-{run}-{number}")
            for number in range(exchanges)
        ]

    async def run(self) -> None:
        pending = iter(self.writes)
        deadline = time.monotonic() + self.time_limit

        async def one_client() -> None:
            async with client(self.base_url, self.policy) as http:
                for write in pending:
                    if time.monotonic() > deadline:
                        return
                    await send(http, write, self.org.headers, self.policy, self.tally)
                    self.completed += 1

        try:
            await asyncio.gather(*(one_client() for _ in range(self.clients)))
        finally:
            self.finished = True

    async def wait_for_progress(self, completed: int) -> bool:
        """Wait until ``completed`` writes are done; False if the load ended first."""
        while self.completed < completed:
            if self.finished:
                return False
            await asyncio.sleep(0.005)
        return True


def add_load_options(parser: argparse.ArgumentParser, *, exchanges: int, clients: int) -> None:
    """The options every drill's load takes."""
    load = parser.add_argument_group("load")
    load.add_argument("--exchanges", type=int, default=exchanges, help="exchanges to post (default %(default)s)")
    load.add_argument("--clients", type=int, default=clients, help="concurrent HTTP clients (default %(default)s)")
    load.add_argument("--accounts", type=int, default=6, help="member accounts to move hours between (default 6)")
    load.add_argument(
        "--min-balance-hours",
        default="-2",
        help="the organisation's minimum balance; near zero, many exchanges are refused (default -2)",
    )
    load.add_argument("--seed", type=int, default=None, help="random seed, to repeat a run (default: random)")
    load.add_argument(
        "--request-timeout", type=float, default=10.0, help="seconds after which an answer is a hang (default 10)"
    )
    load.add_argument(
        "--time-limit", type=float, default=3600.0, help="stop sending new exchanges after this many seconds"
    )
    load.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    load.add_argument("--keep", action="store_true", help="keep the scratch database and the server's log")
    load.add_argument("--report-json", type=Path, default=None, help="also write the figures to this JSON file")
