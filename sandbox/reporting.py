"""Totals and reports of a sandbox or simulation run: the JSON report, the PNG chart, tables.

- `provider_totals(orders)`: orders, deliveries, energy and money per provider, from the
  store's order records (money: the settled cost; an open order counts what the provider
  reported, else its reservation).
- `Report` (`build_report`): what `energyctl simulate` writes as JSON: TRX spent per
  provider, TRX burned by transfers that lacked energy, energy bought versus energy used
  (waste), cost per transfer against burning everything, the floor (energy used x the
  cheapest unit price on offer for the shortest duration; not a bound) and spent / floor,
  and the hindsight optimum (`sandbox/optimum.py`): its proven lower bound, the MILP plan's
  cost where solved, cost over optimum = (spent + burned) / lower bound, and the recovery
  windows the bound was certified with (one per transfer: row j of the program recovers
  over c_j x 24 h; `recovery_factor` is the run's smallest c_j, `recovery_short_rows` the
  share of transfers with c_j < 1, `recovery_median` the median c_j, `recovery_factors`
  each address's smallest c_j where below 1, and the table's "bound's recovery window").
  Energy wasted
  is bought energy that ended unused, counting recovery: per address, what its rentals could
  have served (`energy_capacity`: each rental's amount times 1 + its duration / 24 h, since
  used energy recovers linearly over 24 h) minus the energy transfers drew from the pool,
  never below 0 (`wasted_energy`; `wasted_share` = wasted / capacity).
- `write_chart(result, path)`: energy per address over time with each threshold and every
  top-up marked; cumulative spend and burn, their sum and the optimal plan's cumulative
  cost (matplotlib, Agg backend: no display needed).
- `comparison_table(reports)`: policy sets side by side.

Money is integer sun throughout; TRX appear only in rendered text and as `*_trx` fields.
Neighbours: `sandbox/simulating.py` and `sandbox/running.py` produce what is reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from engine.core.costs import AddressCost, TransferCost, address_costs, charged, order_cost
from engine.store import OrderPhase, OrderRecord

if TYPE_CHECKING:
    from pathlib import Path

TRX = 1_000_000


@dataclass(slots=True)
class ProviderTotals:
    orders: int = 0
    delivered: int = 0
    energy: int = 0  # ordered by orders that were delivered (or partly)
    spent_sun: int = 0


def provider_totals(orders: Iterable[OrderRecord]) -> dict[str, ProviderTotals]:
    totals: dict[str, ProviderTotals] = {}
    for order in orders:
        item = totals.setdefault(order.provider, ProviderTotals())
        item.orders += 1
        if order.phase in (OrderPhase.DELIVERED, OrderPhase.PARTIAL):
            item.delivered += 1
            item.energy += order.energy
        if charged(order):
            item.spent_sun += order_cost(order)
    return totals


def _trx(sun: int | Fraction) -> float:
    return round(float(Fraction(sun) / TRX), 6)


@dataclass(frozen=True, slots=True)
class Floor:
    provider: str
    duration: int
    energy: int
    total_sun: int  # the quote for `energy` for `duration`

    @property
    def unit_price(self) -> Fraction:
        return Fraction(self.total_sun, self.energy)


def build_report(
    *,
    name: str,
    orders: Sequence[OrderRecord],
    transfers: Sequence[Any],
    floor: Floor | None,
    energy_fee: int,
    extra: Mapping[str, Any] | None = None,
    optimum: Any = None,
    ended_at: float | None = None,
    policies: Mapping[str, str] | None = None,
    reference: Any = None,
    reference_reserve: int = 0,
) -> dict[str, Any]:
    """The JSON report of one run (see the module docstring); every sum is exact.
    `reference`: the optimum's reference without foresight solved with
    `reference_reserve` (`sandbox/optimum.py`), reported next to the bound."""
    per_provider = provider_totals(orders)
    spent = sum(t.spent_sun for t in per_provider.values())
    bought = sum(t.energy for t in per_provider.values())
    burned = sum(r.burned_sun for r in transfers)
    used = sum(r.energy_used for r in transfers)
    needed = sum(r.energy_total for r in transfers)
    count = len(transfers)
    burn_only = needed * energy_fee  # every transfer burning all its energy
    floor_sun = None if floor is None else floor.unit_price * used
    report: dict[str, Any] = {
        "name": name,
        "transfers": count,
        "transfers_burning": sum(1 for r in transfers if r.burned_sun > 0),
        "providers": {
            provider: {
                "orders": t.orders,
                "delivered": t.delivered,
                "energy": t.energy,
                "spent_sun": t.spent_sun,
                "spent_trx": _trx(t.spent_sun),
            }
            for provider, t in sorted(per_provider.items())
        },
        "spent_sun": spent,
        "spent_trx": _trx(spent),
        "burned_sun": burned,
        "burned_trx": _trx(burned),
        "total_sun": spent + burned,
        "energy_bought": bought,
        "energy_used": used,
        "energy_needed": needed,
        "waste_energy": bought - used,
        "waste_share": round(max(0, bought - used) / bought, 4) if bought else 0.0,
        "cost_per_transfer_sun": (spent + burned) // count if count else 0,
        "burn_per_transfer_sun": burn_only // count if count else 0,
        "burn_only_sun": burn_only,
        "saving_vs_burning": round(1 - (spent + burned) / burn_only, 4) if burn_only else 0.0,
        "floor": None
        if floor is None or floor_sun is None
        else {
            "provider": floor.provider,
            "duration": floor.duration,
            "unit_price_sun": round(float(floor.unit_price), 4),
            "floor_sun": int(floor_sun),
            "floor_trx": _trx(floor_sun),
        },
        "spent_over_floor": round(float(spent / floor_sun), 4) if floor_sun else None,
    }
    capacity, wasted = wasted_energy(orders, transfers, ended_at)
    report["energy_capacity"] = capacity
    report["wasted_energy"] = wasted
    report["addresses"] = {
        address: {"policy": (policies or {}).get(address), **row.to_json(energy_fee)}
        for address, row in sorted(per_address(orders, transfers, ended_at, policies).items())
    }
    report["wasted_share"] = round(wasted / capacity, 4) if capacity else 0.0
    if optimum is not None:
        bound = optimum.lower_bound_sun
        plan = optimum.milp_sun
        report["optimum"] = {
            "lower_bound_sun": bound,
            "lower_bound_trx": _trx(bound),
            "milp_sun": plan,
            "milp_trx": None if plan is None else _trx(plan),
            "recovery_factor": round(optimum.recovery_factor, 6),
            "recovery_short_rows": round(optimum.short_rows, 6),
            "recovery_median": round(optimum.median_factor, 6),
            "recovery_factors": {
                address: round(a.recovery_factor, 6)
                for address, a in sorted(optimum.addresses.items())
                if a.recovery_factor < 1
            },
            "seconds": round(optimum.seconds, 3),
        }
        report["cost_over_optimum"] = round((spent + burned) / bound, 4) if bound else None
        report["bound_recovery"] = _recovery_note(optimum)
    if reference is not None:
        value = reference.lower_bound_sun
        report["reference_reserve"] = reference_reserve
        report["reference_trx"] = _trx(value)
        report["cost_over_reference"] = round((spent + burned) / value, 4) if value else None
    report.update(extra or {})
    return report


_ROWS = (
    ("transfers", "transfers", "{:,}"),
    ("transfers that burned", "transfers_burning", "{:,}"),
    ("spent (TRX)", "spent_trx", "{:,.2f}"),
    ("burned (TRX)", "burned_trx", "{:,.2f}"),
    ("energy bought", "energy_bought", "{:,}"),
    ("energy used", "energy_used", "{:,}"),
    ("energy wasted", "wasted_energy", "{:,}"),
    ("waste", "wasted_share", "{:.1%}"),
    ("cost per transfer (TRX)", "cost_per_transfer_sun", "sun:{}"),
    ("burning instead (TRX)", "burn_per_transfer_sun", "sun:{}"),
    ("saving vs burning", "saving_vs_burning", "{:.1%}"),
    ("spent / floor", "spent_over_floor", "{}"),
    ("cost over optimum", "cost_over_optimum", "{}"),
    ("bound's recovery window", "bound_recovery", "{}"),
)


def _recovery_note(optimum: Any) -> str:
    """'24 h' when every transfer's row is certified at 24 h, else the shortest window and
    the share of rows below 24 h."""
    share = optimum.short_rows
    if not share:
        return "24 h"
    return f"{optimum.recovery_factor * 24:.2f} h ({share:.1%} of transfers < 24 h)"


def comparison_table(reports: Sequence[Mapping[str, Any]]) -> str:
    """A text table: one column per report, the figures a person decides from."""
    header = ["", *(str(r["name"]) for r in reports)]
    rows = [header]
    providers = sorted({p for r in reports for p in r["providers"]})
    for label, key, fmt in _ROWS:
        row = [label]
        for report in reports:
            value = report.get(key)
            if value is None:
                row.append("-")
            elif fmt.startswith("sun:"):
                row.append(f"{value / TRX:,.3f}")
            else:
                row.append(fmt.format(value))
        rows.append(row)
    for provider in providers:
        rows.append(
            [f"  {provider} (TRX)"]
            + [
                f"{r['providers'][provider]['spent_trx']:,.2f}"
                if provider in r["providers"]
                else "-"
                for r in reports
            ]
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    out = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=False)
        ]
        out.append("  ".join(cells).rstrip())
    return "\n".join(out) + "\n"


def write_chart(result: Any, path: Path) -> Path:
    """The PNG chart of one run (see the module docstring)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    start = result.started_at
    figure, (energy_axes, money_axes) = plt.subplots(2, 1, figsize=(12, 8), sharex=True)
    hours = [(t - start) / 3600 for t in result.sample_times]
    for address, series in result.energy_series.items():
        energy_axes.plot(hours, [e / 1000 for e in series], linewidth=0.8, label=address[:8])
    for threshold in sorted(set(result.thresholds.values())):
        energy_axes.axhline(threshold / 1000, linestyle="--", color="grey", linewidth=0.8)
    tops = [((o.created_at - start) / 3600, o.energy / 1000) for o in result.orders]
    if tops:
        energy_axes.scatter(*zip(*tops, strict=True), marker="^", s=12, color="black",
                            label="top-up")  # fmt: skip
    energy_axes.set_ylabel("available energy (k)")
    energy_axes.set_title(f"{result.name}: energy per address (dashed: thresholds)")
    if len(result.energy_series) <= 12:
        energy_axes.legend(fontsize="x-small", ncol=4)
    money_axes.plot(
        hours,
        [(s + b) / TRX for s, b in zip(result.spent_series, result.burned_series, strict=True)],
        label="policy: spent + burned", linewidth=4, alpha=0.35, color="tab:green",
    )  # fmt: skip
    money_axes.plot(hours, [s / TRX for s in result.spent_series], label="spent on energy")
    money_axes.plot(hours, [b / TRX for b in result.burned_series], label="burned by transfers")
    if getattr(result, "optimum", None) is not None:
        best = result.optimum.cumulative(result.sample_times)
        money_axes.plot(hours, [c / TRX for c in best], linestyle="--", color="black",
                        label="hindsight optimum (LP plan)")  # fmt: skip
    money_axes.set_ylabel("cumulative TRX")
    money_axes.set_xlabel("hours")
    money_axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def per_address(
    orders: Sequence[OrderRecord],
    transfers: Sequence[Any],
    ended_at: float | None,
    policies: Mapping[str, str] | None = None,
) -> dict[str, AddressCost]:
    """Each address's figures (`engine/core/costs.py`, what `energyctl report` computes from
    the store and the chain), from the run's order records and transfer receipts; every
    address of `policies` (address -> policy name) has a row."""
    return address_costs(
        orders,
        (TransferCost(r.sender, r.energy_used, r.energy_total, r.burned_sun) for r in transfers),
        ended_at=ended_at,
        addresses=policies or (),
    )


def wasted_energy(
    orders: Sequence[OrderRecord], transfers: Sequence[Any], ended_at: float | None
) -> tuple[int, int]:
    """(capacity, wasted): bought energy that ended unused (module docstring), all addresses.

    A rental of E energy lasting d seconds can serve up to E x (1 + d / 24 h) in the chain's
    24 h linear recovery (for rentals still running at the end, d is the part that ran); per
    address, waste = that capacity minus the energy transfers drew from the pool, at least
    0. Counting recovery this way, a three-day rental drawn on every day is not "waste".
    """
    rows = per_address(orders, transfers, ended_at).values()
    wasted = sum(max(0.0, r.capacity - r.energy_used) for r in rows)
    return int(sum(r.capacity for r in rows)), int(wasted)


__all__ = [
    "Floor",
    "ProviderTotals",
    "build_report",
    "comparison_table",
    "order_cost",
    "per_address",
    "provider_totals",
    "write_chart",
]
