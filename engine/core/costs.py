"""What energy cost an address: money spent on orders, TRX burned, energy bought, used, wasted.

Pure arithmetic over the store's order records and the transfers' receipts, shared by
`energyctl report` (`engine/act/reporting.py`, the store and the chain) and the
simulator's report (`sandbox/reporting.py`, its own records), so the two count alike:

- **spent** (`order_cost`, `CHARGED`): an order that ended `failed` or `abandoned` costs
  nothing; any other costs its settled cost net of a refund, and an open order without a
  cost its reservation (the most it may cost).
- **energy bought**: the ordered energy of `delivered` and `partial` orders.
- **energy used**: what transfers drew from the address's pool (the receipt's
  `energy_usage`); **needed**: what they needed (`energy_usage_total`); **burned**: the
  TRX burned for the energy the pool lacked (`energy_fee`).
- **capacity** and **wasted** (`capacity`): a rental of E energy lasting d seconds can serve
  up to E x (1 + d / 24 h) under the chain's 24 h linear recovery of used energy (for a
  rental still running at `ended_at`, d is the part that ran). Wasted = capacity minus
  the energy used, at least 0, per address.
- **burn only**: needed x the chain's energy fee (`getEnergyFee`, sun per energy): what
  burning for every transfer would have cost.

Money is int sun, energy int. Neighbours: `records.py` (OrderRecord), `phases.py`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.core.phases import OrderPhase
from engine.core.records import OrderRecord

DAY = 86_400
#: orders whose money counts as spent: every phase but the two that end uncharged
UNCHARGED = frozenset({OrderPhase.FAILED, OrderPhase.ABANDONED})
#: orders whose energy counts as bought
DELIVERED = frozenset({OrderPhase.DELIVERED, OrderPhase.PARTIAL})


def order_cost(order: OrderRecord) -> int:
    """Money an order costs as far as the store knows (see the module docstring)."""
    if order.cost_sun is not None:
        return order.cost_sun - (order.refund_sun or 0)
    if order.is_open:
        return order.reserved_sun
    return 0


def charged(order: OrderRecord) -> bool:
    """Whether the order's money counts as spent."""
    return order.phase not in UNCHARGED


def rental_capacity(order: OrderRecord, ended_at: float | None) -> float:
    """Energy a delivered rental could serve: E x (1 + d / 24 h), d cut at `ended_at`."""
    if order.phase not in DELIVERED:
        return 0.0
    duration = float(order.duration)
    if ended_at is not None:
        duration = max(0.0, min(duration, ended_at - order.created_at))
    return order.energy * (1 + duration / DAY)


@dataclass(frozen=True, slots=True)
class TransferCost:
    """One transfer's receipt, as far as costs go."""

    sender: str
    energy_used: int  # from the sender's pool (`energy_usage`)
    energy_total: int  # what it needed (`energy_usage_total`)
    burned_sun: int  # burned for what the pool lacked (`energy_fee`)


@dataclass(slots=True)
class AddressCost:
    """The figures of one address (or a sum of them); see the module docstring."""

    orders: int = 0
    transfers: int = 0
    transfers_burning: int = 0
    spent_sun: int = 0
    burned_sun: int = 0
    energy_bought: int = 0
    energy_used: int = 0
    energy_needed: int = 0
    capacity: float = 0.0

    @property
    def wasted(self) -> int:
        return int(max(0.0, self.capacity - self.energy_used))

    def add(self, other: AddressCost) -> None:
        """Sum another address in (waste stays per address: summed, never netted)."""
        self.orders += other.orders
        self.transfers += other.transfers
        self.transfers_burning += other.transfers_burning
        self.spent_sun += other.spent_sun
        self.burned_sun += other.burned_sun
        self.energy_bought += other.energy_bought
        self.energy_used += other.energy_used
        self.energy_needed += other.energy_needed
        self.capacity += other.capacity

    def add_order(self, order: OrderRecord, ended_at: float | None) -> None:
        self.orders += 1
        if charged(order):
            self.spent_sun += order_cost(order)
        if order.phase in DELIVERED:
            self.energy_bought += order.energy
        self.capacity += rental_capacity(order, ended_at)

    def add_transfer(self, transfer: TransferCost) -> None:
        self.transfers += 1
        self.transfers_burning += transfer.burned_sun > 0
        self.burned_sun += transfer.burned_sun
        self.energy_used += transfer.energy_used
        self.energy_needed += transfer.energy_total

    def to_json(self, energy_fee: int, *, wasted: int | None = None) -> dict[str, object]:
        """The figures as the reports print them (`wasted` given for a sum of addresses)."""
        waste = self.wasted if wasted is None else wasted
        total = self.spent_sun + self.burned_sun
        burn_only = self.energy_needed * energy_fee
        count = self.transfers
        return {
            "orders": self.orders,
            "transfers": count,
            "transfers_burning": self.transfers_burning,
            "spent_sun": self.spent_sun,
            "burned_sun": self.burned_sun,
            "total_sun": total,
            "energy_bought": self.energy_bought,
            "energy_used": self.energy_used,
            "energy_needed": self.energy_needed,
            "energy_capacity": int(self.capacity),
            "wasted_energy": waste,
            "wasted_share": round(waste / self.capacity, 4) if self.capacity else 0.0,
            "cost_per_transfer_sun": total // count if count else 0,
            "burn_per_transfer_sun": burn_only // count if count else 0,
            "burn_only_sun": burn_only,
            "saving_sun": burn_only - total,
            "saving_vs_burning": round(1 - total / burn_only, 4) if burn_only else 0.0,
        }


def address_costs(
    orders: Iterable[OrderRecord],
    transfers: Iterable[TransferCost],
    *,
    ended_at: float | None,
    addresses: Iterable[str] = (),
) -> dict[str, AddressCost]:
    """Figures per address: every order's receiver and transfer's sender, plus `addresses`
    (so that an address with neither still has its zero row)."""
    out: dict[str, AddressCost] = {a: AddressCost() for a in addresses}
    for order in orders:
        out.setdefault(order.address, AddressCost()).add_order(order, ended_at)
    for transfer in transfers:
        out.setdefault(transfer.sender, AddressCost()).add_transfer(transfer)
    return out


__all__ = [
    "DELIVERED",
    "UNCHARGED",
    "AddressCost",
    "TransferCost",
    "address_costs",
    "charged",
    "order_cost",
    "rental_capacity",
]
