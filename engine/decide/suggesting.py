"""Suggestions from a policy's cost history (`energyctl report`): pure, each rule explained.

Input: one policy (its `EnergyPolicy` document) and the figures of each of its addresses
over the report's window (`engine/core/costs.py`). Each rule says what it saw, what to
change, and what the change would have cost, with the estimate's basis:

- **waste** (`WASTE_SHARE`): at least half of the energy the rentals could serve (their
  capacity, counting the 24 h recovery) expired unused, and the top-up is a fixed `amount`
  or `target`. Suggests `topUp: {auto: {}}`, which sizes each purchase from the address's
  expected use. Estimate: per address, what was spent x used / capacity, i.e. the same
  unit price for only the capacity the transfers drew (at least one rental's worth: a
  size that fits the use still buys whole orders, so the estimate is a floor, said so).
- **burn** (`BURN_SHARE`): transfers burned TRX for energy the pool lacked, and the burn
  is at least a tenth of what the policy cost. Suggests a higher `threshold` (covering
  the largest transfer) or, for auto top-ups, an earlier `renewBefore`. Estimate: the
  energy burned for (burned / the chain's energy fee) bought at the unit price the
  policy's rentals cost per unit of capacity; offered only where that is cheaper.

- **dearer** : the policy cost more (spent + burned) than burning for every transfer
  would have (needed energy x the chain's energy fee). Suggests shorter rentals or a
  lower `maxPrice`; estimate: burning only.

A rule that does not apply says nothing; no history, no suggestion. Money is int sun.
Neighbours: `engine/act/reporting.py` (calls `suggest`), `engine/cli/reporting.py` (prints).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.core.costs import AddressCost
from policies.models import EnergyPolicy

WASTE_SHARE = 0.5  # of the rentals' capacity expiring unused
BURN_SHARE = 0.1  # of the policy's cost burned by its transfers
TRX = 1_000_000


@dataclass(frozen=True, slots=True)
class Suggestion:
    policy: str
    rule: str  # "waste", "burn" or "dearer"
    text: str  # one line for people
    current_sun: int  # what the part concerned cost in the window
    estimated_sun: int  # what it would have cost with the change (the estimate's basis: docs)

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "rule": self.rule,
            "text": self.text,
            "current_sun": self.current_sun,
            "estimated_sun": self.estimated_sun,
        }


def _trx(sun: float) -> str:
    return f"{sun / TRX:,.1f} TRX"


def _days(seconds: int) -> str:
    if seconds % 86_400 == 0:
        return f"{seconds // 86_400}-day"
    if seconds % 3_600 == 0:
        return f"{seconds // 3_600}-hour"
    return f"{seconds} s"


def suggest(
    policy: EnergyPolicy, rows: Mapping[str, AddressCost], energy_fee: int
) -> list[Suggestion]:
    """The suggestions for one policy from its addresses' figures (module docstring)."""
    name = policy.metadata.name
    out: list[Suggestion] = []
    capacity = sum(r.capacity for r in rows.values())
    spent = sum(r.spent_sun for r in rows.values())
    wasted = sum(r.wasted for r in rows.values())
    burned = sum(r.burned_sun for r in rows.values())
    top_up = policy.spec.top_up
    if capacity > 0 and wasted / capacity >= WASTE_SHARE and top_up.auto is None:
        sized = 0.0
        for row in rows.values():
            if row.capacity > 0:
                sized += row.spent_sun * min(1.0, row.energy_used / row.capacity)
        estimate = int(sized)
        rental = _days(top_up.shortest) + " " if top_up.shortest else ""
        out.append(
            Suggestion(
                policy=name,
                rule="waste",
                text=(
                    f"{name}: {wasted / capacity:.0%} of the {rental}energy bought expired "
                    f"unused; auto sizing (topUp: {{auto: {{}}}}) would have cost ~"
                    f"{_trx(estimate)} instead of {_trx(spent)} (the same unit price for "
                    "only the energy used: a floor, since orders come in whole sizes)"
                ),
                current_sun=spent,
                estimated_sun=estimate,
            )
        )
    total = spent + burned
    if burned > 0 and total > 0 and burned / total >= BURN_SHARE:
        burning = sum(r.transfers_burning for r in rows.values())
        energy = burned // max(1, energy_fee)
        unit = spent / capacity if capacity > 0 else None  # sun per energy of capacity
        knob = (
            "an earlier renewBefore" if top_up.auto is not None else "a higher threshold"
        ) + f" (now {policy.spec.threshold:,} energy)"
        if unit is not None and unit < energy_fee:
            estimate = int(energy * unit)
            cost = f"; that energy would have cost ~{_trx(estimate)} rented at the unit price paid"
        else:
            estimate = burned
            cost = ""
        out.append(
            Suggestion(
                policy=name,
                rule="burn",
                text=(
                    f"{name}: {burning} transfers burned {_trx(burned)} for {energy:,} energy "
                    f"the pool lacked ({burned / total:.0%} of the cost); consider {knob}{cost}"
                ),
                current_sun=burned,
                estimated_sun=estimate,
            )
        )
    needed = sum(r.energy_needed for r in rows.values())
    burn_only = needed * energy_fee
    if spent > 0 and total > burn_only:
        out.append(
            Suggestion(
                policy=name,
                rule="dearer",
                text=(
                    f"{name}: energy cost {_trx(total)}, more than burning for every transfer "
                    f"({_trx(burn_only)} at {energy_fee} sun per energy); consider shorter "
                    "rentals or a lower maxPrice"
                ),
                current_sun=total,
                estimated_sun=burn_only,
            )
        )
    return out


__all__ = ["BURN_SHARE", "WASTE_SHARE", "Suggestion", "suggest"]
