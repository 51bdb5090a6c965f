"""What one read of the chain says about one address: the `EnergySnapshot`.

The value that flows from `engine.observe` (which reads it) to `engine.decide` (which
plans on it) and `engine.act` (which tracks deliveries with it); it lives here so that
deciding needs no chain client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EnergySnapshot:
    """One address's energy as the node reported it.

    `block` is the head the reader saw just before the read: the state read is at least as
    new as that block. `read_at` is the reader's clock time. Energy figures are integers;
    `delegated_in` is sun of staked TRX that others delegate to this address for energy
    (Stake 2.0 plus legacy 1.0). `delegators` (sun per delegator) is None unless asked for.
    """

    address: str
    activated: bool
    available: int
    limit: int
    used: int
    delegated_in: int
    block: int
    read_at: float
    total_energy_limit: int = 0
    total_energy_weight: int = 0
    delegators: Mapping[str, int] | None = None
