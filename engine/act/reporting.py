"""`energyctl report`'s core: what each watched address's energy cost over a window.

`cost_report(policy_set, store, reader, since=...)` reads the node's head (its timestamp
is "now": the window is the `since` seconds of chain time before it), the chain's energy
fee, the orders each EnergyPolicy address received in the window from the store
(created at or after its start; paged, oldest first) and every contract call the
addresses sent in the window's blocks with its receipt (`engine/observe/transfers.py`),
and reduces them to the figures of `engine/core/costs.py` per address and per policy,
with the suggestions of `engine/decide/suggesting.py`.

The same figures, from its own records, are in the simulator's report
(`sandbox/reporting.py`, "addresses"): `tests/sandbox/test_report_matches.py` runs a
simulation and this report on its store and node and compares them.
Neighbours: `engine/cli/reporting.py` (the command, rendering).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from engine.core.costs import AddressCost, TransferCost
from engine.core.records import OrderFilter, OrderRecord
from engine.decide.suggesting import Suggestion, suggest
from engine.observe.chain import ChainReader, ChainTemporaryError
from engine.observe.transfers import block_time_ms, read_transfers, window_start
from engine.store import Store
from policies.policyset import PolicySet

PAGE = 10_000  # orders per store query


@dataclass(slots=True)
class CostReport:
    since: float  # the window's start, epoch seconds (chain time)
    until: float  # the head block's time
    first_block: int
    last_block: int
    energy_fee: int
    addresses: dict[str, AddressCost] = field(default_factory=dict)
    policy_of: dict[str, str] = field(default_factory=dict)
    suggestions: list[Suggestion] = field(default_factory=list)

    def policies(self) -> dict[str, AddressCost]:
        """Each policy's sum over its addresses."""
        out: dict[str, AddressCost] = {}
        for address, row in self.addresses.items():
            out.setdefault(self.policy_of[address], AddressCost()).add(row)
        return out

    def to_json(self) -> dict[str, Any]:
        fee = self.energy_fee
        by_policy: dict[str, dict[str, Any]] = {}
        for name, total in sorted(self.policies().items()):
            mine = [a for a in self.addresses if self.policy_of[a] == name]
            wasted = sum(self.addresses[a].wasted for a in mine)
            by_policy[name] = {
                **total.to_json(fee, wasted=wasted),
                "addresses": {a: self.addresses[a].to_json(fee) for a in sorted(mine)},
            }
        return {
            "since": self.since,
            "until": self.until,
            "blocks": [self.first_block, self.last_block],
            "energy_fee": fee,
            "policies": by_policy,
            "suggestions": [s.to_json() for s in self.suggestions],
        }


async def orders_since(store: Store, address: str, since: float) -> list[OrderRecord]:
    """Every order for `address` created at or after `since`, oldest first (paged)."""
    found: dict[str, OrderRecord] = {}
    cursor = since
    while True:
        page = await store.orders(
            OrderFilter(address=address, since=cursor, limit=PAGE, newest_first=False)
        )
        fresh = [o for o in page if o.client_order_id not in found]
        for order in fresh:
            found[order.client_order_id] = order
        if len(page) < PAGE or not fresh:
            return list(found.values())
        cursor = page[-1].created_at  # orders at the boundary are read again, then skipped


async def cost_report(
    policy_set: PolicySet,
    store: Store,
    reader: ChainReader,
    *,
    since: float,
    on_window: Callable[[int], None] | None = None,
    progress: Callable[[int], None] | None = None,
) -> CostReport:
    """The figures of the last `since` seconds (module docstring). `on_window(blocks)` is
    told how many blocks will be read, `progress(read)` how many are done."""
    heads = await reader.heads()
    head = await reader.block(heads.number)
    if head is None:
        raise ChainTemporaryError(f"node {reader.node}: head block {heads.number} not served")
    head_ms = block_time_ms(head)
    since_ms = head_ms - int(since * 1000)
    energy_fee = await reader.energy_fee()
    policy_of = {
        address: policy.metadata.name
        for policy in policy_set.policies.values()
        for address in policy.spec.addresses
    }
    report = CostReport(
        since=since_ms / 1000,
        until=head_ms / 1000,
        first_block=0,
        last_block=heads.number,
        energy_fee=energy_fee,
        addresses={a: AddressCost() for a in policy_of},
        policy_of=policy_of,
    )
    for address, row in report.addresses.items():
        for order in await orders_since(store, address, report.since):
            row.add_order(order, report.until)
    first = await window_start(reader, since_ms, heads.number, head_ms)
    report.first_block = first
    if on_window is not None:
        on_window(max(0, heads.number - first + 1))

    def take(transfer: TransferCost) -> None:
        row = report.addresses.get(transfer.sender)
        if row is not None:
            row.add_transfer(transfer)

    if first <= heads.number:
        await read_transfers(reader, policy_of, first, heads.number, take, progress=progress)
    for name, policy in sorted(policy_set.policies.items()):
        rows = {a: r for a, r in report.addresses.items() if policy_of[a] == name}
        report.suggestions += suggest(policy, rows, energy_fee)
    return report


__all__ = ["CostReport", "cost_report", "orders_since"]
