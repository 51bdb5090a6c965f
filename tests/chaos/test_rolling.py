"""The chaos checks for a policy that keeps a rolling level (`p-mefree`): several pieces
one after the other are its policy, two purchases in flight at once are a double order.

The checker is fed synthetic vendor records (a `Delivery` per order, as the emulators keep
them) next to the store's own records of the same orders, so each rule is seen to fire
and to stay quiet; one seeded run shows a broken safeguard caught on the rolling address.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from engine.core.usage import forecast
from engine.decide import sizing
from engine.store import NewIntent, OrderPhase, open_store
from sandbox.chaos.checking import RunReport, check, in_flight_until, rolling_addresses
from sandbox.chaos.running import START_ENERGY, ChaosRun, run
from sandbox.chaos.scenario import Fault, Scenario
from sandbox.providers.delivery import Delegation, Delivery
from tests.chaos.test_chaos import _fail_over_on_ambiguity

ROLLING, FIXED = 5, 0  # p-mefree's address; p-tronsave's first (131k for 1 h)
HOUR = 3600
PIECE = 100_000
PAID = 5_000_000  # sun a synthetic order costs (far below every budget)


def _delivery(
    receiver: str, accepted: float, delegated: float | None, *, scheduled: float | None = None
) -> Delivery:
    """A vendor's record of one order of `PIECE` for an hour: delegated in full at
    `delegated` (None: never), or with an attempt still `scheduled`."""
    delivery = Delivery(receiver, PIECE, HOUR, accepted, PIECE, scheduled)
    if delegated is not None:
        delivery.delegations.append(Delegation("tx", PIECE, delegated, delegated + HOUR))
    return delivery


def _chaos(tmp_path: Path) -> ChaosRun:
    """A run's world and policy set (the engine not started), for its addresses and clock."""
    return ChaosRun(Scenario.fixed(0, [], {}), tmp_path)


async def _check(
    chaos: ChaosRun,
    index: int,
    orders: list[tuple[str, Delivery, OrderPhase]],
    *,
    need: float = 0.0,
) -> RunReport:
    """Check `chaos`'s world once its vendors hold `orders` (vendor, delivery, the phase
    the store ended it in) for watched address `index`, drained `need` seconds after the
    start."""
    address, start = chaos.world.watched[index], chaos.clock.now()
    policy = chaos.policy_set.policy_for(address)
    assert policy is not None
    store = await open_store(f"sqlite:///{chaos.directory / 'chaos.db'}", chaos.clock)
    try:
        for n, (vendor, delivery, phase) in enumerate(orders):
            records: dict[str, object] = getattr(chaos.world.emulators[vendor], "orders")  # noqa: B009
            records[f"synthetic-{n}"] = SimpleNamespace(
                delivery=delivery, amount_sun=PAID, refunded=False
            )
            intent = NewIntent(
                client_order_id=f"order-{n}", policy=policy.metadata.name, address=address,
                provider=vendor, energy=PIECE, duration=HOUR, reserved_sun=PAID,
            )  # fmt: skip
            await store.create_intent(intent, budgets=[])
            await store.transition(f"order-{n}", phase, cost_sun=PAID)
        needs = {address: start + need}
        return await check(RunReport(0), chaos.world, store, chaos.policy_set, 0, needs)
    finally:
        await store.close()


async def test_two_orders_in_flight_at_once_for_a_rolling_address_are_a_double(
    tmp_path: Path,
) -> None:
    # mefree accepted at +30 and delegated only at +630 (slow); the store had ended it
    # failed, and eopen accepted another order at +360 while mefree's was still coming
    chaos = _chaos(tmp_path)
    address, t = chaos.world.watched[ROLLING], chaos.clock.now()
    orders = [
        ("mefree", _delivery(address, t + 30, t + 630), OrderPhase.FAILED),
        ("eopen", _delivery(address, t + 360, t + 363), OrderPhase.DELIVERED),
    ]
    report = await _check(chaos, ROLLING, orders)
    assert report.double_orders == 1, report.details
    assert report.lost_intents == 0 and report.budget_overruns == 0, report.details
    assert report.details == [
        f"double: {address}: eopen accepted an order at {t + 360:.0f} while mefree's of "
        f"{t + 30:.0f} was in flight (until {t + 630:.0f})"
    ]


async def test_orders_accepted_in_one_moment_are_a_double_though_one_never_delivers(
    tmp_path: Path,
) -> None:
    # a failover within one pass: mefree's order (never to be delegated) and tronsave's
    chaos = _chaos(tmp_path)
    address, t = chaos.world.watched[ROLLING], chaos.clock.now()
    orders = [
        ("mefree", _delivery(address, t + 30, None), OrderPhase.FAILED),
        ("tronsave", _delivery(address, t + 30, t + 36), OrderPhase.DELIVERED),
    ]
    report = await _check(chaos, ROLLING, orders)
    assert report.double_orders == 1, report.details


async def test_an_order_still_scheduled_at_the_end_is_in_flight(tmp_path: Path) -> None:
    # mefree's delegation was still to come (slow) when tronsave's order was accepted
    chaos = _chaos(tmp_path)
    address, t = chaos.world.watched[ROLLING], chaos.clock.now()
    orders = [
        ("mefree", _delivery(address, t + 30, None, scheduled=t + 900), OrderPhase.FAILED),
        ("tronsave", _delivery(address, t + 400, t + 406), OrderPhase.DELIVERED),
    ]
    report = await _check(chaos, ROLLING, orders)
    assert report.double_orders == 1, report.details


async def test_pieces_one_after_the_other_are_no_double_for_a_rolling_address(
    tmp_path: Path,
) -> None:
    # two full deliveries, the second accepted after the first was delegated: the level's
    # next piece (a fixed amount would count it a double: see below)
    chaos = _chaos(tmp_path)
    address, t = chaos.world.watched[ROLLING], chaos.clock.now()
    orders = [
        ("mefree", _delivery(address, t + 30, t + 33), OrderPhase.DELIVERED),
        ("mefree", _delivery(address, t + 390, t + 393), OrderPhase.DELIVERED),
        ("eopen", _delivery(address, t + 400, None), OrderPhase.FAILED),  # never delivered
        ("mefree", _delivery(address, t + 700, t + 1_200), OrderPhase.DELIVERED),  # slow
        # accepted the moment the slow one was delegated: the world's tick delegates
        # before the engine's pass of that step sees it
        ("tronsave", _delivery(address, t + 1_200, t + 1_206), OrderPhase.DELIVERED),
    ]
    report = await _check(chaos, ROLLING, orders)
    assert report.clean and report.double_orders == 0, report.details


async def test_a_fixed_amount_keeps_the_rule_of_one_full_delivery(tmp_path: Path) -> None:
    chaos = _chaos(tmp_path)
    address, t = chaos.world.watched[FIXED], chaos.clock.now()
    orders = [
        ("tronsave", _delivery(address, t + 30, t + 33), OrderPhase.DELIVERED),
        ("tronsave", _delivery(address, t + 390, t + 393), OrderPhase.DELIVERED),
    ]
    report = await _check(chaos, FIXED, orders)
    assert report.double_orders == 1, report.details
    assert report.details == [f"double: {address} got 2 full deliveries"]


async def test_a_rolling_address_bought_for_before_its_drain_is_bought_blind(
    tmp_path: Path,
) -> None:
    chaos = _chaos(tmp_path)
    address, t = chaos.world.watched[ROLLING], chaos.clock.now()
    orders = [("mefree", _delivery(address, t + 30, t + 33), OrderPhase.DELIVERED)]
    report = await _check(chaos, ROLLING, orders, need=60.0)
    assert report.double_orders == 1, report.details
    assert report.details[0].startswith(f"blind: mefree sold to {address} at {t + 30:.0f}")


def test_the_rolling_level_of_an_untouched_address_is_below_its_start(tmp_path: Path) -> None:
    """What the blind rule rests on: before its drain the rolling address holds more than
    its level, so the planner has nothing to buy for it."""
    chaos = _chaos(tmp_path)
    address = chaos.world.watched[ROLLING]
    assert rolling_addresses(chaos.policy_set) == {address}
    policy = chaos.policy_set.policy_for(address)
    assert policy is not None and policy.spec.expected_use is not None
    auto, lead = policy.spec.top_up.auto, policy.spec.renewal_lead
    assert auto is not None and lead is not None
    fc = forecast(None, policy.spec.expected_use.per_day)
    level = sizing.rolling(
        fc, auto, now=chaos.clock.now(), used=0, limit=START_ENERGY, rentals=[], lead=lead
    )
    assert level.threshold < START_ENERGY


def test_in_flight_ends_when_the_vendor_is_done() -> None:
    delivered = _delivery("T", 100.0, 103.0)
    assert in_flight_until(delivered) == 103.0
    failed = _delivery("T", 100.0, None)
    failed.failed_at, failed.error = 120.0, "refused"
    assert in_flight_until(failed) == 120.0
    assert in_flight_until(_delivery("T", 100.0, None)) == 100.0  # never to be delegated
    assert in_flight_until(_delivery("T", 100.0, None, scheduled=700.0)) == float("inf")


async def test_the_checks_catch_a_failover_on_ambiguity_for_the_rolling_level(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """mefree (the cheapest offer) is broke; tronsave and eopen, which have no
    idempotency key, answer 503 after accepting: the first of them is held as ambiguous
    and resolved, one order. With invariant 3 broken the engine buys the piece again from
    the other while the first one's is in flight (a fixed amount: two full deliveries)."""
    faults = [
        Fault(0, "broke", "mefree"),
        Fault(0, "fail", "tronsave", "create"),
        Fault(0, "fail", "eopen", "create"),
    ]
    (tmp_path / "good").mkdir()
    good = await run(6, tmp_path / "good", Scenario.fixed(6, faults, {ROLLING: 0}))
    assert good.clean and good.placed == 1, good.details

    _fail_over_on_ambiguity(monkeypatch)
    (tmp_path / "bad").mkdir()
    bad = await run(6, tmp_path / "bad", Scenario.fixed(6, faults, {ROLLING: 0}))
    assert bad.double_orders == 1, bad.details
    assert "in flight" in bad.details[0], bad.details
