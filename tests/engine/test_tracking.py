"""engine/act/tracking.py: open orders driven to terminal phases, the chain having the last word.

Real SQLite store, the emulators and the emulated node in-process on one VirtualClock.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from engine.act.applying import OutcomeKind, apply_action, baseline_note
from engine.act.tracking import Tracker, TrackingSettings, parse_baseline
from engine.store import BudgetWindow, IntentCreated, NewIntent, OrderPhase
from providers.base import (
    Capabilities,
    OrderRequest,
    OrderState,
    OrderStatus,
    Provider,
    Receipt,
    TemporaryError,
)
from providers.eopen import EopenProvider
from tests.engine.market import Market
from tests.engine.test_applying import action


@pytest.fixture
async def market(tmp_path: Path) -> AsyncIterator[Market]:
    m = await Market.open(tmp_path)
    try:
        yield m
        await m.assert_one_open_per_address()
    finally:
        await m.close()


def tracker(market: Market, **settings: Any) -> Tracker:
    return Tracker(
        store=market.store,
        providers=market.providers,
        reader=market.reader,
        clock=market.clock,
        settings=TrackingSettings(**settings),
    )


async def buy(market: Market, addr: str, *vendors: str) -> Any:
    snapshot = await market.reader.snapshot(addr)
    return await apply_action(
        action(addr, *vendors),
        store=market.store,
        providers=market.providers,
        clock=market.clock,
        baseline=snapshot,
    )


async def track_all(t: Tracker, market: Market) -> list[Any]:
    return await t.track(await market.store.open_orders())


async def test_delivered_only_when_the_chain_shows_the_energy(market: Market) -> None:
    [addr] = market.watched(1)
    bought = await buy(market, addr, "eopen")
    t = tracker(market)
    [first] = await track_all(t, market)
    assert first.after is OrderPhase.SUBMITTED  # accepted; nothing on chain yet
    market.advance(10)  # eopen delivers after 4 s
    assert market.energy(addr) >= 70_000
    [second] = await track_all(t, market)
    assert second.after is OrderPhase.DELIVERED
    order = await market.store.get_order(bought.client_order_id)
    assert order.cost_sun == 30 * 70_000
    # settled: the reservation (the cap) released, the real cost booked
    assert await market.store.spent("pol", BudgetWindow.DAY) == 30 * 70_000


class SaysDelegated(Provider):
    """An adapter whose vendor claims every order delegated (the chain may disagree)."""

    def __init__(self, inner: Provider) -> None:
        super().__init__(inner.name)
        self.inner = inner
        self.capabilities = inner.capabilities  # type: ignore[misc]

    async def quote(self, request: Any) -> Any:
        return await self.inner.quote(request)

    async def place(self, order: OrderRequest) -> Receipt:
        return await self.inner.place(order)

    async def status(self, receipt: Receipt) -> OrderStatus:
        return OrderStatus(state=OrderState.DELEGATED, delegated_energy=receipt.energy)

    async def balance(self) -> int:
        return await self.inner.balance()


async def test_provider_saying_done_is_only_pending_energy(market: Market) -> None:
    [addr] = market.watched(1)
    market.emulators["itrx"].faults.no_delivery()
    market.providers["p-itrx"] = SaysDelegated(market.providers["p-itrx"])
    bought = await buy(market, addr, "itrx")
    t = tracker(market, delivery_wait=120)
    [r] = await track_all(t, market)
    assert r.after is OrderPhase.DELEGATING
    market.advance(60)
    [r] = await track_all(t, market)
    assert r.after is OrderPhase.DELEGATING and not r.moved  # still within the wait
    market.advance(61)
    [r] = await track_all(t, market)
    assert r.after is OrderPhase.FAILED and "ALERT" in r.detail
    order = await market.store.get_order(bought.client_order_id)
    assert order.cost_sun == 40 * 70_000  # we were charged: it stays in the budget


async def test_ambiguous_order_is_resolved_by_the_chain_and_never_doubled(
    market: Market,
) -> None:
    [addr] = market.watched(1)
    market.emulators["itrx"].faults.fail_next(1, status=500, after_accept=True, on="create")
    held = await buy(market, addr, "itrx", "eopen")
    assert held.kind is OutcomeKind.HELD
    t = tracker(market)
    [r] = await track_all(t, market)
    assert r.after is OrderPhase.UNKNOWN  # nothing on chain yet: still held
    again = await buy(market, addr, "eopen")
    assert again.kind is OutcomeKind.HELD
    market.advance(10)  # the order itrx did accept is delivered
    [r] = await track_all(t, market)
    assert r.after is OrderPhase.DELIVERED and "chain" in r.detail
    assert market.creates("itrx") == 1 and market.creates("eopen") == 0


async def intent_only(market: Market, addr: str, vendor: str, *, place: bool) -> str:
    """An intent as a crashed process leaves it: committed, maybe placed, never recorded."""
    snapshot = await market.reader.snapshot(addr)
    coid = f"crash-{vendor}"
    created = await market.store.create_intent(
        NewIntent(
            client_order_id=coid,
            policy="pol",
            address=addr,
            provider=f"p-{vendor}",
            energy=70_000,
            duration=3600,
            reserved_sun=10_000_000,
            deadline=market.clock.now() + 600,
            note=baseline_note("test", snapshot),
        ),
        budgets=[],
    )
    assert isinstance(created, IntentCreated)
    if place:
        request = OrderRequest(client_order_id=coid, receiver=addr, energy=70_000, duration=3600)
        await market.providers[f"p-{vendor}"].place(request)
    return coid


@pytest.mark.parametrize("placed", [False, True], ids=["before-call", "after-answer"])
async def test_mefree_intent_is_resolved_exactly_by_its_idempotency_key(
    market: Market, placed: bool
) -> None:
    [addr] = market.watched(1)
    coid = await intent_only(market, addr, "mefree", place=placed)
    t = tracker(market, intent_grace=30)
    [r] = await track_all(t, market)
    assert r.after is OrderPhase.INTENT and not r.moved  # young: may be in flight
    market.advance(31)
    [r] = await track_all(t, market)
    assert r.after is OrderPhase.SUBMITTED
    assert market.creates("mefree") == 1  # one order, whether or not it was sent before
    market.advance(10)
    [r] = await track_all(t, market)
    assert r.after is OrderPhase.DELIVERED
    assert (await market.store.get_order(coid)).phase is OrderPhase.DELIVERED


async def test_intent_without_lookup_is_held_then_alerts(market: Market) -> None:
    [addr] = market.watched(1)
    await intent_only(market, addr, "eopen", place=False)
    t = tracker(market, intent_grace=0)
    [r] = await track_all(t, market)
    assert r.after is OrderPhase.UNKNOWN and not r.alert
    market.advance(601)
    [r] = await track_all(t, market)
    assert r.after is OrderPhase.UNKNOWN and r.alert
    assert market.creates("eopen") == 0


async def test_intent_placed_before_a_crash_is_found_on_chain(market: Market) -> None:
    [addr] = market.watched(1)
    coid = await intent_only(market, addr, "eopen", place=True)
    market.advance(10)
    t = tracker(market, intent_grace=0)
    [r] = await track_all(t, market)
    assert r.after is OrderPhase.DELIVERED
    order = await market.store.get_order(coid)
    assert order.cost_sun == 10_000_000  # cost unknown: the reservation is settled
    assert market.creates("eopen") == 1


def test_parse_baseline_tolerates_any_note() -> None:
    assert parse_baseline(None) is None
    assert parse_baseline("free text") is None
    assert parse_baseline('{"reason": "x"}') is None
    assert parse_baseline('{"baseline": {"limit": 5}}') == {"limit": 5}


async def _slow_status(market: Market, receipt: Receipt, seconds: float) -> OrderStatus:
    """TronSave's status while its first answer (the order detail) is read at once but
    answered `seconds` later; the order fills and completes in the meantime."""
    ts = market.emulators["tronsave"]
    ts.faults.hang_next(seconds=seconds, on="status")
    task = asyncio.create_task(market.providers["p-tronsave"].status(receipt))
    for _ in range(1000):
        if ts.faults._hung:
            break
        await asyncio.sleep(0)
    assert ts.faults._hung, "the status call never reached the emulator"
    for _ in range(20):  # the hold's sleep on the clock starts
        await asyncio.sleep(0)
    market.advance(seconds)  # TronSave delegates 6 s after matching
    for _ in range(1000):  # the adapter's pacing sleeps on the clock: let it move
        if task.done():
            break
        await asyncio.sleep(0)
        market.clock.advance(0.001)
    return await task


async def test_tronsave_status_reads_one_consistent_state(market: Market) -> None:
    """Regression: `status` read the order detail, then the completed-orders list; an
    order completing between the two reads paired 0 % filled with "Completed" and was
    read as failed (4 of 4 trials with a slow status answer). Now a "Completed" from the
    list is judged on a detail re-read after it."""
    [addr] = market.watched(1)
    bought = await buy(market, addr, "tronsave")
    assert bought.kind is OutcomeKind.BOUGHT
    order = await market.store.get_order(bought.client_order_id)
    receipt = Receipt.model_validate(dict(order.receipt or {}))
    status = await _slow_status(market, receipt, 30)
    assert status.state is OrderState.DELEGATED, status
    assert status.delegated_energy == order.energy
    assert market.energy(addr) >= order.energy


async def test_a_failed_reading_never_books_zero_and_the_chain_wins(market: Market) -> None:
    """Regression: a `failed` status moved the order to failed with no cost, although
    the vendor kept the payout (ledger 47.16 TRX, charged 78.6 TRX). The chain showing
    the energy now wins over a failed reading; an order failed for real books the charge
    the vendor reports."""
    delivered, lost = market.watched(2)
    market.providers["p-tronsave"] = SaysFailed(market.providers["p-tronsave"])
    first = await buy(market, delivered, "tronsave")
    market.emulators["tronsave"].faults.no_delivery()
    second = await buy(market, lost, "tronsave")
    market.advance(30)  # the first is delegated; the second never will be
    t = tracker(market)
    results = {r.address: r for r in await track_all(t, market)}
    assert results[delivered].after is OrderPhase.DELIVERED, results[delivered]
    assert results[lost].after is OrderPhase.FAILED and "ALERT" in results[lost].detail
    charged = {
        o.id: o.payout_amount
        for o in getattr(market.emulators["tronsave"], "orders").values()  # noqa: B009
    }
    for bought in (first, second):
        order = await market.store.get_order(bought.client_order_id)
        assert order.cost_sun == charged[order.provider_order_id] > 0
    assert await market.store.spent("pol", BudgetWindow.DAY) == sum(charged.values())


class SaysFailed(SaysDelegated):
    """An adapter whose vendor reports every order failed, with its payout kept."""

    async def status(self, receipt: Receipt) -> OrderStatus:
        real = await self.inner.status(receipt)
        return OrderStatus(state=OrderState.FAILED, delegated_energy=0, cost_sun=real.cost_sun)


async def test_an_order_of_a_removed_provider_is_followed_by_the_chain(market: Market) -> None:
    """Regression: with its provider removed from the set, an open order stopped at
    "provider not configured" and never ended, holding its address for good. It is now
    followed by the chain: delivered when the energy shows, else failed with its cost
    once past its deadline."""
    shown, never = market.watched(2)
    first = await buy(market, shown, "eopen")
    market.emulators["eopen"].faults.no_delivery()
    second = await buy(market, never, "eopen")
    removed = {k: v for k, v in market.providers.items() if k != "p-eopen"}
    t = Tracker(store=market.store, providers=removed, reader=market.reader, clock=market.clock)
    market.advance(10)  # eopen delivers the first after 4 s
    results = {r.address: r for r in await track_all(t, market)}
    assert results[shown].after is OrderPhase.DELIVERED, results[shown]
    assert results[never].after is OrderPhase.SUBMITTED and not results[never].moved
    market.advance(1800)  # past the order's deadline (resolve_within)
    [late] = await track_all(t, market)
    assert late.after is OrderPhase.FAILED and "ALERT" in late.detail
    for bought in (first, second):
        order = await market.store.get_order(bought.client_order_id)
        assert order.cost_sun == 30 * 70_000
    assert await market.store.open_orders() == []


# --------------------------------------------------------------------------- lookup


class LookingUp(Provider):
    """eopen's adapter with a lookup by client order id (what the vendor holds: `orders`)."""

    capabilities: ClassVar[Capabilities] = EopenProvider.capabilities.model_copy(
        update={"lookup_by_client_id": True}
    )

    def __init__(self, inner: Provider) -> None:
        super().__init__(inner.name)
        self.inner = inner
        self.orders: dict[str, Receipt] = {}
        self.fail_lookups = False
        self.lookups = 0

    async def quote(self, request: Any) -> Any:
        return await self.inner.quote(request)

    async def place(self, order: OrderRequest) -> Receipt:
        receipt = await self.inner.place(order)
        self.orders[order.client_order_id] = receipt
        return receipt

    async def status(self, receipt: Receipt) -> OrderStatus:
        return await self.inner.status(receipt)

    async def lookup(self, client_order_id: str) -> Receipt | None:
        self.lookups += 1
        if self.fail_lookups:
            raise TemporaryError(self.name, "lookup unavailable")
        return self.orders.get(client_order_id)

    async def balance(self) -> int:
        return await self.inner.balance()


def looking_up(market: Market) -> LookingUp:
    provider = LookingUp(market.providers["p-eopen"])
    market.providers["p-eopen"] = provider
    return provider


async def unknown_order(market: Market, addr: str, *, placed: bool) -> str:
    """An order held `unknown`, as an unclear answer to its create leaves it."""
    coid = await intent_only(market, addr, "eopen", place=placed)
    await market.store.transition(coid, OrderPhase.UNKNOWN, expect_from={OrderPhase.INTENT})
    return coid


async def test_an_unclear_order_found_by_lookup_is_followed(market: Market) -> None:
    [addr] = market.watched(1)
    provider = looking_up(market)
    coid = await unknown_order(market, addr, placed=True)
    t = tracker(market, lookup_settle=120)
    [r] = await track_all(t, market)
    assert r.after is OrderPhase.SUBMITTED and provider.lookups == 1
    order = await market.store.get_order(coid)
    assert order.provider_order_id == provider.orders[coid].provider_order_id
    market.advance(10)
    [r] = await track_all(t, market)
    assert r.after is OrderPhase.DELIVERED
    assert market.creates("eopen") == 1  # found, never placed again


async def test_no_such_order_ends_it_only_once_settled(market: Market) -> None:
    [addr] = market.watched(1)
    provider = looking_up(market)
    await unknown_order(market, addr, placed=False)
    t = tracker(market, lookup_settle=120)
    [r] = await track_all(t, market)
    assert r.after is OrderPhase.UNKNOWN and "no such order yet" in r.detail
    market.advance(119)
    [r] = await track_all(t, market)
    assert r.after is OrderPhase.UNKNOWN  # the request may still reach the vendor
    market.advance(2)
    [r] = await track_all(t, market)
    assert r.after is OrderPhase.FAILED and provider.lookups == 3
    assert market.creates("eopen") == 0


async def test_an_intent_the_vendor_never_saw_ends_after_a_settled_lookup(market: Market) -> None:
    [addr] = market.watched(1)
    looking_up(market)
    await intent_only(market, addr, "eopen", place=False)
    t = tracker(market, intent_grace=0, lookup_settle=30)
    [r] = await track_all(t, market)
    assert r.after is OrderPhase.UNKNOWN  # too early to trust "no such order"
    market.advance(31)
    [r] = await track_all(t, market)
    assert r.after is OrderPhase.FAILED


async def test_a_failed_lookup_holds_and_the_chain_still_decides(market: Market) -> None:
    [addr] = market.watched(1)
    provider = looking_up(market)
    coid = await unknown_order(market, addr, placed=True)
    provider.fail_lookups = True
    t = tracker(market, lookup_settle=0)
    [r] = await track_all(t, market)
    assert r.after is OrderPhase.UNKNOWN and "lookup failed" in r.detail
    market.advance(10)  # eopen delegates: the chain shows it
    [r] = await track_all(t, market)
    assert r.after is OrderPhase.DELIVERED
    assert (await market.store.get_order(coid)).phase is OrderPhase.DELIVERED


async def test_an_unclear_tronzap_order_is_resolved_by_its_lookup(market: Market) -> None:
    """TronZap keeps our client order id as `external_id`: an unclear create is looked up,
    never placed again, and followed to delivery."""
    [addr] = market.watched(1)
    market.emulators["tronzap"].faults.fail_next(1, status=500, after_accept=True, on="create")
    held = await buy(market, addr, "tronzap", "eopen")
    assert held.kind is OutcomeKind.HELD
    t = tracker(market)
    [r] = await track_all(t, market)
    assert r.after is OrderPhase.SUBMITTED and "lookup" in r.detail
    market.advance(10)
    [r] = await track_all(t, market)
    assert r.after is OrderPhase.DELIVERED
    assert market.creates("tronzap") == 1 and market.creates("eopen") == 0
