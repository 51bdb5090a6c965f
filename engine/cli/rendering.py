"""Text tables for the CLI: plans, apply outcomes, address status and order history.

PURE: values in, strings out (the CLI echoes them; nothing here prints). Money is shown
in TRX/sun with `policies.units.format_sun`, energy as integers, times in UTC.

Neighbours: `engine/cli/planning.py` (the only caller), `engine/decide/planning.py`,
`engine/act/applying.py`, `engine/act/tracking.py`, `engine/core/records.py`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from engine.act.applying import ActionOutcome, OutcomeKind
from engine.act.tracking import TrackResult
from engine.decide.planning import AddressPlan, Assessment, Plan
from engine.store import OrderRecord
from policies.units import format_duration, format_energy, format_sun


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces; one line per row, newline-ended."""
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines) + "\n"


def when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return dt.datetime.fromtimestamp(epoch, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def deposits_text(deposits: list[dict[str, Any]]) -> str:
    """One line per DepositPolicy: plan and apply buy nothing for it (docs/deposits.md)."""
    lines = []
    for item in deposits:
        count = f"{item['addresses']:,} watched addresses"
        if item["addressesFromQuery"]:
            count += " (and those of its PostgreSQL query, not run here)"
        lines.append(
            f"DepositPolicy {item['policy']}: deposit-triggered, served by `energyctl run` "
            f"({count}, {item['openEpisodes']} open episodes); nothing is bought for it here\n"
        )
    return "".join(lines)


def plan_table(plan: Plan) -> str:
    rows = []
    for entry in plan.entries:
        act = entry.action
        if act is None:
            action, provider, cost = "none", None, None
        else:
            first = act.first
            action = f"buy {format_energy(first.energy)} for {format_duration(first.duration)}"
            provider = first.provider
            if len(act.candidates) > 1:
                provider += f" (then {', '.join(c.provider for c in act.candidates[1:])})"
            cost = format_sun(first.quote_sun) if first.quote_sun is not None else "?"
        rows.append(
            (
                entry.address,
                entry.policy,
                entry.available,
                entry.threshold,
                f"{entry.condition}/{entry.reason}",
                action,
                provider,
                cost,
            )
        )
    head = (
        "ADDRESS",
        "POLICY",
        "AVAILABLE",
        "THRESHOLD",
        "CONDITION",
        "ACTION",
        "PROVIDER",
        "EST. COST",
    )
    out = table(head, rows)
    blocked = [e for e in plan.entries if e.action is None and e.reason.value not in _QUIET]
    for entry in blocked:
        out += f"  {entry.address}: {entry.reason}: {entry.detail}\n"
    for entry in plan.entries:
        if entry.action is not None and len(entry.compared) > 1:
            out += _compared_text(entry)
    n = len(plan.actions)
    out += f"Plan: {n} purchase(s), estimated {format_sun(plan.estimated_cost_sun)}.\n"
    return out


_QUIET = frozenset({"EnoughEnergy", "NeedsTopUp"})


def _compared_text(entry: AddressPlan) -> str:
    """The quotes an action was chosen from, and why the winner won."""
    out = f"  {entry.address}: {entry.why}\n"
    for cand in entry.compared:
        cost = format_sun(cand.quote_sun) if cand.quote_sun is not None else "no quote"
        per = cand.per_used_milli
        unit = f"{per / 1000:g} sun per energy used" if per is not None else "-"
        out += (
            f"    {cand.provider:<12} {format_energy(cand.energy):>7} for "
            f"{format_duration(cand.duration):<4} {cost:>16}  {unit:<28} {cand.note}\n"
        )
    return out


def outcomes_text(outcomes: Sequence[ActionOutcome]) -> str:
    if not outcomes:
        return "Nothing to buy.\n"
    rows = []
    for item in outcomes:
        cost = format_sun(item.cost_sun) if item.cost_sun is not None else None
        if item.over_cap and cost is not None and item.cap_sun is not None:
            cost += f" (ABOVE CAP {format_sun(item.cap_sun)})"
        elif item.over_quote and cost is not None and item.quote_sun is not None:
            cost += f" (ABOVE QUOTE {format_sun(item.quote_sun)})"
        rows.append(
            (item.address, str(item.kind), item.provider, item.energy, cost, item.client_order_id)
        )
    out = table(("ADDRESS", "OUTCOME", "PROVIDER", "ENERGY", "COST", "ORDER"), rows)
    for item in outcomes:
        if item.kind is not OutcomeKind.BOUGHT:
            out += f"  {item.address}: {item.kind}: {item.reason}\n"
    bought = [o for o in outcomes if o.kind is OutcomeKind.BOUGHT]
    total = sum(o.cost_sun or 0 for o in bought)
    held = sum(1 for o in outcomes if o.kind is OutcomeKind.HELD)
    failed = len(outcomes) - len(bought) - held
    out += f"Bought {len(bought)} ({format_sun(total)}), held {held}, failed {failed}.\n"
    return out


def tracked_text(results: Sequence[TrackResult]) -> str:
    lines = []
    for r in results:
        if r.moved or r.alert:
            lines.append(
                f"  order {r.client_order_id} ({r.address}, {r.provider}): "
                f"{r.before} -> {r.after}: {r.detail}"
            )
    return "\n".join(lines) + "\n" if lines else ""


def _use_text(item: Assessment) -> str | None:
    """`1.8M/day (12.1M, observed)`: expected use per day, last week's use, source."""
    use = item.use
    if use is None or (use.source == "none" and not use.last_week):
        return None
    return f"{format_energy(use.per_day)}/day ({format_energy(use.last_week)}, {use.source})"


def status_table(
    assessments: Sequence[Assessment], open_by_address: Mapping[str, Sequence[OrderRecord]]
) -> str:
    rows = []
    for item in assessments:
        orders = open_by_address.get(item.address, ())
        open_text = ", ".join(f"{o.phase}@{o.provider}" for o in orders) or None
        rows.append(
            (
                item.address,
                item.policy.metadata.name,
                item.available,
                item.threshold,
                str(item.condition),
                str(item.reason),
                open_text,
                _use_text(item),
            )
        )
    head = (
        "ADDRESS",
        "POLICY",
        "AVAILABLE",
        "THRESHOLD",
        "CONDITION",
        "REASON",
        "OPEN ORDERS",
        "USE/DAY (LAST WEEK)",
    )
    out = table(head, rows)
    for item in assessments:
        if item.reason.value not in _QUIET:
            out += f"  {item.address}: {item.reason}: {item.detail}\n"
    return out


def orders_table(orders: Sequence[OrderRecord]) -> str:
    rows = [
        (
            when(o.created_at),
            o.client_order_id,
            o.address,
            o.provider,
            o.energy,
            format_duration(o.duration),
            str(o.phase),
            format_sun(o.cost_sun) if o.cost_sun is not None else None,
            o.last_error,
        )
        for o in orders
    ]
    head = (
        "CREATED",
        "ORDER",
        "ADDRESS",
        "PROVIDER",
        "ENERGY",
        "DURATION",
        "PHASE",
        "COST",
        "ERROR",
    )
    return table(head, rows) + f"{len(orders)} order(s).\n"


def _share(value: float) -> str:
    return f"{value:.0%}"


def _trx(sun: int) -> str:
    return f"{sun / 1_000_000:,.2f}"


def report_table(report: Mapping[str, Any]) -> str:
    """`energyctl report`: a row per policy (its sum) and per address under it, then the
    suggestions. `report` is `CostReport.to_json()`; money in TRX, energy in units."""
    headers = [
        "policy / address", "transfers", "burning", "bought", "used", "wasted", "waste",
        "spent TRX", "burned TRX", "TRX/transfer", "burn-only TRX/transfer", "saving",
    ]  # fmt: skip

    def row(label: str, r: Mapping[str, Any]) -> list[object]:
        return [
            label, r["transfers"], r["transfers_burning"], f"{r['energy_bought']:,}",
            f"{r['energy_used']:,}", f"{r['wasted_energy']:,}", _share(r["wasted_share"]),
            _trx(r["spent_sun"]), _trx(r["burned_sun"]), _trx(r["cost_per_transfer_sun"]),
            _trx(r["burn_per_transfer_sun"]),
            _share(r["saving_vs_burning"]) if r["burn_only_sun"] else "-",
        ]  # fmt: skip

    rows: list[list[object]] = []
    for name, policy in report["policies"].items():
        rows.append(row(name, policy))
        rows += [row(f"  {a}", r) for a, r in policy["addresses"].items()]
    head = (
        f"from {when(report['since'])} to {when(report['until'])} (blocks "
        f"{report['blocks'][0]}..{report['blocks'][1]}; burning costs {report['energy_fee']} "
        "sun per energy)\n"
    )
    out = head + table(headers, rows)
    suggestions = report["suggestions"]
    out += "\nsuggestions:\n" if suggestions else "\nno suggestions\n"
    out += "".join(f"  {s['text']}\n" for s in suggestions)
    return out
