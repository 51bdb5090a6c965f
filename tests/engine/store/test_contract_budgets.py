"""Contract: invariant 5, budgets reserved with the intent, settled or released with the order.

Windows are calendar days and months in UTC, read from a virtual clock. Each test tries to
spend one sun too many, or checks that money comes back exactly when it should.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from engine.core.clock import VirtualClock
from engine.core.phases import ALLOWED_TRANSITIONS
from engine.store import (
    BudgetLimit,
    BudgetWindow,
    IllegalTransitionError,
    IntentCreated,
    IntentRefused,
    LedgerKind,
    OrderPhase,
    RefusalReason,
    Store,
)
from tests.engine.store.harness import Backend, intent

P = OrderPhase
DAY = BudgetWindow.DAY
MONTH = BudgetWindow.MONTH
LIMIT = 1_000_000


def per_day(limit: int = LIMIT, policy: str | None = "payouts") -> BudgetLimit:
    return BudgetLimit(policy=policy, window=DAY, limit_sun=limit)


_addresses = iter(range(10**6))


async def reserve(
    store: Store, sun: int, budgets: list[BudgetLimit] | None = None, **fields: object
) -> IntentCreated | IntentRefused:
    fields.setdefault("address", f"T{next(_addresses)}")
    return await store.create_intent(
        intent(reserved_sun=sun, **fields), budgets=[per_day()] if budgets is None else budgets
    )


async def ok(store: Store, sun: int, **fields: Any) -> str:
    outcome = await reserve(store, sun, **fields)
    assert isinstance(outcome, IntentCreated), str(outcome)
    return outcome.order.client_order_id


async def test_exactly_the_limit_fits_and_one_sun_more_does_not(store: Store) -> None:
    await ok(store, 600_000)
    refused = await reserve(store, 400_001)
    assert isinstance(refused, IntentRefused)
    assert refused.reason is RefusalReason.BUDGET_EXCEEDED
    assert (refused.spent_sun, refused.requested_sun) == (600_000, 400_001)
    assert refused.budget == per_day()
    assert "400001" in str(refused) and "1000000" in str(refused)
    await ok(store, 400_000)
    assert await store.spent("payouts", DAY) == LIMIT
    assert isinstance(await reserve(store, 1), IntentRefused)
    assert isinstance(await reserve(store, 0), IntentCreated)  # free orders still fit


async def test_open_order_check_comes_before_the_budget(store: Store) -> None:
    await ok(store, LIMIT, address="TSAME")
    refused = await reserve(store, 1, address="TSAME")
    assert isinstance(refused, IntentRefused)
    assert refused.reason is RefusalReason.OPEN_ORDER_EXISTS


async def test_failure_releases_the_reservation(store: Store) -> None:
    oid = await ok(store, LIMIT)
    assert isinstance(await reserve(store, 1), IntentRefused)
    order = await store.transition(oid, P.FAILED, error="balance too low")
    assert order.cost_sun == 0 and order.last_error == "balance too low"
    assert await store.spent("payouts", DAY) == 0
    await ok(store, LIMIT)


@pytest.mark.parametrize("ending", [P.FAILED, P.ABANDONED])
async def test_a_reported_cost_is_not_charged_when_the_order_fails(
    store: Store, ending: OrderPhase
) -> None:
    oid = await ok(store, 700_000)
    await store.transition(oid, P.UNKNOWN, cost_sun=650_000)
    await store.transition(oid, ending)
    assert await store.spent("payouts", DAY) == 0
    assert (await store.get_order(oid)).cost_sun == 0


async def test_a_fee_kept_on_failure_is_charged(store: Store) -> None:
    oid = await ok(store, 700_000)
    await store.transition(oid, P.FAILED, cost_sun=1_000)
    assert await store.spent("payouts", DAY) == 1_000


async def test_a_lower_actual_cost_frees_budget(store: Store) -> None:
    oid = await ok(store, 600_000)
    await store.transition(oid, P.SUBMITTED, cost_sun=450_000)
    assert await store.spent("payouts", DAY) == 600_000  # still reserved while open
    assert isinstance(await reserve(store, 400_001), IntentRefused)
    await store.transition(oid, P.DELIVERED)  # settles the cost from the receipt
    assert await store.spent("payouts", DAY) == 450_000
    await ok(store, 550_000)
    kinds = [(e.kind, e.amount_sun) for e in await store.ledger_entries(client_order_id=oid)]
    assert kinds == [
        (LedgerKind.RESERVE, 600_000),
        (LedgerKind.RELEASE, -600_000),
        (LedgerKind.SETTLE, 450_000),
    ]


async def test_delivery_without_a_known_cost_settles_the_reservation(store: Store) -> None:
    oid = await ok(store, 600_000)
    order = await store.transition(oid, P.DELIVERED)
    assert order.cost_sun == 600_000
    assert await store.spent("payouts", DAY) == 600_000


async def test_partial_fill_settles_its_actual_cost(store: Store) -> None:
    oid = await ok(store, 600_000)
    await store.transition(oid, P.PARTIAL, cost_sun=200_000)
    assert await store.spent("payouts", DAY) == 200_000


@pytest.mark.parametrize(("refund", "net"), [(None, 0), (200_000, 300_000), (0, 500_000)])
async def test_refunds_are_recorded_against_the_charge(
    store: Store, refund: int | None, net: int
) -> None:
    oid = await ok(store, 600_000)
    await store.transition(oid, P.SUBMITTED, cost_sun=500_000)
    order = await store.transition(oid, P.REFUNDED, refund_sun=refund)
    assert await store.spent("payouts", DAY) == net
    assert order.cost_sun == 500_000 and (order.cost_sun - (order.refund_sun or 0)) == net


async def test_a_refund_larger_than_the_charge_is_refused(store: Store) -> None:
    oid = await ok(store, 600_000)
    await store.transition(oid, P.SUBMITTED, cost_sun=500_000)
    with pytest.raises(ValueError, match="exceeds the charge"):
        await store.transition(oid, P.REFUNDED, refund_sun=500_001)
    assert (await store.get_order(oid)).phase is P.SUBMITTED
    assert await store.spent("payouts", DAY) == 600_000


async def test_negative_money_is_refused(store: Store) -> None:
    oid = await ok(store, 1)
    with pytest.raises(ValueError, match="cost_sun"):
        await store.transition(oid, P.SUBMITTED, cost_sun=-1)


async def test_day_window_resets_at_utc_midnight(store: Store, clock: VirtualClock) -> None:
    clock.set(1_773_187_199.0)  # 2026-03-10T23:59:59Z
    await ok(store, LIMIT)
    assert isinstance(await reserve(store, 1), IntentRefused)
    clock.advance(1)  # 2026-03-11T00:00:00Z
    assert await store.spent("payouts", DAY) == 0
    assert await store.spent("payouts", DAY, now=clock.now() - 1) == LIMIT
    await ok(store, LIMIT)


async def test_settlement_lands_in_the_reservations_window(
    store: Store, clock: VirtualClock
) -> None:
    clock.set(1_773_187_199.0)  # 23:59:59 on the 10th
    oid = await ok(store, 800_000)
    clock.advance(3600)  # delivered on the 11th
    await store.transition(oid, P.DELIVERED, cost_sun=700_000)
    assert await store.spent("payouts", DAY) == 0
    assert await store.spent("payouts", DAY, now=1_773_187_199.0) == 700_000


async def test_month_window_accumulates_across_days(store: Store, clock: VirtualClock) -> None:
    month = BudgetLimit(policy="payouts", window=MONTH, limit_sun=1_500_000)
    budgets = [per_day(), month]
    clock.set(1_774_958_400.0)  # 2026-03-31T12:00:00Z
    assert isinstance(await reserve(store, LIMIT, budgets), IntentCreated)
    day_full = await reserve(store, 1, budgets)
    assert isinstance(day_full, IntentRefused) and day_full.budget == budgets[0]
    clock.set(1_775_001_600.0)  # 2026-04-01T00:00:00Z: both windows reset
    assert isinstance(await reserve(store, LIMIT, budgets), IntentCreated)
    assert await store.spent("payouts", MONTH) == LIMIT
    clock.advance(86_400)  # 2026-04-02: a fresh day, the same month
    month_full = await reserve(store, 500_001, budgets)
    assert isinstance(month_full, IntentRefused) and month_full.budget == month
    assert (month_full.spent_sun, month_full.requested_sun) == (LIMIT, 500_001)
    assert isinstance(await reserve(store, 500_000, budgets), IntentCreated)
    assert await store.spent("payouts", MONTH) == 1_500_000
    assert await store.spent("payouts", MONTH, now=1_774_958_400.0) == LIMIT  # March


async def test_budgets_are_per_policy_and_none_means_all(store: Store) -> None:
    await ok(store, LIMIT)  # payouts is full
    await ok(store, LIMIT, policy="sweeps", budgets=[per_day(policy="sweeps")])
    everything = [per_day(limit=2 * LIMIT + 5, policy=None)]
    assert isinstance(await reserve(store, 6, everything, policy="third"), IntentRefused)
    assert isinstance(await reserve(store, 5, everything, policy="third"), IntentCreated)
    assert await store.spent(None, DAY) == 2 * LIMIT + 5
    assert await store.spent("sweeps", DAY) == LIMIT


async def test_a_budget_of_another_policy_is_a_caller_error(store: Store) -> None:
    with pytest.raises(ValueError, match="cannot limit"):
        await reserve(store, 1, [per_day(policy="sweeps")], policy="payouts")


async def test_ledger_always_equals_the_orders(store: Store, clock: VirtualClock) -> None:
    """Random walks of orders: at every step, spent == sum over orders of (open: reserved;
    terminal: settled cost minus refund), one open order per address, and the day budget
    is never exceeded (costs here never exceed their reservation)."""
    rng = random.Random(5)
    budget = per_day(limit=3_000)
    for _ in range(150):
        opened = await store.open_orders()
        if opened and rng.random() < 0.6:
            order = rng.choice(opened)
            target = rng.choice(sorted(p for p in P if p is not order.phase))
            cost = rng.choice([None, rng.randrange(0, order.reserved_sun + 1)])
            if target in ALLOWED_TRANSITIONS[order.phase]:
                await store.transition(order.client_order_id, target, cost_sun=cost)
            else:
                with pytest.raises(IllegalTransitionError):
                    await store.transition(order.client_order_id, target, cost_sun=cost)
        else:
            await reserve(store, rng.randrange(0, 1_200), [budget], address=f"T{rng.randrange(6)}")
        clock.advance(rng.randrange(0, 900))
        day_start = clock.now() - clock.now() % 86_400
        orders = await store.orders()
        expected = sum(
            o.reserved_sun if o.is_open else (o.cost_sun or 0) - (o.refund_sun or 0)
            for o in orders
            if o.created_at >= day_start
        )
        assert await store.spent("payouts", DAY) == expected <= budget.limit_sun
        open_addresses = [o.address for o in orders if o.is_open]
        assert len(open_addresses) == len(set(open_addresses))


async def test_replicas_racing_for_a_budget_never_exceed_it(
    store: Store, backend: Backend, clock: VirtualClock
) -> None:
    """Six replicas reserve at once, each for its own address, under one policy budget and
    one account-wide budget shared with another policy: exactly what fits is taken."""
    replicas = [store, *[await backend.open(clock) for _ in range(5)]]
    try:
        await ok(store, 400, policy="sweeps", budgets=[])  # counts only in the account cap
        account = per_day(limit=2_000, policy=None)
        outcomes = await asyncio.gather(
            *(
                reserve(replica, 300, [per_day(limit=1_500), account])
                for replica in replicas
                for _ in range(2)
            )
        )
    finally:
        for replica in replicas[1:]:
            await replica.close()
    won = [o for o in outcomes if isinstance(o, IntentCreated)]
    refused = [o for o in outcomes if isinstance(o, IntentRefused)]
    assert len(won) == 5  # 5 x 300 = the policy's 1,500; the account's 2,000 fits 400 + 1,500
    assert {r.reason for r in refused} == {RefusalReason.BUDGET_EXCEEDED}
    assert await store.spent("payouts", DAY) == 1_500
    assert await store.spent(None, DAY) == 1_900


async def test_a_budget_over_addresses_counts_their_orders_whatever_the_policy_name(
    store: Store,
) -> None:
    """A policy renamed from `payouts` to `hot-wallets` keeps the window's spend of its
    addresses: a rename is not a fresh budget (and another policy's spend is not counted)."""
    mine = frozenset({"TAddrOne", "TAddrTwo"})
    await ok(store, 600_000, address="TAddrOne", policy="payouts", budgets=[])
    await ok(store, 300_000, address="TAddrTwo", policy="payouts", budgets=[])
    await ok(store, 900_000, address="TElsewhere", policy="payouts", budgets=[])
    renamed = BudgetLimit(policy="hot-wallets", window=DAY, limit_sun=LIMIT, addresses=mine)
    assert await store.spent("hot-wallets", DAY, addresses=mine) == 900_000
    assert await store.spent("hot-wallets", DAY) == 0  # by name: the old behaviour
    refused = await reserve(
        store, 100_001, budgets=[renamed], policy="hot-wallets", address="TAddrThree"
    )
    assert isinstance(refused, IntentRefused) and refused.spent_sun == 900_000
    await ok(store, 100_000, budgets=[renamed], policy="hot-wallets", address="TAddrThree")
    assert await store.spent("hot-wallets", DAY, addresses=mine | {"TAddrThree"}) == LIMIT
