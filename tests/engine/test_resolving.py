"""engine/act/resolving.py: when an operator may end a held order, tried where it must refuse.

The in-process market (`tests/engine/market.py`); the end-to-end command is in
`tests/e2e/test_orders_resolve.py`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.act.resolving import check_resolution, resolve
from engine.act.tracking import Tracker, TrackingSettings
from engine.store import OrderNotFoundError, OrderPhase, TransitionConflictError
from tests.engine.market import Market
from tests.engine.test_abandoning import DownReader
from tests.engine.test_tracking import intent_only

P = OrderPhase


@pytest.fixture
async def market(tmp_path: Path) -> AsyncIterator[Market]:
    m = await Market.open(tmp_path)
    try:
        yield m
        await m.assert_one_open_per_address()
    finally:
        await m.close()


async def held(market: Market) -> str:
    [addr] = market.watched(1)
    coid = await intent_only(market, addr, "eopen", place=False)
    await market.store.transition(coid, P.UNKNOWN)
    return coid


async def test_failed_needs_a_reading_of_the_chain(market: Market) -> None:
    coid = await held(market)
    check = await check_resolution(market.store, DownReader(), coid, P.FAILED, clock=market.clock)
    assert not check.allowed and "cannot read" in str(check.refusal)
    with pytest.raises(ValueError, match="not allowed"):
        await resolve(market.store, check, by="ops", reason="why")
    ok = await check_resolution(market.store, market.reader, coid, P.FAILED, clock=market.clock)
    assert ok.allowed and "no delegation" in ok.chain


async def test_delivered_is_the_operators_word(market: Market) -> None:
    coid = await held(market)
    check = await check_resolution(
        market.store, DownReader(), coid, P.DELIVERED, clock=market.clock
    )
    assert check.allowed
    order = await resolve(market.store, check, by="ops", reason="seen on an explorer")
    assert order.phase is P.DELIVERED


async def test_a_young_intent_may_be_in_flight(market: Market) -> None:
    [addr] = market.watched(1)
    coid = await intent_only(market, addr, "eopen", place=False)
    check = await check_resolution(market.store, market.reader, coid, P.FAILED, clock=market.clock)
    assert not check.allowed and "may still be calling p-eopen" in str(check.refusal)
    market.advance(61)
    check = await check_resolution(market.store, market.reader, coid, P.FAILED, clock=market.clock)
    assert check.allowed


async def test_other_phases_and_unknown_ids(market: Market) -> None:
    with pytest.raises(ValueError, match="not refunded"):
        await check_resolution(market.store, market.reader, "x", P.REFUNDED, clock=market.clock)
    with pytest.raises(OrderNotFoundError):
        await check_resolution(market.store, market.reader, "x", P.FAILED, clock=market.clock)


async def test_tracking_first_wins_and_the_resolution_writes_nothing(market: Market) -> None:
    [addr] = market.watched(1)
    coid = await intent_only(market, addr, "eopen", place=True)  # placed, then a crash
    await market.store.transition(coid, P.UNKNOWN)
    check = await check_resolution(market.store, market.reader, coid, P.FAILED, clock=market.clock)
    assert check.allowed  # nothing on chain yet
    market.advance(10)  # eopen delivers; the sidecar's tracker sees it first
    tracker = Tracker(
        store=market.store,
        providers=market.providers,
        reader=market.reader,
        clock=market.clock,
        settings=TrackingSettings(),
    )
    [r] = await tracker.track(await market.store.open_orders())
    assert r.after is P.DELIVERED
    with pytest.raises(TransitionConflictError):
        await resolve(market.store, check, by="ops", reason="looked dead a moment ago")
    assert (await market.store.get_order(coid)).phase is P.DELIVERED


async def test_a_resolved_order_is_left_alone_by_a_tracker_that_read_it_before(
    market: Market,
) -> None:
    [addr] = market.watched(1)
    coid = await intent_only(market, addr, "eopen", place=True)
    await market.store.transition(coid, P.UNKNOWN)
    tracker = Tracker(
        store=market.store,
        providers=market.providers,
        reader=market.reader,
        clock=market.clock,
        settings=TrackingSettings(),
    )
    stale = await market.store.open_orders()  # the sidecar's round read the order
    check = await check_resolution(market.store, market.reader, coid, P.FAILED, clock=market.clock)
    await resolve(market.store, check, by="ops", reason="nothing on chain")
    market.advance(10)  # the energy arrives after all
    [r] = await tracker.track(stale)  # the tracker tries to end it delivered: and loses
    assert not r.moved and "not moved" in r.detail and "found failed" in r.detail
    assert (await market.store.get_order(coid)).phase is P.FAILED
    assert await tracker.track(await market.store.open_orders()) == []
