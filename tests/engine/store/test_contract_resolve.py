"""Contract: `Store.resolve`, an operator's word on an open order (who and why in its history).

Runs against every backend (`conftest.backend`). Each test tries what must be refused: a
terminal order, a phase other than delivered/failed, a blank name or reason, a stale
compare-and-set, and a tracker that read the order before it was resolved.
"""

from __future__ import annotations

import pytest

from engine.core.clock import VirtualClock
from engine.store import (
    OPEN_PHASES,
    TERMINAL_PHASES,
    BudgetLimit,
    BudgetWindow,
    IllegalTransitionError,
    IntentCreated,
    IntentRefused,
    OrderNotFoundError,
    OrderPhase,
    Store,
    TransitionConflictError,
)
from tests.engine.store.harness import START, Backend, intent

P = OrderPhase
ADDRESS = "TExWKszFWYTKZH8LYiovAPKzS3L9MLZ4kw"
BUDGET = BudgetLimit(policy="payouts", window=BudgetWindow.DAY, limit_sun=1_000)

PATH_TO = {
    P.INTENT: [],
    P.SUBMITTED: [P.SUBMITTED],
    P.DELEGATING: [P.SUBMITTED, P.DELEGATING],
    P.UNKNOWN: [P.UNKNOWN],
    P.DELIVERED: [P.SUBMITTED, P.DELIVERED],
    P.PARTIAL: [P.SUBMITTED, P.PARTIAL],
    P.FAILED: [P.FAILED],
    P.REFUNDED: [P.SUBMITTED, P.REFUNDED],
    P.ABANDONED: [P.ABANDONED],
}


async def held(store: Store, phase: OrderPhase = P.UNKNOWN, **fields: object) -> str:
    outcome = await store.create_intent(intent(**fields), budgets=[BUDGET])
    assert isinstance(outcome, IntentCreated), outcome
    oid = outcome.order.client_order_id
    for step in PATH_TO[phase]:
        await store.transition(oid, step)
    return oid


async def test_resolving_as_failed_records_who_and_why_and_frees_the_budget(
    store: Store, clock: VirtualClock
) -> None:
    oid = await held(store, reserved_sun=1_000)
    refused = await store.create_intent(intent(reserved_sun=1), budgets=[BUDGET])
    assert isinstance(refused, IntentRefused)  # the address is held, the budget spent
    clock.advance(7)
    order = await store.resolve(oid, P.FAILED, by="alice", reason="vendor support: never placed")
    assert (order.phase, order.cost_sun, order.updated_at) == (P.FAILED, 0, START + 7)
    last = (await store.order_history(oid))[-1]
    assert (last.from_phase, last.to_phase, last.at) == (P.UNKNOWN, P.FAILED, START + 7)
    assert last.detail["resolved_by"] == "alice"
    assert last.detail["reason"] == "vendor support: never placed"
    assert last.detail["ledger"] == [["release", -1_000]]
    assert await store.spent("payouts", BudgetWindow.DAY) == 0
    assert await store.open_orders(ADDRESS) == []
    again = await store.create_intent(intent(reserved_sun=1_000), budgets=[BUDGET])
    assert isinstance(again, IntentCreated)  # a new order may be placed


async def test_resolving_as_delivered_keeps_the_budget_spent(store: Store) -> None:
    oid = await held(store, P.DELEGATING, reserved_sun=800)
    order = await store.resolve(oid, P.DELIVERED, by="bob", reason="energy seen on tronscan")
    assert (order.phase, order.cost_sun) == (P.DELIVERED, 800)
    assert await store.spent("payouts", BudgetWindow.DAY) == 800
    last = (await store.order_history(oid))[-1]
    assert (last.from_phase, last.detail["resolved_by"]) == (P.DELEGATING, "bob")


@pytest.mark.parametrize("phase", sorted(OPEN_PHASES))
async def test_every_open_phase_can_be_resolved(store: Store, phase: OrderPhase) -> None:
    oid = await held(store, phase, address=f"T-{phase}")
    order = await store.resolve(oid, P.FAILED, by="ops", reason="checked", expect_from={phase})
    assert order.phase is P.FAILED


@pytest.mark.parametrize("phase", sorted(TERMINAL_PHASES))
async def test_a_terminal_order_is_refused_and_unchanged(store: Store, phase: OrderPhase) -> None:
    oid = await held(store, phase, address=f"T-{phase}")
    before = (await store.get_order(oid), await store.order_history(oid))
    for target in (P.FAILED, P.DELIVERED):
        with pytest.raises(IllegalTransitionError, match="terminal phases are final"):
            await store.resolve(oid, target, by="ops", reason="tidy up")
    assert (await store.get_order(oid), await store.order_history(oid)) == before


@pytest.mark.parametrize(
    ("target", "by", "reason", "message"),
    [
        (P.REFUNDED, "ops", "why", "resolved as delivered, failed, not refunded"),
        (P.SUBMITTED, "ops", "why", "not submitted"),
        (P.FAILED, " ", "why", "non-blank by"),
        (P.FAILED, "ops", "", "non-blank reason"),
    ],
)
async def test_bad_arguments_are_refused_and_change_nothing(
    store: Store, target: OrderPhase, by: str, reason: str, message: str
) -> None:
    oid = await held(store)
    before = (await store.get_order(oid), await store.order_history(oid))
    with pytest.raises(ValueError, match=message):
        await store.resolve(oid, target, by=by, reason=reason)
    assert (await store.get_order(oid), await store.order_history(oid)) == before


async def test_an_unknown_id_is_not_found(store: Store) -> None:
    with pytest.raises(OrderNotFoundError, match="'nope'"):
        await store.resolve("nope", P.FAILED, by="ops", reason="why")


async def test_a_stale_expectation_is_refused(store: Store) -> None:
    oid = await held(store, P.SUBMITTED)
    await store.transition(oid, P.DELEGATING)  # a tracker moved it after the operator looked
    with pytest.raises(TransitionConflictError):
        await store.resolve(oid, P.FAILED, by="ops", reason="why", expect_from={P.SUBMITTED})
    assert (await store.get_order(oid)).phase is P.DELEGATING


async def test_a_tracker_that_read_the_order_before_cannot_move_it_after(
    store: Store, backend: Backend, clock: VirtualClock
) -> None:
    oid = await held(store)
    sidecar = await backend.open(clock)  # another process on the same database
    try:
        seen = await sidecar.get_order(oid)
        await store.resolve(oid, P.FAILED, by="ops", reason="never placed")
        with pytest.raises(TransitionConflictError):
            await sidecar.transition(oid, P.DELIVERED, expect_from={seen.phase})
        with pytest.raises(IllegalTransitionError):
            await sidecar.transition(oid, P.DELIVERED)
    finally:
        await sidecar.close()
    order = await store.get_order(oid)
    assert order.phase is P.FAILED
    assert [e.to_phase for e in await store.order_history(oid)][-1] is P.FAILED
