"""A pass never buys on a reading older than its address's last order change.

Two processes on one store (issue 13, finding 2): one buys for an address, the other is
refused by the one-open-order rule and keeps its reading from before that order; once the
order is delivered and ended, a later pass of the second process must not plan on that
reading. These run both "processes" in one event loop over one store and one node, each
with its own `CachingSource`, on a virtual clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.act.applying import ActionOutcome, OutcomeKind
from engine.core.snapshots import EnergySnapshot
from engine.decide.planning import ObservationFailure
from engine.observe.observing import CachingSource
from engine.reconciling import PassResult, Reconciler
from engine.sidecar.ensuring import busy_addresses
from engine.store import OrderPhase
from policies.policyset import PolicySet
from tests.engine.market import Market
from tests.engine.test_reconciling import policy_set


@pytest.fixture
async def market(tmp_path: Path) -> AsyncIterator[Market]:
    m = await Market.open(tmp_path)
    try:
        yield m
    finally:
        await m.close()


def sidecar(market: Market, ps: PolicySet) -> tuple[Reconciler, CachingSource]:
    source = CachingSource(market.reader, market.clock, ps)
    rec = Reconciler(
        ps, store=market.store, reader=source, providers=market.providers, clock=market.clock
    )
    return rec, source


async def test_a_reading_older_than_a_delivered_order_is_read_again(
    market: Market, tmp_path: Path
) -> None:
    x, y = market.watched(2)
    ps = policy_set(tmp_path, [x, y], ["p-eopen"])
    first, _ = sidecar(market, ps)
    second, cache = sidecar(market, ps)
    cache.sweep_interval = 600.0  # as with `interval: 10m`: the sweep does not come first
    await cache.snapshots([x, y])  # the second process's sweep: x has no energy yet
    bought = await first.run_pass(apply=True)
    assert [o.kind for o in bought.outcomes] == [OutcomeKind.BOUGHT] * 2
    for _ in range(3):  # delivered on chain; the first process ends the orders
        market.advance(10)
        await first.run_pass(apply=True)
    assert {o.phase for o in await market.store.orders()} == {OrderPhase.DELIVERED}
    assert market.clock.now() - cache.cache[x].read_at < cache.sweep_interval  # reused
    assert all(market.energy(a) >= 65_000 for a in (x, y))
    # the second process's next pass, between sweeps: its readings predate the deliveries
    again = await second.run_pass(apply=True, demands={y: 1}, tracker_alongside=True)
    assert again.outcomes == () and market.creates("eopen") == 2
    assert ({e.address: e.available for e in again.plan.entries}[x] or 0) >= 65_000


async def test_guard_reads_only_the_addresses_changed_since_their_reading(
    market: Market, tmp_path: Path
) -> None:
    x, y = market.watched(2)
    ps = policy_set(tmp_path, [x, y], ["p-eopen"])
    rec, _ = sidecar(market, ps)
    seen = await rec.observe()
    assert await rec.fresh_enough(seen) == seen  # no order at all: nothing read again
    other, _ = sidecar(market, ps)
    market.advance(1)
    await other.run_pass(apply=True)
    market.advance(5)
    checked = await rec.fresh_enough(seen)
    for address in (x, y):
        old, new = seen[address], checked[address]
        assert isinstance(old, EnergySnapshot) and isinstance(new, EnergySnapshot)
        assert new.read_at > old.read_at  # the intents came after the reading
    assert await rec.fresh_enough(checked) == checked


async def test_guard_turns_a_reading_it_cannot_renew_into_a_failure(
    market: Market, tmp_path: Path
) -> None:
    [x] = market.watched(1)
    ps = policy_set(tmp_path, [x], ["p-eopen"])
    rec, _ = sidecar(market, ps)
    seen = await rec.observe()
    other, _ = sidecar(market, ps)
    market.advance(1)
    await other.run_pass(apply=True)
    market.advance(5)

    class Down:
        async def snapshots(self, addresses: object, **_: object) -> dict[str, object]:
            return {}

    rec.reader = Down()  # type: ignore[assignment]
    checked = await rec.fresh_enough(seen)
    failure = checked[x]
    assert isinstance(failure, ObservationFailure)
    assert "order" in failure.message


def test_a_refused_purchase_marks_its_address_for_a_fresh_read(tmp_path: Path) -> None:
    from engine.decide.planning import Plan

    refused = ActionOutcome("TX", "pol", OutcomeKind.HELD, "open order(s) already exist")
    result = PassResult(Plan(entries=(), now=0.0), True, (refused,))
    assert "TX" in busy_addresses(result)


async def test_guard_leaves_alone_the_addresses_with_an_open_order(
    market: Market, tmp_path: Path
) -> None:
    x, y = market.watched(2)
    ps = policy_set(tmp_path, [x, y], ["p-eopen"])
    rec, _ = sidecar(market, ps)
    seen = await rec.observe()
    other, _ = sidecar(market, ps)
    market.advance(1)
    await other.run_pass(apply=True)
    market.advance(5)
    still_open = await market.store.open_orders()
    assert {o.address for o in still_open} == {x, y}
    assert await rec.fresh_enough(seen, still_open) == seen  # the plan holds for both
