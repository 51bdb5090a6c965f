"""Contract: orders, invariant 1 (write-ahead) and invariant 2 (one open order per address).

Runs against every backend (`conftest.backend`). Each test tries to break a rule: a second
open order, a raw INSERT behind the store's back, a move out of a terminal phase, two
replicas moving one order at once.
"""

from __future__ import annotations

import asyncio

import pytest
from pydantic import ValidationError

from engine.core.clock import VirtualClock
from engine.core.phases import ALLOWED_TRANSITIONS
from engine.store import (
    OPEN_PHASES,
    TERMINAL_PHASES,
    DuplicateOrderError,
    IllegalTransitionError,
    IntentCreated,
    IntentRefused,
    OrderFilter,
    OrderNotFoundError,
    OrderPhase,
    OrderRecord,
    RefusalReason,
    Store,
    TransitionConflictError,
)
from tests.engine.store.harness import START, Backend, intent

P = OrderPhase
ADDRESS = "TExWKszFWYTKZH8LYiovAPKzS3L9MLZ4kw"
OTHER = "TNPeeaaFB7K9cmo4uQpcU32zGK8G1NYqeL"

#: a legal way into each phase, starting from intent
PATH_TO = {
    P.INTENT: [],
    P.SUBMITTED: [P.SUBMITTED],
    P.DELEGATING: [P.SUBMITTED, P.DELEGATING],
    P.UNKNOWN: [P.UNKNOWN],
    P.DELIVERED: [P.SUBMITTED, P.DELEGATING, P.DELIVERED],
    P.PARTIAL: [P.SUBMITTED, P.PARTIAL],
    P.FAILED: [P.FAILED],
    P.REFUNDED: [P.SUBMITTED, P.REFUNDED],
    P.ABANDONED: [P.ABANDONED],
}


async def created(store: Store, max_open: int = 1, **fields: object) -> str:
    outcome = await store.create_intent(intent(**fields), budgets=[], max_open=max_open)
    assert isinstance(outcome, IntentCreated), outcome
    return outcome.order.client_order_id


async def test_intent_is_committed_with_its_event(store: Store) -> None:
    new = intent(reserved_sun=500_000, deadline=START + 600, note="below threshold")
    outcome = await store.create_intent(new, budgets=[])
    assert isinstance(outcome, IntentCreated)
    order = outcome.order
    assert (order.client_order_id, order.phase, order.reserved_sun) == (
        new.client_order_id,
        P.INTENT,
        500_000,
    )
    assert order.created_at == order.updated_at == START
    assert order.deadline == START + 600 and order.cost_sun is None and order.attempts == 0
    assert await store.get_order(new.client_order_id) == order
    assert [o.client_order_id for o in await store.open_orders(ADDRESS)] == [new.client_order_id]
    history = await store.order_history(new.client_order_id)
    assert [(e.from_phase, e.to_phase) for e in history] == [(None, P.INTENT)]
    assert history[0].detail["note"] == "below threshold"


async def test_second_open_order_for_an_address_is_refused(store: Store) -> None:
    first = await created(store, reserved_sun=100)
    second = intent(reserved_sun=100)
    outcome = await store.create_intent(second, budgets=[])
    assert isinstance(outcome, IntentRefused)
    assert outcome.reason is RefusalReason.OPEN_ORDER_EXISTS
    assert outcome.open_orders == (first,)
    with pytest.raises(OrderNotFoundError):  # a refusal writes nothing
        await store.get_order(second.client_order_id)
    assert len(await store.ledger_entries()) == 1
    # another address is unaffected
    await created(store, address=OTHER)


@pytest.mark.parametrize("still_open", sorted(OPEN_PHASES))
async def test_every_open_phase_holds_the_address(store: Store, still_open: OrderPhase) -> None:
    first = await created(store)
    for step in PATH_TO[still_open]:
        await store.transition(first, step)
    outcome = await store.create_intent(intent(), budgets=[])
    assert isinstance(outcome, IntentRefused)


@pytest.mark.parametrize("ending", sorted(TERMINAL_PHASES))
async def test_a_terminal_order_frees_the_address(store: Store, ending: OrderPhase) -> None:
    first = await created(store)
    for step in PATH_TO[ending]:
        await store.transition(first, step)
    await created(store)
    assert len(await store.open_orders(ADDRESS)) == 1


async def test_database_refuses_a_second_open_order_behind_pythons_back(
    store: Store, backend: Backend
) -> None:
    await created(store)
    with pytest.raises(backend.integrity_error):
        backend.raw_insert_open_order("sneaky", ADDRESS, open_slot=0)
    with pytest.raises(backend.integrity_error):  # a slot beyond the order's max_open (1)
        backend.raw_insert_open_order("sneaky", ADDRESS, open_slot=1)
    assert [o.client_order_id for o in await store.open_orders(ADDRESS)] != ["sneaky"]
    assert len(await store.open_orders(ADDRESS)) == 1


async def test_database_refuses_to_reopen_a_terminal_order(store: Store, backend: Backend) -> None:
    first = await created(store)
    await store.transition(first, P.FAILED)
    with pytest.raises(backend.integrity_error):
        backend.raw_set_phase(first, "intent")
    assert (await store.get_order(first)).phase is P.FAILED


async def test_max_open_two_allows_exactly_two(store: Store) -> None:
    one = await created(store, max_open=2)
    two = await created(store, max_open=2)
    third = await store.create_intent(intent(), budgets=[], max_open=2)
    assert isinstance(third, IntentRefused) and set(third.open_orders) == {one, two}
    # a policy that allows only one now sees the address as full
    assert isinstance(await store.create_intent(intent(), budgets=[]), IntentRefused)
    await store.transition(one, P.FAILED)
    assert isinstance(await store.create_intent(intent(), budgets=[]), IntentRefused)
    await created(store, max_open=2)  # the freed slot is reused
    assert len(await store.open_orders(ADDRESS)) == 2


async def test_max_open_below_one_is_rejected(store: Store) -> None:
    with pytest.raises(ValueError, match="max_open"):
        await store.create_intent(intent(), budgets=[], max_open=0)


async def test_client_order_ids_are_unique_forever(store: Store) -> None:
    first = await created(store)
    await store.transition(first, P.FAILED)
    with pytest.raises(DuplicateOrderError):
        await store.create_intent(intent(client_order_id=first), budgets=[])
    with pytest.raises(ValidationError):
        intent(client_order_id="x" * 65)


async def test_transitions_update_the_order_and_its_history(
    store: Store, clock: VirtualClock
) -> None:
    oid = await created(store, reserved_sun=1_000)
    clock.advance(5)
    order = await store.transition(
        oid, P.SUBMITTED, provider_order_id="V-1", receipt={"id": "V-1"}, attempt=True
    )
    assert (order.phase, order.provider_order_id, order.attempts) == (P.SUBMITTED, "V-1", 1)
    assert order.receipt == {"id": "V-1"} and order.updated_at == START + 5
    clock.advance(5)
    order = await store.transition(oid, P.DELEGATING, note="vendor says delegating")
    assert order.provider_order_id == "V-1" and order.receipt == {"id": "V-1"}  # kept
    order = await store.transition(oid, P.DELEGATING, error="status timeout", attempt=True)
    assert (order.last_error, order.attempts) == ("status timeout", 2)
    clock.advance(5)
    order = await store.transition(oid, P.DELIVERED, cost_sun=900)
    assert (order.phase, order.cost_sun, order.updated_at) == (P.DELIVERED, 900, START + 15)
    assert order.created_at == START
    history = await store.order_history(oid)
    assert [(e.from_phase, e.to_phase) for e in history] == [
        (None, P.INTENT),
        (P.INTENT, P.SUBMITTED),
        (P.SUBMITTED, P.DELEGATING),
        (P.DELEGATING, P.DELEGATING),
        (P.DELEGATING, P.DELIVERED),
    ]
    assert [e.at for e in history] == [START, START + 5, START + 10, START + 10, START + 15]
    assert history[2].detail == {"note": "vendor says delegating"}
    assert history[-1].detail["ledger"] == [["release", -1_000], ["settle", 900]]
    assert [e.seq for e in history] == sorted(e.seq for e in history)
    assert await store.open_orders() == []


@pytest.mark.parametrize("start", sorted(OrderPhase))
async def test_illegal_transitions_are_refused_and_change_nothing(
    store: Store, start: OrderPhase
) -> None:
    for target in sorted(OrderPhase):
        oid = await created(store, address=f"T-{start}-{target}")
        for step in PATH_TO[start]:
            await store.transition(oid, step)
        before = (await store.get_order(oid), await store.order_history(oid))
        if target in ALLOWED_TRANSITIONS[start]:
            await store.transition(oid, target)
            continue
        with pytest.raises(IllegalTransitionError, match=f"{start} -> {target}"):
            await store.transition(oid, target, cost_sun=5)
        assert (await store.get_order(oid), await store.order_history(oid)) == before
    if start.is_terminal:
        assert not ALLOWED_TRANSITIONS[start]


async def test_compare_and_set_refuses_a_stale_expectation(store: Store) -> None:
    oid = await created(store)
    await store.transition(oid, P.SUBMITTED, expect_from={P.INTENT})
    with pytest.raises(TransitionConflictError) as caught:
        await store.transition(oid, P.UNKNOWN, expect_from={P.INTENT})
    assert caught.value.actual is P.SUBMITTED
    assert (await store.get_order(oid)).phase is P.SUBMITTED
    assert len(await store.order_history(oid)) == 2


async def test_two_replicas_cannot_both_move_an_order(
    store: Store, backend: Backend, clock: VirtualClock
) -> None:
    oid = await created(store)
    replica = await backend.open(clock)
    try:
        results = await asyncio.gather(
            store.transition(oid, P.SUBMITTED, expect_from={P.INTENT}, provider_order_id="A"),
            replica.transition(oid, P.ABANDONED, expect_from={P.INTENT}),
            return_exceptions=True,
        )
    finally:
        await replica.close()
    losers = [r for r in results if isinstance(r, TransitionConflictError)]
    assert len(losers) == 1, results
    history = await store.order_history(oid)
    assert len(history) == 2 and history[1].from_phase is P.INTENT


async def test_unknown_orders_raise_not_found(store: Store) -> None:
    with pytest.raises(OrderNotFoundError):
        await store.get_order("nope")
    with pytest.raises(OrderNotFoundError):
        await store.transition("nope", P.FAILED)
    with pytest.raises(OrderNotFoundError):
        await store.order_history("nope")


async def test_order_queries_filter_and_order(store: Store, clock: VirtualClock) -> None:
    a = await created(store, address="TA", provider="itrx", deadline=START + 100)
    clock.advance(10)
    b = await created(store, address="TB", provider="mefree", deadline=START + 500)
    clock.advance(10)
    c = await created(store, address="TC", provider="itrx", policy="other")
    await store.transition(a, P.UNKNOWN)
    await store.transition(c, P.FAILED)

    def ids(records: list[OrderRecord]) -> list[str]:
        return [r.client_order_id for r in records]

    assert ids(await store.orders()) == [c, b, a]
    assert ids(await store.orders(OrderFilter(newest_first=False, limit=2))) == [a, b]
    assert ids(await store.orders(OrderFilter(provider="itrx"))) == [c, a]
    assert ids(await store.orders(OrderFilter(policy="other"))) == [c]
    assert ids(await store.orders(OrderFilter(address="TB"))) == [b]
    assert ids(await store.orders(OrderFilter(since=START + 10))) == [c, b]
    assert ids(await store.orders(OrderFilter(phases=frozenset({P.UNKNOWN})))) == [a]
    assert ids(await store.orders(OrderFilter(phases=frozenset()))) == []
    assert ids(await store.orders(OrderFilter(deadline_before=START + 200))) == [a]
    await store.transition(a, P.ABANDONED)  # overdue only while open
    assert ids(await store.orders(OrderFilter(deadline_before=START + 200))) == []
    assert ids(await store.orders(OrderFilter(deadline_before=START + 501))) == [b]
    assert ids(await store.open_orders()) == [b]


async def test_an_intent_survives_a_store_that_was_never_closed(
    backend: Backend, clock: VirtualClock, store: Store
) -> None:
    """Invariant 1: once create_intent returns, another store object finds the intent."""
    oid = await created(store, reserved_sun=42)
    replica = await backend.open(clock)
    try:
        [found] = await replica.open_orders(ADDRESS)
        assert (found.client_order_id, found.phase, found.reserved_sun) == (oid, P.INTENT, 42)
    finally:
        await replica.close()


async def test_last_orders_gives_each_address_its_newest_order(
    store: Store, clock: VirtualClock
) -> None:
    third = "TJCnKsPa7y5okkXvQAidZBzqx3QyQ6sxMW"
    first = await created(store)
    await store.transition(first, P.FAILED, error="refused")
    clock.advance(10)
    other = await created(store, address=OTHER)
    clock.advance(10)
    second = await created(store)
    await store.transition(second, P.FAILED, error="refused")
    tied = await created(store, client_order_id="zz-newest-of-a-tie")  # same time: id decides
    got = await store.last_orders([ADDRESS, OTHER, third, ADDRESS])
    assert {a: o.client_order_id for a, o in got.items()} == {ADDRESS: tied, OTHER: other}
    assert got[ADDRESS] == await store.get_order(tied)
    since = await store.last_orders([ADDRESS, OTHER], since=START + 15)
    assert {a: o.client_order_id for a, o in since.items()} == {ADDRESS: tied}
    assert await store.last_orders([ADDRESS], since=START + 21) == {}
    assert await store.last_orders([]) == {}
    assert second < tied and first != tied


async def test_last_orders_sees_an_address_behind_many_newer_orders(
    store: Store, backend: Backend, clock: VirtualClock
) -> None:
    mine = await created(store)
    backend.rows(  # 10,001 newer orders of other addresses, straight into the table
        "INSERT INTO orders (client_order_id, policy, address, provider, energy, duration,"
        " phase, reserved_sun, created_at, updated_at)"
        " WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 10001)"
        f" SELECT 'bulk-' || n, 'payouts', 'T' || n, 'itrx', 1, 1, 'failed', 0, {START + 1},"
        f" {START + 1} FROM s"
    )
    clock.advance(5)
    got = await store.last_orders([ADDRESS, "T7"], since=START)
    assert {a: o.client_order_id for a, o in got.items()} == {ADDRESS: mine, "T7": "bulk-7"}


async def test_orders_changed_since_a_time(store: Store, clock: VirtualClock) -> None:
    a = await created(store, address="TA")
    b = await created(store, address="TB")
    clock.advance(10)
    await store.transition(a, P.UNKNOWN)  # an old order that changed: listed
    changed = await store.orders(OrderFilter(updated_since=START + 5))
    assert [r.client_order_id for r in changed] == [a]
    assert changed[0].updated_at == START + 10
    assert len(await store.orders(OrderFilter(updated_since=START))) == 2
    assert b not in {r.client_order_id for r in changed}


async def test_orders_whose_rental_is_not_over(store: Store, clock: VirtualClock) -> None:
    hour = await created(store, address="TA", duration=3600)
    day = await created(store, address="TB", duration=86_400)
    clock.advance(7200)
    later = await created(store, address="TC", duration=3600)  # created at START + 7200
    live = await store.orders(OrderFilter(ends_after=START + 7200, newest_first=False))
    # the hour bought at START ended at START + 3600; the day and the new hour have not
    assert [r.client_order_id for r in live] == [day, later]
    assert hour not in {r.client_order_id for r in live}
    ended = await store.orders(OrderFilter(ends_after=START + 86_400 + 1))
    assert ended == []
