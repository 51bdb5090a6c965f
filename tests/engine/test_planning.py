"""Table tests of the pure planner (engine/decide/planning.py)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from tronpy.keys import PrivateKey

from engine.core.phases import OrderPhase
from engine.core.records import BudgetWindow, OrderRecord
from engine.core.snapshots import EnergySnapshot
from engine.decide.planning import (
    Condition,
    ObservationFailure,
    PlanInputs,
    ProviderView,
    QuoteKey,
    Reason,
    assess,
    plan,
    quote_requests,
)
from policies.models import EnergyPolicy
from providers.base import (
    Capabilities,
    ErrorReason,
    PermanentError,
    ProviderError,
    Quote,
    TemporaryError,
)

NOW = 1_767_225_600.0
ADDR = [PrivateKey(bytes([i + 1]) * 32).public_key.to_base58check_address() for i in range(4)]

CAPS = {
    # eopen-like: fixed periods, minimum 64k
    "p-eopen": Capabilities(durations=(600, 3600, 86400), min_amount=64_000),
    # mefree-like: minimum 65k
    "p-mefree": Capabilities(durations=(3600, 86400), min_amount=65_000, idempotency_key=True),
    # itrx-like: exclusive
    "p-itrx": Capabilities(durations=(3600, 86400), min_amount=10_000, exclusive=True),
    # tronsave-like: any duration from 300 s, max 1M
    "p-ts": Capabilities(min_duration=300, min_amount=32_000, max_amount=1_000_000),
}


def policy(**spec: Any) -> EnergyPolicy:
    base: dict[str, Any] = {
        "addresses": [ADDR[0]],
        "threshold": "65k",
        "topUp": {"amount": "131k", "duration": "1h"},
        "providers": ["p-mefree", "p-eopen"],
        "maxPrice": "100 sun/energy",
        "budget": {"perDay": "1000 TRX"},
    }
    base.update(spec)
    return EnergyPolicy.model_validate(
        {
            "apiVersion": "energyctl/v1",
            "kind": "EnergyPolicy",
            "metadata": {"name": "pol"},
            "spec": base,
        }
    )


def snap(
    address: str = ADDR[0], available: int = 0, *, age: float = 1.0, activated: bool = True
) -> EnergySnapshot:
    return EnergySnapshot(
        address=address,
        activated=activated,
        available=available,
        limit=available,
        used=0,
        delegated_in=0,
        block=100,
        read_at=NOW - age,
    )


def order(
    address: str = ADDR[0],
    energy: int = 131_000,
    phase: OrderPhase = OrderPhase.SUBMITTED,
    created: float = NOW - 10,
) -> OrderRecord:
    return OrderRecord(
        client_order_id=f"c-{address[:6]}-{phase}",
        policy="pol",
        address=address,
        provider="p-mefree",
        energy=energy,
        duration=3600,
        phase=phase,
        reserved_sun=1,
        created_at=created,
        updated_at=created,
    )


def views(**overrides: ProviderView) -> dict[str, ProviderView]:
    out = {name: ProviderView(name, caps) for name, caps in CAPS.items()}
    out.update(overrides)
    return out


def price_all(
    inputs: PlanInputs, unit_milli: int = 80_000, errors: dict[str, ProviderError] | None = None
) -> dict[QuoteKey, Quote | ProviderError]:
    """Quote every requested key at a flat unit price (milli-sun per energy)."""
    quotes: dict[QuoteKey, Quote | ProviderError] = {}
    for key in quote_requests(assess(inputs)):
        if errors and key.provider in errors:
            quotes[key] = errors[key.provider]
        else:
            quotes[key] = Quote(
                provider=key.provider,
                energy=key.energy,
                duration=key.duration,
                total_sun=unit_milli * key.energy // 1000,
            )
    return quotes


def run(inputs: PlanInputs, **kw: Any):  # type: ignore[no-untyped-def]
    assessments = assess(inputs)
    return plan(inputs, assessments, price_all(inputs, **kw))


def inputs(pol: EnergyPolicy | None = None, **kw: Any) -> PlanInputs:
    pol = pol or policy()
    base: dict[str, Any] = {
        "policies": [pol],
        "observations": {ADDR[0]: snap()},
        "open_orders": [],
        "providers": views(),
        "now": NOW,
    }
    base.update(kw)
    return PlanInputs(**base)


# --------------------------------------------------------------------------- threshold and amount


@pytest.mark.parametrize(
    ("available", "top_up", "condition", "energy"),
    [
        (65_000, {"amount": "131k", "duration": "1h"}, Condition.HEALTHY, None),  # at threshold
        (64_999, {"amount": "131k", "duration": "1h"}, Condition.BELOW_THRESHOLD, 131_000),
        (0, {"amount": "131k", "duration": "1h"}, Condition.BELOW_THRESHOLD, 131_000),
        # target: buy what reaches the target
        (30_000, {"target": "200k", "duration": "1h"}, Condition.BELOW_THRESHOLD, 170_000),
        # target arithmetic rounded up to the provider's minimum (mefree 65k)
        (60_000, {"target": "100k", "duration": "1h"}, Condition.BELOW_THRESHOLD, 65_000),
    ],
)
def test_threshold_and_amount(
    available: int, top_up: dict[str, str], condition: Condition, energy: int | None
) -> None:
    result = run(inputs(policy(topUp=top_up), observations={ADDR[0]: snap(available=available)}))
    (entry,) = result.entries
    assert entry.condition is condition
    if energy is None:
        assert entry.action is None
    else:
        assert entry.action is not None
        assert entry.action.first.provider == "p-mefree"
        assert entry.action.first.energy == energy
        assert entry.action.first.duration == 3600


def test_fixed_amount_covers_a_deeper_demand() -> None:
    # ensure 300k now: the fixed top-up of 131k would not reach it
    result = run(
        inputs(demands={ADDR[0]: 300_000}, observations={ADDR[0]: snap(available=100_000)})
    )
    (entry,) = result.entries
    assert entry.threshold == 300_000
    assert entry.action is not None and entry.action.first.energy == 200_000


def test_pending_orders_count_toward_effective_energy() -> None:
    result = run(inputs(open_orders=[order()], observations={ADDR[0]: snap(available=10_000)}))
    (entry,) = result.entries
    assert entry.condition is Condition.TOP_UP_PENDING
    assert entry.effective == 141_000
    assert entry.action is None


def test_open_order_blocks_a_second_one_even_when_short() -> None:
    # the open order is too small to reach the threshold; one open order per address
    result = run(inputs(open_orders=[order(energy=1_000)]))
    (entry,) = result.entries
    assert entry.condition is Condition.TOP_UP_PENDING
    assert entry.reason is Reason.ORDER_OPEN
    assert result.actions == []


def test_max_open_orders_two_allows_a_second_order() -> None:
    result = run(inputs(policy(maxOpenOrders=2), open_orders=[order(energy=1_000)]))
    assert len(result.actions) == 1


# --------------------------------------------------------------------------- providers


@pytest.mark.parametrize(
    ("providers", "duration", "expected", "rejected_any"),
    [
        (["p-mefree", "p-eopen"], "1h", "p-mefree", False),
        (["p-eopen", "p-mefree"], "1h", "p-eopen", False),  # priority order
        (["p-mefree", "p-eopen"], "10m", "p-eopen", True),  # mefree does not sell 10 min
        (["p-mefree", "p-ts"], "2h", "p-ts", True),  # only tronsave sells any duration
        (["p-mefree", "p-eopen"], "2h", None, True),  # nobody sells 2 h
    ],
)
def test_durations_and_priority(
    providers: list[str], duration: str, expected: str | None, rejected_any: bool
) -> None:
    pol = policy(providers=providers, topUp={"amount": "131k", "duration": duration})
    (entry,) = run(inputs(pol)).entries
    if expected is None:
        assert entry.condition is Condition.BLOCKED
        assert entry.reason is Reason.NO_PROVIDER
        assert entry.action is None
    else:
        assert entry.action is not None and entry.action.first.provider == expected
    assert bool(entry.rejected) is rejected_any


def test_minimums_round_up_per_provider() -> None:
    pol = policy(
        providers=["p-ts", "p-mefree"], topUp={"amount": "20k", "duration": "1h"}, threshold="20k"
    )
    (entry,) = run(inputs(pol)).entries
    assert entry.action is not None
    assert [(c.provider, c.energy) for c in entry.action.candidates] == [
        ("p-ts", 32_000),
        ("p-mefree", 65_000),
    ]


def test_above_maximum_skips_provider() -> None:
    pol = policy(
        providers=["p-ts", "p-mefree"],
        topUp={"amount": "2M", "duration": "1h"},
        budget={"perDay": "100000 TRX"},
    )
    (entry,) = run(inputs(pol)).entries
    assert entry.action is not None and entry.action.first.provider == "p-mefree"
    assert entry.rejected[0][0] == "p-ts"


def test_fallback_candidates_follow_priority() -> None:
    pol = policy(providers=["p-mefree", "p-eopen", "p-ts"])
    (entry,) = run(inputs(pol)).entries
    assert entry.action is not None
    assert [c.provider for c in entry.action.candidates] == ["p-mefree", "p-eopen", "p-ts"]


def test_cooling_provider_is_skipped_until_cooldown_ends() -> None:
    cooling = views(
        **{"p-mefree": ProviderView("p-mefree", CAPS["p-mefree"], cooling_until=NOW + 30)}
    )
    (entry,) = run(inputs(providers=cooling)).entries
    assert entry.action is not None and entry.action.first.provider == "p-eopen"
    assert "cooling" in entry.rejected[0][1]
    later = replace(inputs(providers=cooling), now=NOW + 31, observations={ADDR[0]: snap(age=-30)})
    (entry,) = run(later).entries
    assert entry.action is not None and entry.action.first.provider == "p-mefree"


def test_quote_errors_fall_back() -> None:
    inp = inputs()
    errors: dict[str, ProviderError] = {
        "p-mefree": TemporaryError("p-mefree", "503"),
    }
    (entry,) = run(inp, errors=errors).entries
    assert entry.action is not None and entry.action.first.provider == "p-eopen"
    errors["p-eopen"] = PermanentError("p-eopen", "bad key", reason=ErrorReason.AUTH)
    (entry,) = run(inp, errors=errors).entries
    assert entry.condition is Condition.BLOCKED and entry.reason is Reason.NO_PROVIDER


def test_balance_is_shared_between_actions_of_one_plan() -> None:
    pol = policy(addresses=[ADDR[0], ADDR[1]])
    # 131k at 80 sun = 10.48 TRX; the balance covers one order, not two
    poor = views(**{"p-mefree": ProviderView("p-mefree", CAPS["p-mefree"], balance_sun=15_000_000)})
    result = run(
        inputs(pol, providers=poor, observations={ADDR[0]: snap(ADDR[0]), ADDR[1]: snap(ADDR[1])})
    )
    assert [a.first.provider for a in result.actions] == ["p-mefree", "p-eopen"]


# --------------------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("unit_milli", "max_price", "allowed"),
    [
        (100_000, "100 sun/energy", True),
        (100_001, "100 sun/energy", False),
        (95_500, "95.5 sun/energy", True),
        (95_501, "95.5 sun/energy", False),
    ],
)
def test_price_cap(unit_milli: int, max_price: str, allowed: bool) -> None:
    inp = inputs(policy(maxPrice=max_price, topUp={"amount": "100k", "duration": "1h"}))
    (entry,) = run(inp, unit_milli=unit_milli).entries
    if allowed:
        assert entry.action is not None
        assert entry.action.max_total_sun >= entry.action.first.quote_sun  # type: ignore[operator]
    else:
        assert entry.condition is Condition.BLOCKED and entry.reason is Reason.PRICE_CAP
        assert "price cap" in entry.detail


@pytest.mark.parametrize(
    ("window", "budget", "spent", "allowed"),
    [
        # 131k at 80 sun/energy = 10,480,000 sun
        (BudgetWindow.DAY, {"perDay": "20 TRX"}, 9_520_000, True),  # exactly at the limit
        (BudgetWindow.DAY, {"perDay": "20 TRX"}, 9_520_001, False),  # one sun over
        (BudgetWindow.MONTH, {"perMonth": "100 TRX"}, 89_520_000, True),
        (BudgetWindow.MONTH, {"perMonth": "100 TRX"}, 89_520_001, False),
        (BudgetWindow.MONTH, {"perDay": "20 TRX", "perMonth": "100 TRX"}, 95_000_000, False),
    ],
)
def test_budgets(window: BudgetWindow, budget: dict[str, str], spent: int, allowed: bool) -> None:
    inp = inputs(policy(budget=budget), spent={("pol", window): spent})
    (entry,) = run(inp).entries
    if allowed:
        assert entry.action is not None and entry.action.first.quote_sun == 10_480_000
    else:
        assert entry.condition is Condition.BLOCKED and entry.reason is Reason.BUDGET


def test_budget_counts_earlier_actions_of_the_same_plan() -> None:
    pol = policy(addresses=ADDR[:3], budget={"perDay": "25 TRX"})
    obs = {a: snap(a) for a in ADDR[:3]}
    result = run(inputs(pol, observations=obs))
    assert len(result.actions) == 2  # 2 x 10.48 TRX fit in 25 TRX, a third does not
    assert result.entries[2].reason is Reason.BUDGET


# --------------------------------------------------------------------------- holds


@pytest.mark.parametrize(
    ("observation", "reason"),
    [
        (None, Reason.MISSING_OBSERVATION),
        (ObservationFailure("node timed out"), Reason.OBSERVATION_ERROR),
        (snap(age=121), Reason.STALE_OBSERVATION),
        (snap(activated=False), Reason.NOT_ACTIVATED),
    ],
)
def test_never_buy_blind(
    observation: EnergySnapshot | ObservationFailure | None, reason: Reason
) -> None:
    obs = {} if observation is None else {ADDR[0]: observation}
    (entry,) = run(inputs(observations=obs)).entries
    assert entry.condition is Condition.BLOCKED and entry.reason is reason
    assert entry.action is None


def test_unresolved_order_holds_the_address_even_when_more_are_allowed() -> None:
    inp = inputs(
        policy(maxOpenOrders=3), open_orders=[order(energy=1_000, phase=OrderPhase.UNKNOWN)]
    )
    (entry,) = run(inp).entries
    assert entry.condition is Condition.BLOCKED and entry.reason is Reason.UNRESOLVED_ORDER


def test_unresolved_order_is_not_counted_as_pending_energy() -> None:
    # a big ambiguous order would lift effective energy above the threshold: still held
    inp = inputs(open_orders=[order(energy=500_000, phase=OrderPhase.UNKNOWN)])
    (entry,) = run(inp).entries
    assert entry.condition is Condition.BLOCKED and entry.reason is Reason.UNRESOLVED_ORDER
    assert entry.action is None


def test_policy_cooldown_between_top_ups() -> None:
    pol = policy(cooldown="5m")
    (entry,) = run(inputs(pol, last_order_at={ADDR[0]: NOW - 100})).entries
    assert entry.reason is Reason.COOLDOWN
    (entry,) = run(inputs(pol, last_order_at={ADDR[0]: NOW - 301})).entries
    assert entry.action is not None


def test_exclusive_only_uses_providers_that_can_honour_it() -> None:
    pol = policy(providers=["p-mefree", "p-itrx"], exclusive=True)
    (entry,) = run(inputs(pol)).entries
    assert entry.action is not None
    assert [c.provider for c in entry.action.candidates] == ["p-itrx"]
    assert entry.action.exclusive is True
    pol = policy(providers=["p-mefree"], exclusive=True)
    (entry,) = run(inputs(pol)).entries
    assert entry.reason is Reason.NO_PROVIDER and "exclusive" in entry.detail


def test_safety_gate_limits_actions_per_pass() -> None:
    pol = policy(addresses=ADDR, budget={"perDay": "10000 TRX"})
    result = run(inputs(pol, observations={a: snap(a) for a in ADDR}, max_actions=3))
    assert len(result.actions) == 3
    assert result.entries[3].reason is Reason.GATE


def test_plan_json_is_complete() -> None:
    data = run(inputs()).to_json()
    (entry,) = data["addresses"]
    assert entry["action"].pop("why").startswith("first provider in the policy's list")
    assert [c["note"] for c in entry["compared"]] == ["chosen", "fallback"]
    assert entry["action"] == {
        "provider": "p-mefree",
        "energy": 131_000,
        "duration": 3600,
        "estimated_cost_sun": 10_480_000,
        "fallbacks": ["p-eopen"],
    }
    assert data["estimated_cost_sun"] == 10_480_000
