"""The invariant checks after a chaos run, from the store and from the emulators.

`RunReport` is what one run found; `check(world, store, policy_set, ...)` fills its
money columns:

- **double orders**, by the kind of policy:
  - *a fixed amount* (`topUp.amount`, `topUp.target`, or `topUp.auto` sized by the
    shortfall, without a declared `expectedUse`): one need per address per run, so every
    vendor order whose energy was delegated in full beyond the first is a double; so is
    every vendor order for an address that never had a need (bought blind, e.g. on junk
    read as 0 energy);
  - *a rolling level* (`topUp.auto` with a declared `expectedUse`, `rolling_addresses`:
    the forecast is known from the start, so engine/decide/planning.py keeps the level):
    the planner may buy several pieces for one drained address, one after the other (the
    shortfall below the level, then more once the drain is learned as a burst it keeps
    free), so the number of deliveries proves nothing. What buying twice looks like
    instead is two purchases outstanding at once: a vendor order for the address
    accepted while another one, at any vendor, was still in flight (`in_flight_until`:
    from its acceptance until the vendor was done with it, delegated as far as it will
    deliver or failed for good; an order accepted at that very moment comes after it, as
    the world's tick that delegates precedes the engine's pass in a step), or accepted at
    the same emulated moment as another one (time stands still within a pass, and a pass
    buys once per address: two orders in one moment are one pass's candidate walk, or two
    passes at once, buying twice). An order the vendor never delegates (no delivery) is
    done at its acceptance: the engine may give up on it legitimately (a vendor reporting
    "delegated" while the chain shows nothing, `delivery_wait` later: failed, an alert)
    and buy elsewhere, which delivers once, as a fixed amount's rule counts it too.
    A vendor order accepted before the address's need started (or for an address that
    never had one) is bought blind: an untouched address holds more than its level
    (`running.START_ENERGY` against about 143k, atLeast plus the declared use over the
    lead), so nothing may be bought for it. The store is not consulted for "in flight":
    an order the engine wrongly ended (an ambiguous answer taken for a failure, a crash
    between the call and the write) is in flight all the same. Not judged here: how much
    pieces bought one after the other add up to (the planner's sizing, bounded by the
    budget checks), nor a piece bought after a delivered order was wrongly booked failed
    on a stale reading (tracking is the same code for every policy: the fixed amounts'
    rule catches that path);
  - for every address: every sampled moment at which the store held more than one open
    order for it;
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

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.store import BudgetWindow, OrderFilter, OrderPhase, Store
from policies.policyset import PolicySet
from sandbox.providers.delivery import Delivery
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


def rolling_addresses(policy_set: PolicySet) -> set[str]:
    """The addresses whose policy keeps a rolling level: `topUp.auto` with a declared
    `expectedUse` (without one, the forecast is known only after `usage.LEARNED`, most of
    a day of reads, longer than any chaos run: sized by the shortfall until then)."""
    return {
        address
        for policy in policy_set.policies.values()
        if policy.spec.top_up.auto is not None and policy.spec.expected_use is not None
        for address in policy.spec.addresses
    }


def in_flight_until(delivery: Delivery) -> float:
    """When the vendor was done with `delivery` (emulated time; in flight until then,
    that moment excluded): the delegation that brought it to what it will deliver (all,
    or the share a partial fault leaves), its last refused attempt (failed for good, the
    refund follows), an early reclaim, or its acceptance if it was never going to be
    delegated (no delivery); `inf` while an attempt is still scheduled at the end of the
    run (slow, retrying, waiting for capacity)."""
    if delivery.due_at is not None:
        return math.inf
    times = [delivery.accepted_at, *(d.delegated_at for d in delivery.delegations)]
    times += [d.reclaimed_at for d in delivery.delegations if d.reclaimed_early and d.reclaimed_at]
    if delivery.failed_at is not None:
        times.append(delivery.failed_at)
    return max(times)


def overlapping(placed: list[tuple[str, Delivery]], addresses: set[str]) -> list[str]:
    """One line per vendor order for one of `addresses` accepted while another vendor
    order for the same address was in flight (`in_flight_until`), or at the same moment as
    another one, in acceptance order."""
    found: list[str] = []
    by_address: dict[str, list[tuple[str, Delivery]]] = {}
    for vendor, delivery in placed:
        if delivery.receiver in addresses:
            by_address.setdefault(delivery.receiver, []).append((vendor, delivery))
    for address, orders in sorted(by_address.items()):
        orders.sort(key=lambda item: item[1].accepted_at)  # stable: ties keep their order
        for i, (vendor, later) in enumerate(orders):
            for earlier_vendor, earlier in orders[:i]:
                until = in_flight_until(earlier)
                if later.accepted_at == earlier.accepted_at or later.accepted_at < until:
                    found.append(
                        f"double: {address}: {vendor} accepted an order at "
                        f"{later.accepted_at:.0f} while {earlier_vendor}'s of "
                        f"{earlier.accepted_at:.0f} was in flight (until {until:.0f})"
                    )
                    break
    return found


async def check(
    report: RunReport,
    world: World,
    store: Store,
    policy_set: PolicySet,
    open_peaks: int,
    needs: Mapping[str, float] | None = None,
) -> RunReport:
    """Fill `report`'s invariant columns from `store` (a live one) and `world`; `needs`
    (each drained address, and the emulated time its need started), when given, makes any
    order for another address, and for an address of a rolling level one accepted before
    its need, a double order (bought without a need)."""
    rows = await store.orders(OrderFilter(limit=10_000))
    report.orders = len(rows)
    placed = vendor_orders(world)
    report.placed = len(placed)
    rolling = rolling_addresses(policy_set)
    full = Counter(
        d.receiver
        for _, d in placed
        if d.receiver not in rolling and d.delivered >= d.energy * TOLERANCE
    )
    for address, count in full.items():
        if count > 1:
            report.double_orders += count - 1
            report.details.append(f"double: {address} got {count} full deliveries")
    overlaps = overlapping(placed, rolling)
    report.double_orders += len(overlaps) + open_peaks
    report.details += overlaps
    if open_peaks:
        report.details.append(f"double: {open_peaks} sampled moments with two open orders")
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
            elif d.receiver in rolling and d.accepted_at < needs[d.receiver]:
                report.double_orders += 1
                report.details.append(
                    f"blind: {vendor} sold to {d.receiver} at {d.accepted_at:.0f}, before its "
                    f"need at {needs[d.receiver]:.0f}"
                )
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


__all__ = [
    "RunReport",
    "check",
    "in_flight_until",
    "overlapping",
    "rolling_addresses",
    "vendor_charge",
    "vendor_charges",
    "vendor_orders",
]
