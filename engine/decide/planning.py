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
from dataclasses import dataclass, replace

from engine.core.records import BudgetWindow, OrderRecord
from engine.core.snapshots import EnergySnapshot
from engine.core.usage import Forecast, forecast
from engine.decide import sizing
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
    Rental,
    UseSummary,
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
    "Rental",
    "UseSummary",
    "assess",
    "plan",
    "quote_requests",
]

# --------------------------------------------------------------------------- step 1


def _stale(snapshot: EnergySnapshot, now: float, max_age: float) -> bool:
    return now - snapshot.read_at > max_age


def _blocked(
    address: str,
    policy: EnergyPolicy,
    threshold: int,
    reason: Reason,
    detail: str,
    available: int | None = None,
) -> Assessment:
    return Assessment(
        address, policy, Condition.BLOCKED, reason, detail, available, None, threshold
    )


def _unusable(
    observation: EnergySnapshot | ObservationFailure | None, inputs: PlanInputs
) -> tuple[Reason, str, int | None] | None:
    """Why no decision can be made on `observation` (never buy blind), or None."""
    if observation is None:
        return Reason.MISSING_OBSERVATION, "no observation of this address yet", None
    if isinstance(observation, ObservationFailure):
        return Reason.OBSERVATION_ERROR, observation.message, None
    if _stale(observation, inputs.now, inputs.max_observation_age):
        age = inputs.now - observation.read_at
        limit = inputs.max_observation_age
        return (
            Reason.STALE_OBSERVATION,
            f"last read {age:.0f}s ago (limit {limit:.0f}s)",
            observation.available,
        )
    return None


def _held(
    address: str,
    policy: EnergyPolicy,
    inputs: PlanInputs,
    observation: EnergySnapshot,
    orders: Sequence[OrderRecord],
    threshold: int,
    available: int,
    ending: str = "",
) -> Assessment | None:
    """The assessment of an address that needs no purchase now, or is held; None when it
    needs topping up. `available`: what it will have once the rentals ending within the
    policy's renewal lead time have ended (`ending` says which, for the detail)."""
    spec = policy.spec
    pending = sum(order.energy for order in orders)
    effective = available + pending
    # An ambiguous order may not exist at all: its energy is not counted on, and the
    # address is held (invariant 3) whenever the chain shows it short.
    unresolved = [o.client_order_id for o in orders if o.phase == "unknown"]
    if unresolved and available < threshold:
        return _blocked(
            address,
            policy,
            threshold,
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
            f"{pending} energy on order" if condition else f"{effective} >= {threshold}{ending}",
            observation.available,
            effective,
            threshold,
        )
    if not observation.activated:
        return _blocked(
            address,
            policy,
            threshold,
            Reason.NOT_ACTIVATED,
            "address not activated: energy cannot be delegated to it",
            0,
        )
    if len(orders) >= spec.max_open_orders:
        return Assessment(
            address,
            policy,
            Condition.TOP_UP_PENDING,
            Reason.ORDER_OPEN,
            f"{len(orders)} open order(s), {pending} energy pending",
            observation.available,
            effective,
            threshold,
        )
    last = inputs.last_order_at.get(address)
    if spec.cooldown and last is not None and inputs.now - last < spec.cooldown:
        wait = spec.cooldown - (inputs.now - last)
        return _blocked(
            address,
            policy,
            threshold,
            Reason.COOLDOWN,
            f"last top-up {inputs.now - last:.0f}s ago; "
            f"cooldown {spec.cooldown}s, {wait:.0f}s left",
            available,
        )
    return None


#: the durations `duration: auto` considers (5 and 10 minutes, 1 and 3 hours, 1, 2, 3, 7,
#: 14 and 30 days), where the listed providers sell them
AUTO_LADDER = (300, 600, 3600, 3 * 3600, 86_400, 2 * 86_400, 3 * 86_400, 7 * 86_400,
               14 * 86_400, 30 * 86_400)  # fmt: skip


def _durations(policy: EnergyPolicy, inputs: PlanInputs) -> tuple[int, ...]:
    """The durations a purchase may have: the policy's list, or (auto) every one on
    `AUTO_LADDER` the listed providers sell (a provider selling any length sells the
    others' durations)."""
    allowed = policy.spec.top_up.durations
    if allowed is not None:
        return allowed
    found: set[int] = set()
    free: list[tuple[int, int | None]] = []
    for name in policy.spec.providers:
        view = inputs.providers.get(name)
        if view is None:
            continue
        caps = view.capabilities
        if caps.durations is not None:
            found.update(caps.durations)
        else:
            free.append((caps.min_duration, caps.max_duration))
    if not found:
        found = {max(3600, low) for low, _high in free}
    # every duration is a quote per provider each time an address is short: a vendor
    # selling every whole day to 30 would cost 30 quotes where 5 tell the same story
    on_ladder = found & set(AUTO_LADDER)
    return tuple(sorted(on_ladder or {min(found)}))


@dataclass(frozen=True, slots=True)
class _Need:
    """What one address needs, as inputs to sizing each candidate."""

    observation: EnergySnapshot
    effective: int
    threshold: int
    forecast: Forecast
    rentals: Sequence[Rental]
    rolling: sizing.Rolling | None = None

    @property
    def shortfall(self) -> int:
        return max(0, self.threshold - self.effective)


def _amount(policy: EnergyPolicy, need: _Need, duration: int, now: float) -> int:
    top_up = policy.spec.top_up
    if top_up.amount is not None:
        return max(top_up.amount, need.shortfall)
    if top_up.target is not None:
        return max(top_up.target, need.threshold) - need.effective
    assert top_up.auto is not None
    if need.rolling is not None:  # the shortfall below the rolling level, nothing more
        return need.shortfall
    seen = need.observation
    return sizing.auto_amount(
        need.forecast,
        top_up.auto,
        now=now,
        used=seen.used,
        limit=seen.limit,
        rentals=need.rentals,
        duration=duration,
        shortfall=need.shortfall,
    )


def _candidates(
    policy: EnergyPolicy, need: _Need, durations: Sequence[int], inputs: PlanInputs
) -> tuple[list[Candidate], list[tuple[str, str]]]:
    """The policy's providers that could sell what is needed for one of `durations`, and
    why the others cannot (in the policy's order)."""
    spec = policy.spec
    candidates: list[Candidate] = []
    rejected: list[tuple[str, str]] = []
    auto = spec.top_up.auto
    for name in spec.providers:
        view = inputs.providers.get(name)
        if view is None:
            rejected.append((name, "not configured"))
            continue
        caps = view.capabilities
        sold = [d for d in durations if caps.accepts_duration(d)]
        if not sold:
            text = ", ".join(f"{d}s" for d in durations)
            rejected.append((name, f"does not sell {text}"))
            continue
        if spec.exclusive and not caps.exclusive:
            rejected.append((name, "cannot honour exclusive"))
            continue
        if view.cooling_until is not None and view.cooling_until > inputs.now:
            rejected.append(
                (name, f"cooling down for {view.cooling_until - inputs.now:.0f}s after failures")
            )
            continue
        for duration in sold:
            wanted = _amount(policy, need, duration, inputs.now)
            energy = caps.fit_amount(wanted)
            if energy is None:
                rejected.append((name, f"{wanted} is above its maximum {caps.max_amount}"))
                continue
            if need.rolling is not None:
                served = sizing.served_rolling(
                    need.forecast, need.rolling, now=inputs.now, energy=energy, duration=duration
                )
            else:
                alongside = sizing.staying(
                    need.observation.limit, need.rentals, inputs.now + duration
                )
                served = sizing.served(
                    need.forecast, now=inputs.now, energy=energy, duration=duration,
                    next_need=auto.at_least if auto is not None else energy, alongside=alongside,
                )  # fmt: skip
            candidates.append(Candidate(name, energy, duration, served=served))
    return candidates, rejected


def _forecast(address: str, policy: EnergyPolicy, inputs: PlanInputs) -> Forecast:
    declared = policy.spec.expected_use
    return forecast(inputs.usage.get(address), declared.per_day if declared is not None else None)


def _assess_one(
    address: str,
    policy: EnergyPolicy,
    inputs: PlanInputs,
    open_by_address: Mapping[str, list[OrderRecord]],
) -> Assessment:
    spec = policy.spec
    threshold = max(spec.threshold, inputs.demands.get(address, 0))
    observation = inputs.observations.get(address)
    unusable = _unusable(observation, inputs)
    if unusable is not None:
        return _blocked(address, policy, threshold, *unusable)
    assert isinstance(observation, EnergySnapshot)
    orders = open_by_address.get(address, [])
    rentals = [r for r in inputs.rentals.get(address, ()) if r.ends_at > inputs.now]
    fc = _forecast(address, policy, inputs)
    available, ending_text = observation.available, ""
    lead = spec.renewal_lead
    auto = spec.top_up.auto
    rolling: sizing.Rolling | None = None
    if auto is not None and fc.known:
        # a rolling level: enough for the use expected over the lead time, the rentals
        # ending meanwhile counted out (see engine/decide/sizing.py)
        rolling = sizing.rolling(
            fc, auto, now=inputs.now, used=observation.used, limit=observation.limit,
            rentals=rentals, lead=lead or 3600,
        )  # fmt: skip
        threshold = max(threshold, rolling.threshold)
        if rolling.ending:
            available = rolling.available
            ending_text = f" ({rolling.ending} energy ends within {lead}s: {available} after)"
    elif lead and rentals and auto is None:
        ending = [r for r in rentals if r.renewal_due(inputs.now, lead)]
        if ending:
            energy = sum(r.energy for r in ending)
            available = sizing.after_endings(observation.available, observation.limit, energy)
            ending_text = f" ({energy} energy ends within {lead}s: {available} after)"
    held = _held(address, policy, inputs, observation, orders, threshold, available, ending_text)
    if held is not None:
        return held
    effective = available + sum(order.energy for order in orders)
    need = _Need(observation, effective, threshold, fc, rentals, rolling)
    durations = _durations(policy, inputs)
    candidates, rejected = _candidates(policy, need, durations, inputs)
    wants = _amount(policy, need, durations[0], inputs.now)
    shown = f"{durations[0]}s" if len(durations) == 1 else f"one of {len(durations)} durations"
    detail = f"{effective} < {threshold}{ending_text}: wants {wants} for {shown}"
    if spec.top_up.auto is not None:
        detail += f" (expected use {fc.per_day:.0f}/day, {fc.source})"
    return Assessment(
        address,
        policy,
        Condition.BELOW_THRESHOLD,
        Reason.NEEDS_TOP_UP,
        detail,
        observation.available,
        effective,
        threshold,
        wants,
        durations[0] if len(durations) == 1 else 0,
        tuple(candidates),
        tuple(rejected),
    )


def _use(address: str, policy: EnergyPolicy, inputs: PlanInputs) -> UseSummary:
    fc = _forecast(address, policy, inputs)
    profile = inputs.usage.get(address)
    week = profile.last_week(inputs.now) if profile is not None else 0
    return UseSummary(round(fc.per_day), week, fc.source, round(fc.burst))


def assess(inputs: PlanInputs) -> list[Assessment]:
    """Step 1: what each watched address needs and which providers could serve it."""
    open_by_address: dict[str, list[OrderRecord]] = {}
    for order in inputs.open_orders:
        open_by_address.setdefault(order.address, []).append(order)
    result = []
    for policy in inputs.policies:
        for address in policy.spec.addresses:
            item = _assess_one(address, policy, inputs, open_by_address)
            result.append(replace(item, use=_use(address, policy, inputs)))
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


def _entry(
    item: Assessment,
    condition: Condition,
    reason: Reason,
    detail: str,
    rejected: Sequence[tuple[str, str]],
    action: Action | None = None,
) -> AddressPlan:
    return AddressPlan(
        item.address,
        item.policy.metadata.name,
        condition,
        reason,
        detail,
        item.available,
        item.effective,
        item.threshold,
        action=action,
        rejected=tuple(rejected),
        use=item.use,
    )


def _refusal(
    cand: Candidate,
    quote: Quote | ProviderError | None,
    policy: EnergyPolicy,
    inputs: PlanInputs,
    committed: Mapping[str, int],
    spent: Mapping[tuple[str, BudgetWindow], int],
) -> tuple[str, Reason | None] | None:
    """Why `cand` cannot be bought from at `quote` (and whether that is the price cap or
    a budget, which name the address's block), or None when it can."""
    if quote is None:
        return "no quote this pass", None
    if isinstance(quote, ProviderError):
        return _describe_quote_error(quote), None
    cap = cap_total(policy.spec.max_price, cand.energy)
    if quote.total_sun > cap:
        return f"quote {quote.total_sun} sun > price cap {cap} sun", Reason.PRICE_CAP
    view = inputs.providers[cand.provider]
    if view.balance_sun is not None:
        left = view.balance_sun - committed.get(cand.provider, 0)
        if left < quote.total_sun:
            return f"balance {left} sun < {quote.total_sun}", None
    over = [(w, room) for w, room in _budget_room(policy, spent) if room < quote.total_sun]
    if over:
        window, room = over[0]
        text = f"{window} budget has {max(room, 0)} sun left, order costs {quote.total_sun}"
        return text, Reason.BUDGET
    return None


def _viable(
    item: Assessment,
    quotes: Mapping[QuoteKey, Quote | ProviderError],
    inputs: PlanInputs,
    committed: Mapping[str, int],
    spent: Mapping[tuple[str, BudgetWindow], int],
) -> tuple[list[Candidate], list[tuple[str, str]], Reason, list[Candidate]]:
    """The candidates that pass price cap, balance and budgets, best first (see
    `_ranked`); every refusal; what blocks the address if none passes; and every
    candidate quoted, with its quote and why it was refused."""
    rejected = list(item.rejected)
    viable: list[Candidate] = []
    compared: list[Candidate] = []
    blocking = Reason.NO_PROVIDER
    several = len({c.duration for c in item.candidates}) > 1
    for cand in item.candidates:
        quote = quotes.get(QuoteKey(cand.provider, cand.energy, cand.duration))
        refusal = _refusal(cand, quote, item.policy, inputs, committed, spent)
        quoted = replace(cand, quote_sun=quote.total_sun) if isinstance(quote, Quote) else cand
        if refusal is None:
            viable.append(quoted)
            continue
        text, kind = refusal
        compared.append(replace(quoted, note=text))
        rejected.append((cand.provider, f"{cand.duration}s: {text}" if several else text))
        if kind is Reason.PRICE_CAP and not viable:
            blocking = Reason.PRICE_CAP
        elif kind is Reason.BUDGET and blocking is not Reason.PRICE_CAP:
            blocking = Reason.BUDGET
    ranked = _ranked(item.policy, viable)
    return ranked, rejected, blocking, ranked + compared


def _ranked(policy: EnergyPolicy, viable: Sequence[Candidate]) -> list[Candidate]:
    """Best first, one candidate per provider (its best duration). `priority`: the
    policy's order, then the lowest cost per unit of energy expected to be used;
    `cheapest`: that cost first, the policy's order breaking ties."""
    order = {name: i for i, name in enumerate(policy.spec.providers)}

    def cost(c: Candidate) -> tuple[int, int]:
        return (c.per_used_milli or 0, c.duration)

    if policy.spec.strategy == "cheapest":
        ranked = sorted(viable, key=lambda c: (cost(c), order.get(c.provider, 0)))
    else:
        ranked = sorted(viable, key=lambda c: (order.get(c.provider, 0), cost(c)))
    best: list[Candidate] = []
    for cand in ranked:
        if all(b.provider != cand.provider for b in best):
            best.append(cand)
    return best


def _why(policy: EnergyPolicy, chosen: Candidate, compared: Sequence[Candidate]) -> str:
    """Why `chosen` won, in words for `energyctl plan`."""
    price = (chosen.per_used_milli or 0) / 1000
    quoted = sum(1 for c in compared if c.quote_sun is not None)
    if policy.spec.strategy == "cheapest":
        tied = [
            c.provider
            for c in compared
            if c is not chosen and not c.note and c.per_used_milli == chosen.per_used_milli
        ]
        tie = f"; tied with {', '.join(tied)}, first in the policy's list" if tied else ""
        return (
            f"cheapest of {quoted} quote(s): {price:g} sun per unit of energy expected to "
            f"be used ({chosen.quote_sun} sun for {chosen.energy} over {chosen.duration}s){tie}"
        )
    return (
        f"first provider in the policy's list that can serve ({quoted} quote(s)); "
        f"{price:g} sun per unit of energy expected to be used"
    )


def _take(
    item: Assessment,
    viable: Sequence[Candidate],
    committed: dict[str, int],
    spent: dict[tuple[str, BudgetWindow], int],
) -> Action:
    """The action for `item`; its first candidate's cost is counted against the provider's
    balance and the policy's budgets for the rest of the plan."""
    spec, name = item.policy.spec, item.policy.metadata.name
    first = viable[0]
    cost = first.quote_sun or 0
    committed[first.provider] = committed.get(first.provider, 0) + cost
    for window, _room in _budget_room(item.policy, spent):
        spent[(name, window)] = spent.get((name, window), 0) + cost
    return Action(
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
        if item.condition is not Condition.BELOW_THRESHOLD:
            entries.append(_entry(item, item.condition, item.reason, item.detail, item.rejected))
            continue
        viable, rejected, blocking, compared = _viable(item, quotes, inputs, committed, spent)
        if not viable:
            why = "; ".join(f"{p}: {w}" for p, w in rejected) or "no provider listed"
            entry = _entry(item, Condition.BLOCKED, blocking, why, rejected)
            entries.append(replace(entry, compared=tuple(compared)))
        elif actions_left <= 0:
            gate = f"more than {inputs.max_actions} purchases this pass; next pass"
            entry = _entry(item, Condition.BLOCKED, Reason.GATE, gate, rejected)
            entries.append(replace(entry, compared=tuple(compared)))
        else:
            actions_left -= 1
            action = _take(item, viable, committed, spent)
            chosen = viable[0]
            shown = tuple(
                replace(c, note="chosen") if c is chosen else (c if c.note else replace(
                    c, note="fallback" if c in viable else "dearer per unit used"))
                for c in compared
            )  # fmt: skip
            entry = _entry(
                item,
                Condition.BELOW_THRESHOLD,
                Reason.NEEDS_TOP_UP,
                item.detail,
                rejected,
                action,
            )
            why = _why(item.policy, chosen, compared)
            entries.append(replace(entry, compared=shown, why=why))
    return Plan(tuple(entries), inputs.now)
