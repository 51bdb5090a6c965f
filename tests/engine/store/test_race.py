"""Invariants 2 and 5 across processes: workers (spawned interpreters, each with its own
store, like replicas) race on one database: an SQLite file, or a PostgreSQL schema.
Exactly `max_open` intents win an address, and replaying the committed history shows the
budget never exceeded by a single sun and never more open orders than allowed.

Replaying by `seq` is replaying in commit order: on SQLite every write holds the file's
lock; on PostgreSQL every ledger and event write of a policy holds the policy's advisory
lock until it commits, and these workers all write one policy.
"""

from __future__ import annotations

import multiprocessing
import queue
import time
from collections.abc import Callable
from typing import Any

import pytest

from engine.core.clock import VirtualClock
from engine.store import open_store
from tests.engine.store import racing
from tests.engine.store.harness import Backend

WORKERS = 8


def race(target: Callable[..., None], *args: Any) -> list[Any]:
    """Start WORKERS processes running target(*args, worker, ...), release them together."""
    ctx = multiprocessing.get_context("spawn")
    ready, results = ctx.Queue(), ctx.Queue()
    go = ctx.Event()
    processes = [
        ctx.Process(target=target, args=(args[0], n, *args[1:], ready, go, results))
        for n in range(WORKERS)
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            ready.get(timeout=45)
        go.set()
        collected: list[Any] = []
        deadline = time.monotonic() + 45
        while len(collected) < WORKERS and time.monotonic() < deadline:
            try:
                collected.append(results.get(timeout=0.5))
            except queue.Empty:
                crashed = [p.exitcode for p in processes if p.exitcode not in (None, 0)]
                assert not crashed, f"a worker died: exit codes {crashed}"
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        ready.close()
        results.close()
    assert [p.exitcode for p in processes] == [0] * WORKERS
    assert len(collected) == WORKERS
    return collected


async def prepared(backend: Backend) -> str:
    """A migrated database, so the race is on create_intent and not on the migrations."""
    url = backend.url()
    await (await open_store(url, VirtualClock(racing.START))).close()
    return url


@pytest.mark.parametrize("max_open", [1, 2])
async def test_exactly_max_open_intents_win_an_address(backend: Backend, max_open: int) -> None:
    url = await prepared(backend)
    results = race(racing.one_shot, url, "TSAME", 10, 10**9, max_open)
    winners = [worker for worker, created, _ in results if created]
    assert len(winners) == max_open
    assert {reason for _, created, reason in results if not created} == {"open_order_exists"}
    assert backend.rows("SELECT COUNT(*) FROM orders WHERE open_slot IS NOT NULL") == [(max_open,)]


async def test_a_budget_is_never_exceeded_by_racing_processes(backend: Backend) -> None:
    url = await prepared(backend)
    # max_open = WORKERS: the address refuses nobody, only the budget decides (3 x 300 fit)
    results = [
        result for result in race(racing.one_shot, url, "TSAME", 300, 1_000, WORKERS) if result[1]
    ]
    assert len(results) == 3
    assert backend.rows("SELECT SUM(amount_sun) FROM ledger_entries") == [(900,)]


async def test_hammering_never_breaks_the_invariants(backend: Backend) -> None:
    url = await prepared(backend)
    limit, max_open = 20_000, 1
    results = race(racing.hammer, url, 60, 3, limit, max_open)
    created = sum(created for _, created, _ in results)
    assert created > 3 * WORKERS  # orders came and went while the workers competed

    running = 0
    for (amount,) in backend.rows("SELECT amount_sun FROM ledger_entries ORDER BY seq"):
        running += amount
        assert running <= limit, "the budget was exceeded at some commit"
    open_now: dict[str, int] = {}
    events = backend.rows(
        "SELECT o.address, e.from_phase, e.to_phase FROM order_events e"
        " JOIN orders o USING (client_order_id) ORDER BY e.seq",
    )
    opened = {"intent", "submitted", "delegating", "unknown"}
    for address, before, after in events:
        was_open = before in opened
        if after in opened and not was_open:
            open_now[address] = open_now.get(address, 0) + 1
        elif was_open and after not in opened:
            open_now[address] -= 1
        assert open_now.get(address, 0) <= max_open, f"{address} had two open orders"
    total_orders = backend.rows("SELECT COUNT(*) FROM orders")[0][0]
    assert total_orders == created
