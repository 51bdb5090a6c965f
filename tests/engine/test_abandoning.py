"""abandonAfter (engine/act/tracking.py): a held order ends `failed` only when it must not be held.

Real SQLite store, the emulators and the emulated node in-process on one VirtualClock
(`tests/engine/market.py`). An eopen intent that was never sent (a crash before the call:
eopen has no lookup) is held `unknown`; each test tries to get it abandoned where it must
not be: before its time, with a delegation on chain, without a (fresh) chain reading,
without the policy field. The last ones go through the Reconciler and the Alerter.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from engine.act.tracking import Tracker, TrackingSettings, delegation_evidence
from engine.core.snapshots import EnergySnapshot
from engine.observe.chain import ChainError, ChainTemporaryError
from engine.reconciling import Reconciler
from engine.sidecar.alerting import Alerter, AlertSettings
from engine.store import BudgetWindow, OrderPhase
from policies.loading import SecretMode, load
from policies.policyset import PolicySet
from sandbox.providers import vendor as emulated
from tests.engine.market import TRX, VENDORS, Market, address
from tests.engine.test_tracking import intent_only

P = OrderPhase
HOUR = 3600.0
STAKER = address("third-party-staker")


@pytest.fixture
async def market(tmp_path: Path) -> AsyncIterator[Market]:
    m = await Market.open(tmp_path)
    m.chain.create_account(STAKER, 1_000_000 * TRX)
    m.chain.stake_energy(STAKER, 900_000 * TRX)
    try:
        yield m
        await m.assert_one_open_per_address()
    finally:
        await m.close()


class DownReader:
    """A chain reader whose node never answers."""

    async def snapshots(
        self, addresses: Iterable[str], *, delegators: bool = False
    ) -> dict[str, EnergySnapshot | ChainError]:
        return {a: ChainTemporaryError("node http://node.test: no answer") for a in addresses}


def tracker(market: Market, reader: Any = None, **settings: Any) -> Tracker:
    t = Tracker(
        store=market.store,
        providers=market.providers,
        reader=reader or market.reader,
        clock=market.clock,
        settings=TrackingSettings(intent_grace=0, **settings),
    )
    t.abandon_after = {"pol": HOUR}
    return t


async def held(market: Market, t: Tracker) -> tuple[str, str]:
    """An eopen order never sent, held `unknown` for want of evidence."""
    [addr] = market.watched(1)
    coid = await intent_only(market, addr, "eopen", place=False)
    [r] = await t.track(await market.store.open_orders())
    assert r.after is P.UNKNOWN and not r.abandoned
    return addr, coid


async def track(market: Market, t: Tracker) -> Any:
    [r] = await t.track(await market.store.open_orders())
    return r


async def test_abandons_once_its_time_has_passed_and_not_before(market: Market) -> None:
    t = tracker(market)
    _, coid = await held(market, t)
    market.advance(HOUR - 2)
    r = await track(market, t)
    assert r.after is P.UNKNOWN and not r.moved and not r.abandoned
    assert "abandonAfter" not in r.detail  # not yet due: the usual hold
    market.advance(2)
    r = await track(market, t)
    assert r.after is P.FAILED and r.abandoned and "abandonAfter 3600s" in r.detail
    assert "no delegation" in r.detail and r.to_json()["abandoned"] is True
    order = await market.store.get_order(coid)
    assert order.phase is P.FAILED
    assert await market.store.spent("pol", BudgetWindow.DAY) == 0  # reservation released
    last = (await market.store.order_history(coid))[-1]
    assert (last.from_phase, last.to_phase) == (P.UNKNOWN, P.FAILED)
    assert "abandoned" in last.detail["note"]
    assert market.creates("eopen") == 0


async def test_not_abandoned_when_the_chain_shows_a_delegation(market: Market) -> None:
    t = tracker(market)
    addr, coid = await held(market, t)
    # someone delegates a little: far from what tracking calls delivered, but it may be
    # the vendor's energy (the engine does not know the vendors' delegating accounts)
    market.chain.delegate_energy(STAKER, addr, market.chain.sun_for_energy(5_000))
    market.advance(2 * HOUR)
    r = await track(market, t)
    assert r.after is P.UNKNOWN and not r.abandoned
    assert "the chain may show it" in r.detail and "delegated to it rose" in r.detail
    assert (await market.store.get_order(coid)).phase is P.UNKNOWN


async def test_not_abandoned_when_the_chain_cannot_be_read(market: Market) -> None:
    _, coid = await held(market, tracker(market))
    market.advance(2 * HOUR)
    t = tracker(market, reader=DownReader())
    r = await track(market, t)
    assert r.after is P.UNKNOWN and not r.abandoned and "no fresh reading" in r.detail
    assert (await market.store.get_order(coid)).phase is P.UNKNOWN


async def test_not_abandoned_on_a_reading_older_than_its_time_or_too_old(market: Market) -> None:
    t = tracker(market, abandon_read_age=60)
    addr, coid = await held(market, t)
    early = await market.reader.snapshot(addr)  # read before abandonAfter ran out
    market.advance(HOUR + 1)
    [r] = await t.track(await market.store.open_orders(), {addr: early})
    assert r.after is P.UNKNOWN and "no fresh reading" in r.detail
    late = await market.reader.snapshot(addr)  # after it ran out, but then kept too long
    market.advance(61)
    [r] = await t.track(await market.store.open_orders(), {addr: late})
    assert r.after is P.UNKNOWN and "no fresh reading" in r.detail
    assert (await market.store.get_order(coid)).phase is P.UNKNOWN


async def test_off_by_default_and_per_policy(market: Market) -> None:
    t = tracker(market)
    t.abandon_after = {"another-policy": 60.0}
    _, coid = await held(market, t)
    market.advance(30 * 24 * HOUR)
    r = await track(market, t)
    assert r.after is P.UNKNOWN and not r.abandoned
    assert (await market.store.get_order(coid)).phase is P.UNKNOWN


def test_delegation_evidence() -> None:
    def snap(limit: int, delegated_in: int) -> EnergySnapshot:
        return EnergySnapshot("T", True, limit, limit, 0, delegated_in, 1, 0.0)

    base = {"limit": 1_000, "delegated_in": 50 * TRX}
    assert delegation_evidence(base, snap(1_000, 50 * TRX), energy=70_000) is None
    assert delegation_evidence(base, snap(900, 40 * TRX), energy=70_000) is None  # expired
    assert "rose from" in str(delegation_evidence(base, snap(1_000, 51 * TRX), energy=70_000))
    assert "limit rose by 69000" in str(
        delegation_evidence(base, snap(70_000, 50 * TRX), energy=70_000)
    )
    # without a baseline nothing tells old stake from new: any of it may be the order's
    assert delegation_evidence(None, snap(0, 0), energy=70_000) is None
    assert "no baseline" in str(delegation_evidence(None, snap(100, 1), energy=70_000))
    assert "no baseline" in str(delegation_evidence({}, snap(70_000, 0), energy=70_000))


# --------------------------------------------------------------------------- with a pass


def policy_set(tmp_path: Path, addresses: list[str], extra: str) -> PolicySet:
    docs = [
        f"---\napiVersion: energyctl/v1\nkind: Provider\nmetadata: {{name: p-{v}}}\n"
        f"spec: {{type: {v}, apiKey: {{fromEnv: K}}"
        + (", apiSecret: {fromEnv: S}" if "apiSecret" in emulated(v).credentials else "")
        + "".join(f", {key}: {value}" for key, value in emulated(v).settings.items())
        + "}\n"
        for v in VENDORS
    ]
    docs.append(
        "---\napiVersion: energyctl/v1\nkind: EnergyPolicy\nmetadata: {name: pol}\nspec:\n"
        f"  addresses: [{', '.join(addresses)}]\n  threshold: 65k\n"
        "  topUp: {amount: 70k, duration: 1h}\n  providers: [p-eopen]\n"
        f"  maxPrice: 120 sun/energy\n  budget: {{perDay: 10000 TRX}}\n{extra}"
    )
    path = tmp_path / "policies.yaml"
    path.write_text("".join(docs))
    result = load(path, secrets=SecretMode.REQUIRED, env={"K": "k", "S": "s"})
    assert result.policy_set is not None, [str(d) for d in result.diagnostics]
    return result.policy_set


def test_abandon_after_must_be_a_positive_duration(tmp_path: Path) -> None:
    for bad in ("0s", "-1h", "soon"):
        path = tmp_path / "p.yaml"
        path.write_text(
            "apiVersion: energyctl/v1\nkind: EnergyPolicy\nmetadata: {name: pol}\nspec:\n"
            "  addresses: [TExWKszFWYTKZH8LYiovAPKzS3L9MLZ4kw]\n  threshold: 65k\n"
            "  topUp: {amount: 70k, duration: 1h}\n  providers: [p]\n"
            f"  maxPrice: 120 sun/energy\n  budget: {{perDay: 1 TRX}}\n  abandonAfter: {bad}\n"
        )
        result = load(path, secrets=SecretMode.OPTIONAL)
        assert result.policy_set is None
        assert any("abandonAfter" in str(d) for d in result.diagnostics), bad


async def test_a_pass_abandons_then_buys_again_and_alerts_once(
    market: Market, tmp_path: Path
) -> None:
    [addr] = market.watched(1)
    ps = policy_set(tmp_path, [addr], "  abandonAfter: 1h\n")
    rec = Reconciler(
        ps, store=market.store, reader=market.reader, providers=market.providers, clock=market.clock
    )
    assert rec.tracker.abandon_after == {"pol": HOUR}
    coid = await intent_only(market, addr, "eopen", place=False)
    market.advance(61)  # past the intent grace: held `unknown`, nothing bought
    held = await rec.run_pass(apply=True)
    assert [t.after for t in held.tracked] == [P.UNKNOWN] and held.outcomes == ()
    market.advance(HOUR)
    first = await rec.run_pass(apply=True)
    [tracked] = first.tracked
    assert (tracked.client_order_id, tracked.after, tracked.abandoned) == (coid, P.FAILED, True)
    [outcome] = first.outcomes  # the address is no longer held: bought again
    assert outcome.client_order_id != coid and market.creates("eopen") == 1

    posted: list[dict[str, Any]] = []

    def hook(request: httpx.Request) -> httpx.Response:
        posted.append(json.loads(request.content))
        return httpx.Response(204)

    controller: Any = SimpleNamespace(reconciler=rec, clock=market.clock)
    alerter = Alerter(
        controller, AlertSettings(webhook_url="http://hooks.test/a"), httpx.MockTransport(hook)
    )
    try:
        alerter.observe_pass(controller, first, 0.0)
        market.advance(10)
        alerter.observe_pass(controller, await rec.run_pass(apply=True), 0.0)
        while not alerter._queue.empty():
            await alerter.deliver(alerter._queue.get_nowait())
    finally:
        await alerter.aclose()
    abandoned = [p for p in posted if p["kind"] == "abandoned"]
    assert [p["subject"] for p in abandoned] == [coid]
    assert "abandonAfter" in abandoned[0]["message"] and addr in abandoned[0]["message"]


async def test_a_submitted_order_its_vendor_never_delegates_is_abandoned(market: Market) -> None:
    """A Mefree order whose delegation never lands answers "pending" for ever (the adapter
    reads every status it does not know as pending): abandonAfter ends it `failed`, its
    charge booked; without the field, or with a delegation on chain, it stays."""
    [addr] = market.watched(1)
    market.emulators["mefree"].faults.no_delivery()
    coid = await intent_only(market, addr, "mefree", place=False)
    t = tracker(market)
    r = await track(market, t)  # re-placed with its idempotency key: now at the vendor
    assert r.after is P.SUBMITTED
    kept = tracker(market)
    kept.abandon_after = {}
    market.advance(HOUR - 2)
    r = await track(market, t)
    assert r.after is P.SUBMITTED and not r.abandoned and "waiting" in r.detail
    market.advance(2)
    r = await track(market, kept)  # no abandonAfter: held for good
    assert r.after is P.SUBMITTED and not r.abandoned
    r = await track(market, t)
    assert r.after is P.FAILED and r.abandoned
    assert "not reported delegated by the vendor" in r.detail and "booked" in r.detail
    order = await market.store.get_order(coid)
    assert order.phase is P.FAILED and order.cost_sun and order.cost_sun > 0
    assert market.creates("mefree") == 1


async def test_a_submitted_order_is_not_abandoned_while_the_chain_shows_a_delegation(
    market: Market,
) -> None:
    [addr] = market.watched(1)
    market.emulators["mefree"].faults.no_delivery()
    coid = await intent_only(market, addr, "mefree", place=False)
    t = tracker(market)
    assert (await track(market, t)).after is P.SUBMITTED
    market.chain.delegate_energy(STAKER, addr, market.chain.sun_for_energy(5_000))
    market.advance(2 * HOUR)
    r = await track(market, t)
    assert r.after is P.SUBMITTED and not r.abandoned and "the chain may show it" in r.detail
    assert (await market.store.get_order(coid)).phase is P.SUBMITTED
