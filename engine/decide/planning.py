"""The planner: PURE. From what is wanted and what is known, decide what to buy.

Inputs (`PlanInputs`): the policies, one observation per address (`EnergySnapshot` or why
there is none), the open orders and the last order time per address (from the store),
money already spent per policy and budget window, what is known of each provider this
pass (capabilities, cooldown, balance), the quotes fetched for this pass, explicit demands
(the sidecar's "ensure N energy now") and `now`. Output: a `Plan` with one `AddressPlan`
per watched address, each ending in a condition with a reason, and an `Action` where a
purchase should be made.

Planning runs in two steps so that it stays pure while quotes are I/O:

1. `assess(inputs)` decides, per address, whether energy is needed, how much and for how
   long, and which providers could serve it (duration and amount fit, not cooling down,
   can honour `exclusive`); `quote_requests(assessments)` lists the quotes to fetch.
2. `plan(inputs, assessments, quotes)` picks, in the policy's priority order, the
   providers whose quote keeps the price cap, the balance and the budgets (counting what
   earlier actions of the same plan already take), then applies the safety gate (at most
   `max_actions` purchases per pass).

Neighbours: `engine/decide/plans.py` holds the values (inputs, conditions, actions, plans; every
name is re-exported here); `engine/reconciling.py` gathers the inputs and quotes and hands
the plan to `engine/act/applying.py`. Table tests: `tests/engine/test_planning.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from engine.core.records import BudgetWindow, OrderRecord
from engine.core.snapshots import EnergySnapshot
from engine.decide.plans import (
    Action,
    AddressPlan,
    Assessment,
    Candidate,
    Condition,
    ObservationFailure,
    Plan,
    PlanInputs,
    ProviderView,
    QuoteKey,
    Reason,
    cap_total,
)
from policies.models import EnergyPolicy
from providers.base import ProviderError, Quote, TemporaryError

__all__ = [
    "Action",
    "AddressPlan",
    "Assessment",
    "Candidate",
    "Condition",
    "ObservationFailure",
    "Plan",
    "PlanInputs",
    "ProviderView",
    "QuoteKey",
    "Reason",
    "assess",
    "plan",
    "quote_requests",
]

# --------------------------------------------------------------------------- step 1


def _stale(snapshot: EnergySnapshot, now: float, max_age: float) -> bool:
    return now - snapshot.read_at > max_age


def _assess_one(
    address: str,
    policy: EnergyPolicy,
    inputs: PlanInputs,
    open_by_address: Mapping[str, list[OrderRecord]],
) -> Assessment:
    spec = policy.spec
    demand = inputs.demands.get(address, 0)
    threshold = max(spec.threshold, demand)
    observation = inputs.observations.get(address)

    def blocked(reason: Reason, detail: str, available: int | None = None) -> Assessment:
        return Assessment(
            address, policy, Condition.BLOCKED, reason, detail, available, None, threshold
        )

    if observation is None:
        return blocked(Reason.MISSING_OBSERVATION, "no observation of this address yet")
    if isinstance(observation, ObservationFailure):
        return blocked(Reason.OBSERVATION_ERROR, observation.message)
    if _stale(observation, inputs.now, inputs.max_observation_age):
        age = inputs.now - observation.read_at
        return blocked(
            Reason.STALE_OBSERVATION,
            f"last read {age:.0f}s ago (limit {inputs.max_observation_age:.0f}s)",
            observation.available,
        )
    available = observation.available
    orders = open_by_address.get(address, [])
    pending = sum(order.energy for order in orders)
    effective = available + pending

    # An ambiguous order may not exist at all: its energy is not counted on, and the
    # address is held (invariant 3) whenever the chain shows it short.
    unresolved = [o.client_order_id for o in orders if o.phase == "unknown"]
    if unresolved and available < threshold:
        return blocked(
            Reason.UNRESOLVED_ORDER,
            f"order {unresolved[0]} has an ambiguous outcome; held until resolved",
            available,
        )
    if effective >= threshold:
        condition = Condition.TOP_UP_PENDING if orders and available < threshold else None
        return Assessment(
            address,
            policy,
            condition or Condition.HEALTHY,
            Reason.ORDER_OPEN if condition else Reason.ENOUGH_ENERGY,
            f"{pending} energy on order" if condition else f"{effective} >= {threshold}",
            available,
            effective,
            threshold,
        )
    if not observation.activated:
        return blocked(
            Reason.NOT_ACTIVATED, "address not activated: energy cannot be delegated to it", 0
        )
    if len(orders) >= spec.max_open_orders:
        return Assessment(
            address,
            policy,
            Condition.TOP_UP_PENDING,
            Reason.ORDER_OPEN,
            f"{len(orders)} open order(s), {pending} energy pending",
            available,
            effective,
            threshold,
        )
    last = inputs.last_order_at.get(address)
    if spec.cooldown and last is not None and inputs.now - last < spec.cooldown:
        wait = spec.cooldown - (inputs.now - last)
        return blocked(
            Reason.COOLDOWN,
            f"last top-up {inputs.now - last:.0f}s ago; "
            f"cooldown {spec.cooldown}s, {wait:.0f}s left",
            available,
        )

    top_up = spec.top_up
    if top_up.amount is not None:
        need = max(top_up.amount, threshold - effective)
    else:
        need = max(top_up.target or 0, threshold) - effective
    duration = top_up.duration

    candidates: list[Candidate] = []
    rejected: list[tuple[str, str]] = []
    for name in spec.providers:
        view = inputs.providers.get(name)
        if view is None:
            rejected.append((name, "not configured"))
            continue
        caps = view.capabilities
        if not caps.accepts_duration(duration):
            rejected.append((name, f"does not sell {duration}s"))
            continue
        energy = caps.fit_amount(need)
        if energy is None:
            rejected.append((name, f"{need} is above its maximum {caps.max_amount}"))
            continue
        if spec.exclusive and not caps.exclusive:
            rejected.append((name, "cannot honour exclusive"))
            continue
        if view.cooling_until is not None and view.cooling_until > inputs.now:
            rejected.append(
                (name, f"cooling down for {view.cooling_until - inputs.now:.0f}s after failures")
            )
            continue
        candidates.append(Candidate(name, energy, duration))
    detail = f"{effective} < {threshold}: wants {need} for {duration}s"
    return Assessment(
        address,
        policy,
        Condition.BELOW_THRESHOLD,
        Reason.NEEDS_TOP_UP,
        detail,
        available,
        effective,
        threshold,
        need,
        duration,
        tuple(candidates),
        tuple(rejected),
    )


def assess(inputs: PlanInputs) -> list[Assessment]:
    """Step 1: what each watched address needs and which providers could serve it."""
    open_by_address: dict[str, list[OrderRecord]] = {}
    for order in inputs.open_orders:
        open_by_address.setdefault(order.address, []).append(order)
    result = []
    for policy in inputs.policies:
        for address in policy.spec.addresses:
            result.append(_assess_one(address, policy, inputs, open_by_address))
    return result


def quote_requests(assessments: Iterable[Assessment]) -> set[QuoteKey]:
    """The quotes step 2 needs: one per (candidate provider, amount, duration)."""
    keys: set[QuoteKey] = set()
    for item in assessments:
        for cand in item.candidates:
            keys.add(QuoteKey(cand.provider, cand.energy, cand.duration))
    return keys


# --------------------------------------------------------------------------- step 2


def _budget_room(
    policy: EnergyPolicy, spent: Mapping[tuple[str, BudgetWindow], int]
) -> list[tuple[BudgetWindow, int]]:
    budget = policy.spec.budget
    room = []
    for window, limit in (
        (BudgetWindow.DAY, budget.per_day),
        (BudgetWindow.MONTH, budget.per_month),
    ):
        if limit is not None:
            room.append((window, limit - spent.get((policy.metadata.name, window), 0)))
    return room


def _describe_quote_error(error: ProviderError) -> str:
    kind = "temporary" if isinstance(error, TemporaryError) else "failed"
    return f"quote {kind}: {error}"


def plan(
    inputs: PlanInputs,
    assessments: Sequence[Assessment],
    quotes: Mapping[QuoteKey, Quote | ProviderError],
) -> Plan:
    """Step 2: choose providers within price cap, balance and budgets; gate the count."""
    spent: dict[tuple[str, BudgetWindow], int] = dict(inputs.spent)
    committed: dict[str, int] = {}  # provider -> sun taken by earlier actions of this plan
    actions_left = inputs.max_actions
    entries: list[AddressPlan] = []
    for item in assessments:
        name = item.policy.metadata.name
        if item.condition is not Condition.BELOW_THRESHOLD:
            entries.append(
                AddressPlan(
                    item.address,
                    name,
                    item.condition,
                    item.reason,
                    item.detail,
                    item.available,
                    item.effective,
                    item.threshold,
                    rejected=item.rejected,
                )
            )
            continue
        spec = item.policy.spec
        rejected = list(item.rejected)
        viable: list[Candidate] = []
        blocking = Reason.NO_PROVIDER
        for cand in item.candidates:
            quote = quotes.get(QuoteKey(cand.provider, cand.energy, cand.duration))
            if quote is None:
                rejected.append((cand.provider, "no quote this pass"))
                continue
            if isinstance(quote, ProviderError):
                rejected.append((cand.provider, _describe_quote_error(quote)))
                continue
            cap = cap_total(spec.max_price, cand.energy)
            if quote.total_sun > cap:
                rejected.append(
                    (cand.provider, f"quote {quote.total_sun} sun > price cap {cap} sun")
                )
                blocking = Reason.PRICE_CAP if not viable else blocking
                continue
            view = inputs.providers[cand.provider]
            if view.balance_sun is not None:
                left = view.balance_sun - committed.get(cand.provider, 0)
                if left < quote.total_sun:
                    rejected.append((cand.provider, f"balance {left} sun < {quote.total_sun}"))
                    continue
            over = [
                (window, room)
                for window, room in _budget_room(item.policy, spent)
                if room < quote.total_sun
            ]
            if over:
                window, room = over[0]
                rejected.append(
                    (
                        cand.provider,
                        f"{window} budget has {max(room, 0)} sun left, "
                        f"order costs {quote.total_sun}",
                    )
                )
                blocking = Reason.BUDGET if blocking is not Reason.PRICE_CAP else blocking
                continue
            viable.append(Candidate(cand.provider, cand.energy, cand.duration, quote.total_sun))
        if not viable:
            if not item.candidates:
                blocking = Reason.NO_PROVIDER
            why = "; ".join(f"{p}: {w}" for p, w in rejected) or "no provider listed"
            entries.append(
                AddressPlan(
                    item.address,
                    name,
                    Condition.BLOCKED,
                    blocking,
                    why,
                    item.available,
                    item.effective,
                    item.threshold,
                    rejected=tuple(rejected),
                )
            )
            continue
        if actions_left <= 0:
            entries.append(
                AddressPlan(
                    item.address,
                    name,
                    Condition.BLOCKED,
                    Reason.GATE,
                    f"more than {inputs.max_actions} purchases this pass; next pass",
                    item.available,
                    item.effective,
                    item.threshold,
                    rejected=tuple(rejected),
                )
            )
            continue
        actions_left -= 1
        first = viable[0]
        cost = first.quote_sun or 0
        committed[first.provider] = committed.get(first.provider, 0) + cost
        for window, _room in _budget_room(item.policy, spent):
            spent[(name, window)] = spent.get((name, window), 0) + cost
        action = Action(
            address=item.address,
            policy=name,
            candidates=tuple(viable),
            max_total_sun=cap_total(spec.max_price, first.energy),
            exclusive=spec.exclusive,
            prevent_duplicates=spec.prevent_duplicates,
            max_open=spec.max_open_orders,
            reason=item.detail,
            max_price_milli=spec.max_price,
        )
        entries.append(
            AddressPlan(
                item.address,
                name,
                Condition.BELOW_THRESHOLD,
                Reason.NEEDS_TOP_UP,
                item.detail,
                item.available,
                item.effective,
                item.threshold,
                action=action,
                rejected=tuple(rejected),
            )
        )
    return Plan(tuple(entries), inputs.now)
