"""The report's suggestions (engine/decide/suggesting.py) and the cost arithmetic they read
(engine/core/costs.py), by hand: each rule fires at its condition and stays quiet below it."""

from __future__ import annotations

from engine.core.costs import AddressCost, TransferCost, address_costs
from engine.core.phases import OrderPhase
from engine.core.records import OrderRecord
from engine.decide.suggesting import suggest
from tests.engine.test_planning import ADDR, policy

FEE = 100  # sun per energy when burning


def row(**figures: float) -> AddressCost:
    out = AddressCost()
    for key, value in figures.items():
        setattr(out, key, value)
    return out


def rules(found: list) -> set[str]:  # type: ignore[type-arg]
    return {s.rule for s in found}


def test_waste_suggests_auto_sizing_with_the_estimate_at_the_price_paid() -> None:
    # 1M for 3 days: capacity 4M; 1M used -> 75 % wasted; 150 TRX spent
    rows = {ADDR[0]: row(capacity=4_000_000.0, energy_used=1_000_000, spent_sun=150_000_000,
                         energy_needed=1_000_000, transfers=15)}  # fmt: skip
    fixed = policy(topUp={"amount": "1M", "duration": "3d"})
    waste = [s for s in suggest(fixed, rows, FEE) if s.rule == "waste"]
    assert len(waste) == 1
    assert waste[0].estimated_sun == 150_000_000 // 4 and waste[0].current_sun == 150_000_000
    assert "75% of the 3-day energy bought expired unused" in waste[0].text
    # auto sizing already: nothing to suggest; below half wasted: nothing either
    auto = policy(topUp={"auto": {}, "duration": "3d"})
    assert "waste" not in rules(suggest(auto, rows, FEE))
    rows[ADDR[0]].energy_used = 2_100_000  # 47.5 % wasted
    assert "waste" not in rules(suggest(fixed, rows, FEE))


def test_burn_suggests_a_higher_threshold_and_prices_the_burned_energy() -> None:
    # 20 TRX burned (200k energy at 100 sun) against 80 TRX spent on 2M of capacity
    rows = {ADDR[0]: row(capacity=2_000_000.0, energy_used=1_900_000, spent_sun=80_000_000,
                         burned_sun=20_000_000, transfers_burning=3, energy_needed=2_100_000,
                         transfers=30)}  # fmt: skip
    found = [s for s in suggest(policy(), rows, FEE) if s.rule == "burn"]
    assert len(found) == 1
    assert found[0].estimated_sun == 200_000 * 40  # 40 sun per energy of capacity
    assert "a higher threshold (now 65,000 energy)" in found[0].text
    auto = policy(topUp={"auto": {}, "duration": "1h"})
    assert "an earlier renewBefore" in next(s.text for s in suggest(auto, rows, FEE))
    rows[ADDR[0]].burned_sun = 8_000_000  # 9 % of the cost: below the share
    assert "burn" not in rules(suggest(policy(), rows, FEE))


def test_dearer_than_burning() -> None:
    rows = {ADDR[0]: row(capacity=1_000_000.0, energy_used=900_000, spent_sun=120_000_000,
                         energy_needed=1_000_000, transfers=15)}  # fmt: skip
    found = [s for s in suggest(policy(), rows, FEE) if s.rule == "dearer"]
    assert [(s.current_sun, s.estimated_sun) for s in found] == [(120_000_000, 100_000_000)]
    rows[ADDR[0]].spent_sun = 99_000_000
    assert "dearer" not in rules(suggest(policy(), rows, FEE))


def test_costs_count_spend_bought_and_capacity_like_the_simulator() -> None:
    def order(phase: OrderPhase, *, cost: int | None, refund: int | None = None) -> OrderRecord:
        return OrderRecord(
            client_order_id=f"ec-{phase}-{cost}", policy="pol", address=ADDR[0], provider="p",
            energy=100_000, duration=86_400, phase=phase, reserved_sun=9_000_000,
            cost_sun=cost, refund_sun=refund, created_at=0.0, updated_at=0.0,
        )  # fmt: skip

    orders = [
        order(OrderPhase.DELIVERED, cost=3_000_000),
        order(OrderPhase.FAILED, cost=5_000_000),  # ended uncharged: not counted
        order(OrderPhase.REFUNDED, cost=3_000_000, refund=3_000_000),  # net 0
        order(OrderPhase.SUBMITTED, cost=None),  # open: its reservation
    ]
    transfers = [
        TransferCost(ADDR[0], 64_285, 64_285, 0),
        TransferCost(ADDR[0], 0, 64_285, 6_428_500),
    ]
    got = address_costs(orders, transfers, ended_at=43_200.0)[ADDR[0]]
    assert got.spent_sun == 3_000_000 + 9_000_000
    assert got.energy_bought == 100_000  # the delivered order only
    assert got.capacity == 150_000  # half a day ran: 100k x 1.5
    assert got.wasted == 150_000 - 64_285
    figures = got.to_json(FEE)
    assert figures["burn_per_transfer_sun"] == 64_285 * FEE
    assert figures["cost_per_transfer_sun"] == (12_000_000 + 6_428_500) // 2
