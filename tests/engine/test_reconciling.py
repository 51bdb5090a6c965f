"""engine/reconciling.py: one pass over the in-process market, plan and apply modes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.applying import OutcomeKind
from engine.reconciling import Reconciler
from engine.store import OrderPhase
from policies.loading import SecretMode, load
from policies.policyset import PolicySet
from tests.engine.market import VENDORS, Market


@pytest.fixture
async def market(tmp_path: Path) -> AsyncIterator[Market]:
    m = await Market.open(tmp_path)
    try:
        yield m
        await m.assert_one_open_per_address()
    finally:
        await m.close()


def policy_set(
    tmp_path: Path,
    addresses: list[str],
    providers: list[str],
    *,
    name: str = "pol",
    per_day: str = "10000 TRX",
) -> PolicySet:
    docs = [
        f"---\napiVersion: energyctl/v1\nkind: Provider\nmetadata: {{name: p-{v}}}\n"
        f"spec: {{type: {v}, apiKey: {{fromEnv: K}}"
        + (", apiSecret: {fromEnv: S}" if v in ("mefree", "itrx") else "")
        + "}\n"
        for v in VENDORS
    ]
    docs.append(
        f"---\napiVersion: energyctl/v1\nkind: EnergyPolicy\nmetadata: {{name: {name}}}\nspec:\n"
        f"  addresses: [{', '.join(addresses)}]\n  threshold: 65k\n"
        "  topUp: {amount: 70k, duration: 1h}\n"
        f"  providers: [{', '.join(providers)}]\n"
        f"  maxPrice: 120 sun/energy\n  budget: {{perDay: {per_day}}}\n"
    )
    path = tmp_path / "policies.yaml"
    path.write_text("".join(docs))
    result = load(path, secrets=SecretMode.REQUIRED, env={"K": "k", "S": "s"})
    assert result.policy_set is not None, [str(d) for d in result.diagnostics]
    return result.policy_set


def reconciler(market: Market, ps: PolicySet) -> Reconciler:
    return Reconciler(
        ps, store=market.store, reader=market.reader, providers=market.providers, clock=market.clock
    )


async def test_plan_mode_never_places_nor_writes(market: Market, tmp_path: Path) -> None:
    watched = market.watched(3)
    rec = reconciler(market, policy_set(tmp_path, watched, ["p-eopen", "p-mefree"]))
    result = await rec.reconcile_once(apply=False)
    assert len(result.plan.actions) == 3 and result.pending
    assert result.outcomes == () and not result.applied
    assert all(market.creates(v) == 0 for v in VENDORS)
    assert await market.store.orders() == []
    assert await market.store.latest_policy_revision() is None


async def test_apply_mode_buys_once_then_tracks_to_delivered(
    market: Market, tmp_path: Path
) -> None:
    watched = market.watched(3)
    ps = policy_set(tmp_path, watched, ["p-eopen", "p-mefree"])
    rec = reconciler(market, ps)
    first = await rec.reconcile_once(apply=True)
    assert [o.kind for o in first.outcomes] == [OutcomeKind.BOUGHT] * 3
    assert (await market.store.latest_policy_revision()).digest == ps.revision  # type: ignore[union-attr]
    second = await rec.reconcile_once(apply=True)  # orders open: nothing more bought
    assert second.outcomes == () and market.creates("eopen") == 3
    market.advance(10)
    third = await rec.reconcile_once(apply=True)
    assert {t.after for t in third.tracked} == {OrderPhase.DELIVERED}
    assert third.outcomes == () and market.creates("eopen") == 3
    assert market.creates("mefree") == 0


async def test_an_ambiguous_create_keeps_the_address_held_across_passes(
    market: Market, tmp_path: Path
) -> None:
    [addr] = market.watched(1)
    rec = reconciler(market, policy_set(tmp_path, [addr], ["p-itrx", "p-eopen"]))
    market.emulators["itrx"].faults.fail_next(1, status=500, after_accept=False, on="create")
    first = await rec.reconcile_once(apply=True)
    assert first.outcomes[0].kind is OutcomeKind.HELD  # a 5xx on create is ambiguous
    assert market.creates("itrx") == 0  # ... though this one was refused before accepting
    market.advance(3600 * 2)  # held: no evidence ever appears, nothing else is bought
    later = await rec.reconcile_once(apply=True)
    assert later.outcomes == ()
    assert market.creates("eopen") == 0


async def test_a_renamed_policy_keeps_the_spend_of_its_addresses(
    market: Market, tmp_path: Path
) -> None:
    """Budgets follow the addresses' spend: renaming `pol` is not a fresh budget."""
    first, second = market.watched(2)
    before = reconciler(market, policy_set(tmp_path, [first], ["p-eopen"]))
    [bought] = (await before.reconcile_once(apply=True)).outcomes
    assert bought.kind is OutcomeKind.BOUGHT
    [order] = await market.store.orders()
    room = 8_400_000  # one top-up at the cap (70k x 120 sun): the least budget allowed
    assert order.reserved_sun < room < 2 * order.reserved_sun  # a second one does not fit
    renamed = policy_set(
        tmp_path, [first, second], ["p-eopen"], name="pol-renamed", per_day=f"{room} sun"
    )
    after = await reconciler(market, renamed).reconcile_once(apply=True)
    assert after.outcomes == ()
    [entry] = [e for e in after.plan.entries if e.address == second]
    assert str(entry.reason) == "Budget", entry
    assert market.creates("eopen") == 1
