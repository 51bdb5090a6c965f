"""Operator resolutions of held orders (`energyctl orders resolve`), checked against the chain.

An ambiguous order at a vendor without a lookup is held until the chain shows its energy
(`engine/act/tracking.py`); if nothing ever arrives, its address is blocked. An operator who
knows better (the vendor's support, a block explorer) may end it `failed` or `delivered`,
with their name and reason in the order's history (`Store.resolve`). `check_resolution`
decides whether they may:

- only an open order can be resolved (terminal phases are final); an `intent` younger than
  `intent_grace` may belong to a process still calling its provider, and is refused;
- `delivered` is the operator's word (the budget stays spent): no chain reading needed;
- `failed` frees the address for a new order, so it needs a reading of the address that
  shows no delegation to it since the order was created (`tracking.delegation_evidence`):
  one that does may be this order's energy from its vendor (the engine does not know the
  vendors' delegating accounts, so any delegation counts), and a node that cannot be read
  proves nothing. Both are refused, saying why.

`resolve` then writes it as a compare-and-set on the phase checked: if tracking (a sidecar
on the same store) moved the order meanwhile, nothing is written.

Neighbours: `engine/cli/planning.py` (the command), `engine/act/tracking.py` (the evidence and
the baseline), `engine/store/` (`Store.resolve`), `engine/observe/chain.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.act.tracking import SnapshotSource, delegation_evidence, parse_baseline
from engine.core.clock import Clock
from engine.core.snapshots import EnergySnapshot
from engine.store import OPEN_PHASES, OrderPhase, OrderRecord, Store

#: the phases an operator may end an order in
RESOLUTIONS = (OrderPhase.FAILED, OrderPhase.DELIVERED)


@dataclass(frozen=True, slots=True)
class ResolutionCheck:
    """Whether `order` may be resolved as `to_phase`: `refusal` None, or why not."""

    order: OrderRecord
    to_phase: OrderPhase
    refusal: str | None
    #: what the chain showed (empty when it was not read: `delivered`, or refused before)
    chain: str = ""

    @property
    def allowed(self) -> bool:
        return self.refusal is None


async def check_resolution(
    store: Store,
    reader: SnapshotSource,
    client_order_id: str,
    to_phase: OrderPhase,
    *,
    clock: Clock,
    intent_grace: float = 60.0,
) -> ResolutionCheck:
    """May `client_order_id` be resolved as `to_phase`? See the module docstring.

    Raises OrderNotFoundError (a StoreError) for an unknown id, ValueError for a phase
    other than failed or delivered."""
    if to_phase not in RESOLUTIONS:
        raise ValueError(f"an order can be resolved as failed or delivered, not {to_phase}")
    order = await store.get_order(client_order_id)

    def refused(why: str, chain: str = "") -> ResolutionCheck:
        return ResolutionCheck(order, to_phase, why, chain)

    if order.phase.is_terminal:
        phases = ", ".join(sorted(OPEN_PHASES))
        return refused(
            f"order {client_order_id} is already {order.phase} (terminal phases are final): "
            f"only an open order ({phases}) can be resolved"
        )
    age = clock.now() - order.created_at
    if order.phase is OrderPhase.INTENT and age < intent_grace:
        return refused(
            f"order {client_order_id} is an intent {age:.0f}s old: the process that wrote it "
            f"may still be calling {order.provider}; try again after {intent_grace:.0f}s"
        )
    if to_phase is OrderPhase.DELIVERED:
        return ResolutionCheck(order, to_phase, None)
    address = order.address
    read = (await reader.snapshots([address])).get(address)
    if not isinstance(read, EnergySnapshot):
        return refused(
            f"cannot read {address} on the chain ({read}): resolving as failed needs a "
            "reading that shows no delegation to it since the order was created"
        )
    history = await store.order_history(client_order_id)
    baseline = parse_baseline(history[0].detail.get("note")) if history else None
    seen = (
        f"{address} at block {read.block}: energy limit {read.limit}, "
        f"{read.delegated_in} sun of stake delegated in"
    )
    evidence = delegation_evidence(baseline, read, energy=order.energy)
    if evidence is not None:
        return refused(
            f"the chain shows a delegation to {address} since order {client_order_id} was "
            f"created ({evidence}): it may be this order's energy from {order.provider}, and "
            "a new order could then buy twice. Let tracking see it delivered, or resolve it "
            "--as delivered",
            seen,
        )
    return ResolutionCheck(
        order, to_phase, None, f"{seen}: no delegation to it since the order was created"
    )


async def resolve(store: Store, check: ResolutionCheck, *, by: str, reason: str) -> OrderRecord:
    """Write an allowed resolution, a compare-and-set on the phase `check` saw: raises
    TransitionConflictError if the order moved since (tracking got there first)."""
    if check.refusal is not None:
        raise ValueError(f"not allowed: {check.refusal}")
    return await store.resolve(
        check.order.client_order_id,
        check.to_phase,
        by=by,
        reason=reason,
        expect_from={check.order.phase},
    )


__all__ = ["RESOLUTIONS", "ResolutionCheck", "check_resolution", "resolve"]
