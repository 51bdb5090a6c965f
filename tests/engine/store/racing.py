"""Worker processes for the multi-process race tests (`test_race.py`).

Module-level functions, so `multiprocessing`'s spawn start method can import them in a
fresh interpreter. Each worker opens its own store on the shared database (an SQLite file
or a PostgreSQL schema), says it is ready, waits for the starting gun, then writes as fast
as it can.
"""

from __future__ import annotations

import asyncio
import random
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

from engine.core.clock import VirtualClock
from engine.store import (
    OPEN_PHASES,
    BudgetLimit,
    BudgetWindow,
    IntentCreated,
    NewIntent,
    OrderPhase,
    TransitionConflictError,
    open_store,
)

START = 1_773_144_000.0  # every worker in the same day and month


def one_shot(
    url: str,
    worker: int,
    address: str,
    reserved_sun: int,
    limit_sun: int,
    max_open: int,
    ready: Queue[Any],
    go: Event,
    results: Queue[Any],
) -> None:
    """One create_intent, fired at the same moment as the other workers'."""

    async def main() -> tuple[int, bool, str]:
        store = await open_store(url, VirtualClock(START))
        try:
            ready.put(worker)
            go.wait(30)
            outcome = await store.create_intent(
                NewIntent(
                    client_order_id=f"w{worker}",
                    policy="payouts",
                    address=address,
                    provider="itrx",
                    energy=65_000,
                    duration=3600,
                    reserved_sun=reserved_sun,
                ),
                budgets=[
                    BudgetLimit(policy="payouts", window=BudgetWindow.DAY, limit_sun=limit_sun)
                ],
                max_open=max_open,
            )
            reason = "" if isinstance(outcome, IntentCreated) else outcome.reason.value
            return worker, outcome.created, reason
        finally:
            await store.close()

    results.put(asyncio.run(main()))


def hammer(
    url: str,
    worker: int,
    rounds: int,
    addresses: int,
    limit_sun: int,
    max_open: int,
    ready: Queue[Any],
    go: Event,
    results: Queue[Any],
) -> None:
    """Many create_intent calls on a few addresses, and random endings of the orders won,
    so reservations are taken, settled and released while the others compete."""
    rng = random.Random(worker)

    async def main() -> tuple[int, int, int]:
        store = await open_store(url, VirtualClock(START))
        created = conflicts = 0
        try:
            ready.put(worker)
            go.wait(30)
            for n in range(rounds):
                reserved = rng.randrange(1, 400)
                outcome = await store.create_intent(
                    NewIntent(
                        client_order_id=f"w{worker}-{n}",
                        policy="payouts",
                        address=f"T{rng.randrange(addresses)}",
                        provider="itrx",
                        energy=65_000,
                        duration=3600,
                        reserved_sun=reserved,
                    ),
                    budgets=[
                        BudgetLimit(policy="payouts", window=BudgetWindow.DAY, limit_sun=limit_sun)
                    ],
                    max_open=max_open,
                )
                if not isinstance(outcome, IntentCreated):
                    if outcome.open_orders and rng.random() < 0.5:
                        # act as the tracker of another replica: finish a blocking order
                        try:
                            await store.transition(
                                outcome.open_orders[0],
                                rng.choice([OrderPhase.DELIVERED, OrderPhase.FAILED]),
                                expect_from=OPEN_PHASES,
                            )
                        except TransitionConflictError:
                            conflicts += 1  # someone else finished it first
                    continue
                created += 1
                oid = outcome.order.client_order_id
                ending = rng.choice([OrderPhase.FAILED, OrderPhase.DELIVERED, None])
                if ending is None:
                    continue  # left open: another worker may finish it
                try:
                    await store.transition(
                        oid,
                        ending,
                        expect_from={OrderPhase.INTENT},
                        cost_sun=rng.randrange(0, reserved + 1),
                    )
                except TransitionConflictError:
                    conflicts += 1
            return worker, created, conflicts
        finally:
            await store.close()

    results.put(asyncio.run(main()))
