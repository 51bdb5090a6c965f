"""The invariant checks after a chaos run, from the store and from the emulators.

`RunReport` is what one run found; `check(world, store, policy_set, ...)` fills its
money columns:

- **double orders**: per address (one need each per run), vendor orders whose energy was
  delegated in full, beyond the first; plus every sampled moment at which the store held
  more than one open order for an address; plus every vendor order for an address that
  never had a need (bought blind, e.g. on junk read as 0 energy);
- **lost intents**: orders still in `intent` at the end (never resolved after the
  restart), and vendor orders the store has no order for (a call not written ahead);
  an `unknown` order is held legitimately (its deadline raises the alert), not lost;
- **budget overruns**: per policy and day, the store's `spent`, the sum of what its
  orders cost (the reservation until settled), or the sum of what the vendors charged for
  its addresses' orders (net of their refunds: the money actually gone, whatever the
  store believes) above the policy's limit.

Neighbours: `running.py` (samples and calls this), `sandbox/providers` (order records).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from engine.store import BudgetWindow, OrderFilter, OrderPhase, Store
from policies.policyset import PolicySet
from sandbox.world import World

TOLERANCE = 0.97


@dataclass
class RunReport:
    seed: int
    faults: list[str] = field(default_factory=list)
    needs: int = 0
    orders: int = 0  # orders the store knows
    placed: int = 0  # orders the vendors accepted
    double_orders: int = 0
    lost_intents: int = 0
    budget_overruns: int = 0
    burned: int = 0  # payments the workload made without energy
    recover_s: float | None = 0.0  # emulated seconds from the faults' end to every need met
    held: int = 0  # needs held legitimately (an open order past its deadline: alert)
    kills: int = 0
    passes: int = 0
    errors: list[str] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not (self.double_orders or self.lost_intents or self.budget_overruns)


def vendor_charge(emulator: Any, order: Any) -> int:
    """What a vendor emulator's order took from the account, net of refunds, in sun."""
    if hasattr(order, "payout_amount"):  # TronSave: no refunds emulated
        return int(order.payout_amount)
    if hasattr(order, "amount_sun"):  # Mefree: refunded in full or not at all
        return 0 if order.refunded else int(order.amount_sun)
    if hasattr(order, "refund_amount"):  # itrx: part refunds
        return int(order.amount) - int(order.refund_amount)
    if order.refunded:  # eopen: refunded in full, paid in TRX or (valued in sun) USDT
        return 0
    rate = 1_000_000 if order.currency == "TRX" else int(emulator.sun_per_usdt)
    return int(order.amount * rate)


def vendor_charges(world: World) -> list[tuple[str, str, int]]:
    """(vendor, receiver, sun charged) of every order any emulator accepted."""
    out = []
    for vendor, emulator in world.emulators.items():
        orders: dict[str, Any] = getattr(emulator, "orders")  # noqa: B009
        out += [(vendor, o.delivery.receiver, vendor_charge(emulator, o)) for o in orders.values()]
    return out


def vendor_orders(world: World) -> list[tuple[str, Any]]:
    """(vendor, delivery) of every order any emulator accepted."""
    out = []
    for vendor, emulator in world.emulators.items():
        orders: dict[str, Any] = getattr(emulator, "orders")  # noqa: B009
        out += [(vendor, order.delivery) for order in orders.values()]
    return out


async def check(
    report: RunReport,
    world: World,
    store: Store,
    policy_set: PolicySet,
    open_peaks: int,
    needs: Collection[str] | None = None,
) -> RunReport:
    """Fill `report`'s invariant columns from `store` (a live one) and `world`; `needs`
    (the addresses that were drained), when given, makes any order for another one a
    double order (bought without a need)."""
    rows = await store.orders(OrderFilter(limit=10_000))
    report.orders = len(rows)
    placed = vendor_orders(world)
    report.placed = len(placed)
    full = Counter(d.receiver for _, d in placed if d.delivered >= d.energy * TOLERANCE)
    for address, count in full.items():
        if count > 1:
            report.double_orders += count - 1
            report.details.append(f"double: {address} got {count} full deliveries")
    report.double_orders += open_peaks
    stuck = [r for r in rows if r.phase is OrderPhase.INTENT]
    report.lost_intents += len(stuck)
    report.details += [f"lost: {r.client_order_id} still an intent" for r in stuck]
    known = Counter((r.provider, r.address) for r in rows)
    sold = Counter((vendor, d.receiver) for vendor, d in placed)
    for key, count in sold.items():
        if count > known[key]:
            report.lost_intents += count - known[key]
            report.details.append(f"lost: {key} has {count} vendor orders, {known[key]} known")
    if needs is not None:
        for vendor, d in placed:
            if d.receiver not in needs:
                report.double_orders += 1
                report.details.append(f"blind: {vendor} sold to {d.receiver}, which had no need")
    charged: Counter[str] = Counter()
    for _, receiver, sun in vendor_charges(world):
        owner = policy_set.policy_for(receiver)
        charged[owner.metadata.name if owner is not None else "?"] += sun
    now = store.clock.now()
    for name, policy in policy_set.policies.items():
        limit = policy.spec.budget.per_day
        if limit is None:
            continue
        spent = await store.spent(name, BudgetWindow.DAY, now)
        cost = sum(
            (r.cost_sun or 0) if r.phase.is_terminal else r.reserved_sun
            for r in rows
            if r.policy == name
        )
        sums = (("spent", spent), ("orders cost", cost), ("vendors charged", charged[name]))
        for what, sun in sums:
            if sun > limit:
                report.budget_overruns += 1
                report.details.append(f"budget: {name}: {what} {sun} > {limit} sun")
                break
    return report


__all__ = ["RunReport", "check", "vendor_charge", "vendor_charges", "vendor_orders"]
