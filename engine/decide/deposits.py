"""What a deposit episode buys: PURE. One sweep's energy, once, within cap and budget.

A deposit episode (`engine/core/deposits.py`) wants the energy of one sweep (a token
transfer out of the deposit address) on the address, not a standing level. Step 1,
`assess_sweep`, looks at the episode, a fresh reading of the address and its open orders:

- the energy is already there (available >= the sweep's energy): **ready**, nothing bought;
- an order is open for the address (this episode's or any other): **wait** for it;
- an order of unknown outcome: **held** until tracking resolves it (invariant 3);
- no usable reading (failed, stale): **held**, never buy blind (invariant 6);
- the address is not activated: only providers that activate a receiver may serve it
  (`Capabilities.activates_receiver`); with none, **held** with that reason;
- else **buy** the shortfall (sweep energy - available), raised to each provider's
  minimum order, for the shortest duration it sells that is at least `sweepWithin`.

Step 2, `choose_sweep`, takes the quotes and keeps the providers whose quote keeps the
price cap, the provider's balance and the policy's budgets (counting what earlier
episodes of the same round take): the result is an `Action` for `engine/act/applying.py`,
whose write-ahead intent, budget reservation and one-open-order rule hold as for any
purchase.

Neighbours: `engine/decide/plans.py` (Action, Candidate, ProviderView), the sidecar's
`engine/sidecar/depositing.py` (gathers the inputs, fetches quotes, applies).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from engine.core.deposits import DepositNeed
from engine.core.records import BudgetWindow, OrderRecord
from engine.core.snapshots import EnergySnapshot
from engine.decide.plans import (
    Action,
    Candidate,
    ObservationFailure,
    ProviderView,
    QuoteKey,
    cap_total,
)
from policies.deposits import DepositPolicy
from providers.base import ProviderError, Quote


class Step(enum.StrEnum):
    READY = "ready"  # the sweep's energy is on the address
    WAIT = "wait"  # an order is open for the address: its energy is on the way
    HELD = "held"  # nothing may be bought now (reason says why)
    BUY = "buy"  # buy `need` energy (candidates in the policy's order)


@dataclass(frozen=True, slots=True)
class SweepInputs:
    need: DepositNeed
    policy: DepositPolicy
    sweep_energy: int
    reading: EnergySnapshot | ObservationFailure | None
    open_orders: Sequence[OrderRecord]
    providers: Mapping[str, ProviderView]
    now: float
    max_observation_age: float = 120.0


@dataclass(frozen=True, slots=True)
class SweepDecision:
    need: DepositNeed
    step: Step
    reason: str
    energy: int  # the sweep's energy
    available: int | None = None
    candidates: tuple[Candidate, ...] = ()
    rejected: tuple[tuple[str, str], ...] = ()
    action: Action | None = None


def assess_sweep(inputs: SweepInputs) -> SweepDecision:
    """Step 1: ready, wait, held, or buy the shortfall from these candidates."""
    need, energy = inputs.need, inputs.sweep_energy
    reading = inputs.reading

    def decided(step: Step, reason: str, available: int | None = None) -> SweepDecision:
        return SweepDecision(need, step, reason, energy, available)

    if reading is None:
        return decided(Step.HELD, "no reading of the address yet")
    if isinstance(reading, ObservationFailure):
        return decided(Step.HELD, f"the address could not be read: {reading.message}")
    if inputs.now - reading.read_at > inputs.max_observation_age:
        age = inputs.now - reading.read_at
        return decided(Step.HELD, f"the reading is {age:.0f}s old", reading.available)
    available = reading.available
    unresolved = [o for o in inputs.open_orders if o.phase == "unknown"]
    if available >= energy:
        return decided(Step.READY, f"{available} energy >= {energy} for the sweep", available)
    if unresolved:
        order = unresolved[0].client_order_id
        return decided(Step.HELD, f"order {order} has an ambiguous outcome; held", available)
    if inputs.open_orders:
        pending = sum(o.energy for o in inputs.open_orders)
        return decided(Step.WAIT, f"{pending} energy on order", available)
    shortfall = energy - available
    candidates, rejected = _candidates(inputs, shortfall, activated=reading.activated)
    if not candidates:
        if not reading.activated and not rejected:
            why = "address not activated and no listed provider activates a receiver"
        else:
            why = "; ".join(f"{p}: {w}" for p, w in rejected) or "no provider listed"
        return SweepDecision(need, Step.HELD, why, energy, available, rejected=tuple(rejected))
    return SweepDecision(
        need,
        Step.BUY,
        f"deposit {need.deposit_txid[:16]}: {available} < {energy}, wants {shortfall}",
        energy,
        available,
        tuple(candidates),
        tuple(rejected),
    )


def _candidates(
    inputs: SweepInputs, shortfall: int, *, activated: bool
) -> tuple[list[Candidate], list[tuple[str, str]]]:
    spec = inputs.policy.spec
    found: list[Candidate] = []
    rejected: list[tuple[str, str]] = []
    for name in spec.providers:
        view = inputs.providers.get(name)
        if view is None:
            rejected.append((name, "not configured"))
            continue
        caps = view.capabilities
        if not activated and not caps.activates_receiver:
            rejected.append((name, "address not activated; this provider does not activate"))
            continue
        duration = caps.fit_duration(spec.sweep_within)
        if duration is None:
            rejected.append((name, f"sells nothing as long as {spec.sweep_within}s"))
            continue
        amount = caps.fit_amount(shortfall)
        if amount is None:
            rejected.append((name, f"{shortfall} is above its maximum {caps.max_amount}"))
            continue
        if view.cooling_until is not None and view.cooling_until > inputs.now:
            wait = view.cooling_until - inputs.now
            rejected.append((name, f"cooling down for {wait:.0f}s after failures"))
            continue
        found.append(Candidate(name, amount, duration))
    return found, rejected


def quote_keys(decisions: Sequence[SweepDecision]) -> set[QuoteKey]:
    return {
        QuoteKey(c.provider, c.energy, c.duration)
        for d in decisions
        if d.step is Step.BUY
        for c in d.candidates
    }


@dataclass
class Round:
    """What earlier purchases of one round already take: provider balances and budgets."""

    spent: dict[tuple[str, BudgetWindow], int] = field(default_factory=dict)
    committed: dict[str, int] = field(default_factory=dict)
    actions_left: int = 10


def _budget_room(
    policy: DepositPolicy, spent: Mapping[tuple[str, BudgetWindow], int]
) -> list[tuple[BudgetWindow, int]]:
    budget, name = policy.spec.budget, policy.metadata.name
    room = []
    for window, limit in (
        (BudgetWindow.DAY, budget.per_day),
        (BudgetWindow.MONTH, budget.per_month),
    ):
        if limit is not None:
            room.append((window, limit - spent.get((name, window), 0)))
    return room


def choose_sweep(
    decision: SweepDecision,
    policy: DepositPolicy,
    providers: Mapping[str, ProviderView],
    quotes: Mapping[QuoteKey, Quote | ProviderError],
    round_: Round,
) -> SweepDecision:
    """Step 2: the first candidates whose quote keeps the price cap, the balance and the
    budgets make the Action; none: held, saying why. `round_` is updated."""
    if decision.step is not Step.BUY:
        return decision
    spec = policy.spec
    viable: list[Candidate] = []
    rejected = list(decision.rejected)
    for cand in decision.candidates:
        quote = quotes.get(QuoteKey(cand.provider, cand.energy, cand.duration))
        if quote is None:
            rejected.append((cand.provider, "no quote this round"))
            continue
        if isinstance(quote, ProviderError):
            rejected.append((cand.provider, f"quote failed: {quote}"))
            continue
        cap = cap_total(spec.max_price, cand.energy)
        if quote.total_sun > cap:
            rejected.append((cand.provider, f"quote {quote.total_sun} sun > price cap {cap} sun"))
            continue
        view = providers.get(cand.provider)
        if view is not None and view.balance_sun is not None:
            left = view.balance_sun - round_.committed.get(cand.provider, 0)
            if left < quote.total_sun:
                rejected.append((cand.provider, f"balance {left} sun < {quote.total_sun}"))
                continue
        over = [(w, r) for w, r in _budget_room(policy, round_.spent) if r < cap]
        if over:
            window, room = over[0]
            rejected.append(
                (cand.provider, f"{window} budget has {max(room, 0)} sun left, needs {cap}")
            )
            continue
        viable.append(replace(cand, quote_sun=quote.total_sun))
    if not viable:
        why = "; ".join(f"{p}: {w}" for p, w in rejected) or "no candidate"
        return replace(decision, step=Step.HELD, reason=why, rejected=tuple(rejected))
    if round_.actions_left <= 0:
        return replace(decision, step=Step.HELD, reason="safety gate: next round")
    round_.actions_left -= 1
    first = viable[0]
    cap = cap_total(spec.max_price, first.energy)
    round_.committed[first.provider] = round_.committed.get(first.provider, 0) + (
        first.quote_sun or 0
    )
    for window, _room in _budget_room(policy, round_.spent):
        key = (policy.metadata.name, window)
        round_.spent[key] = round_.spent.get(key, 0) + cap
    action = Action(
        address=decision.need.address,
        policy=policy.metadata.name,
        candidates=tuple(viable),
        max_total_sun=cap,
        exclusive=False,
        prevent_duplicates=True,
        max_open=1,
        reason=decision.reason,
        max_price_milli=spec.max_price,
    )
    return replace(decision, rejected=tuple(rejected), action=action)


__all__ = [
    "Round",
    "Step",
    "SweepDecision",
    "SweepInputs",
    "assess_sweep",
    "choose_sweep",
    "quote_keys",
]
