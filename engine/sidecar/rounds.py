"""The sidecar's tracking rounds: which open orders it may move, and one round of moving them.

A round runs beside the planning passes (`controller.py`), so it must leave alone
an intent that a pass may still be placing: `may_track` lets through every open order
but an `intent` that is neither

- written by a pass of this process that has finished (`mine`: its provider call has
  returned, or the process gave up on it), nor
- older than its grace: `IN_FLIGHT_GRACE` for one written while a pass of this process
  that may still be placing it ran (`windows`: the pass running now, and passes that
  failed, whose actions may outlive them); `intent_grace` for any other (a previous life
  of the process, or another replica - dead, or fenced off its shard - that may still be
  calling its provider: above the provider timeout and the lease time-to-live).

`track_round` moves the orders in chunks of `CHUNK`: the chain is read for a chunk's
addresses in one batch (the `ChainReader`'s concurrent lanes), the chunk goes to
`Tracker.track`, and before the next chunk the round waits at the controller's gate while
a planning pass runs or an ensure demand waits for one. Tracking a hundred open orders
costs a hundred vendor calls and store writes (each write an fsync on SQLite, one store
thread): a pass that had to queue behind all of them waited seconds.

Neighbours: `controller.py` (runs rounds on `busy_interval` and on wake-ups),
`engine/act/tracking.py` (moves one order), `engine/store/`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

from engine.act.tracking import TrackResult
from engine.observe.chain import ChainReader
from engine.reconciling import Reconciler
from engine.store import OrderPhase, OrderRecord

#: orders moved between two looks at the gate (each costs a vendor call, a store write)
CHUNK = 8
#: an intent this process wrote in a pass not yet finished may still be being placed
IN_FLIGHT_GRACE = 120.0


@dataclass(frozen=True, slots=True)
class RoundRules:
    """What `may_track` needs to know of the process running the round."""

    mine: frozenset[str]
    #: (start, end) clock times of this process's passes that may still be placing
    #: orders: the one running (end None) and those that failed
    windows: tuple[tuple[float, float | None], ...]
    intent_grace: float


def _in_window(at: float, windows: tuple[tuple[float, float | None], ...]) -> bool:
    return any(start <= at and (end is None or at <= end) for start, end in windows)


def may_track(order: OrderRecord, now: float, rules: RoundRules) -> bool:
    """Every open order but an intent that a pass may still be placing (module docstring)."""
    if order.phase is not OrderPhase.INTENT or order.client_order_id in rules.mine:
        return True
    grace = rules.intent_grace
    if _in_window(order.created_at, rules.windows):
        grace = max(grace, IN_FLIGHT_GRACE)
    return now - order.created_at >= grace


async def track_round(
    reconciler: Reconciler,
    reader: ChainReader,
    open_orders: list[OrderRecord],
    rules: RoundRules,
    *,
    owned: Collection[str] | None = None,
    gate: Callable[[], Awaitable[None]] | None = None,
    chunk: int = CHUNK,
) -> list[TrackResult]:
    """Move the trackable open orders (of `owned` addresses, if given) on once, `chunk`
    orders at a time; `await gate()` before each chunk (the controller's waits while a
    planning pass runs, so a pass never queues behind a whole round's store writes)."""
    now = reconciler.clock.now()
    orders = [
        o for o in open_orders if (owned is None or o.address in owned) and may_track(o, now, rules)
    ]
    results: list[TrackResult] = []
    for start in range(0, len(orders), chunk):
        if gate is not None:
            await gate()
        part = orders[start : start + chunk]
        snapshots = await reader.snapshots(sorted({o.address for o in part}))
        results += await reconciler.tracker.track(part, snapshots)
    return results


__all__ = ["CHUNK", "IN_FLIGHT_GRACE", "RoundRules", "may_track", "track_round"]
