"""engine/reconciling.py: one pass over the in-process market, plan and apply modes."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.act.applying import OutcomeKind
from engine.decide.planning import QuoteKey, Rental
from engine.reconciling import Reconciler
from engine.store import IntentCreated, NewIntent, OrderPhase
from policies.loading import SecretMode, load
from policies.policyset import PolicySet
from sandbox.providers import vendor as emulated
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
    extra: str = "",
    *,
    name: str = "pol",
    per_day: str = "10000 TRX",
) -> PolicySet:
    docs = [
        f"---\napiVersion: energyctl/v1\nkind: Provider\nmetadata: {{name: p-{v}}}\n"
        f"spec: {{type: {v}, apiKey: {{fromEnv: K}}"
        + (", apiSecret: {fromEnv: S}" if "apiSecret" in emulated(v).credentials else "")
        + "".join(f", {key}: {value}" for key, value in emulated(v).settings.items())
        + "}\n"
        for v in VENDORS
    ]
    docs.append(
        f"---\napiVersion: energyctl/v1\nkind: EnergyPolicy\nmetadata: {{name: {name}}}\nspec:\n"
        f"  addresses: [{', '.join(addresses)}]\n  threshold: 65k\n"
        "  topUp: {amount: 70k, duration: 1h}\n"
        f"  providers: [{', '.join(providers)}]\n"
        f"  maxPrice: 120 sun/energy\n  budget: {{perDay: {per_day}}}\n" + extra
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
    result = await rec.run_pass(apply=False)
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
    first = await rec.run_pass(apply=True)
    assert [o.kind for o in first.outcomes] == [OutcomeKind.BOUGHT] * 3
    assert (await market.store.latest_policy_revision()).digest == ps.revision  # type: ignore[union-attr]
    second = await rec.run_pass(apply=True)  # orders open: nothing more bought
    assert second.outcomes == () and market.creates("eopen") == 3
    market.advance(10)
    third = await rec.run_pass(apply=True)
    assert {t.after for t in third.tracked} == {OrderPhase.DELIVERED}
    assert third.outcomes == () and market.creates("eopen") == 3
    assert market.creates("mefree") == 0


async def test_an_ambiguous_create_keeps_the_address_held_across_passes(
    market: Market, tmp_path: Path
) -> None:
    [addr] = market.watched(1)
    rec = reconciler(market, policy_set(tmp_path, [addr], ["p-itrx", "p-eopen"]))
    market.emulators["itrx"].faults.fail_next(1, status=500, after_accept=False, on="create")
    first = await rec.run_pass(apply=True)
    assert first.outcomes[0].kind is OutcomeKind.HELD  # a 5xx on create is ambiguous
    assert market.creates("itrx") == 0  # ... though this one was refused before accepting
    market.advance(3600 * 2)  # held: no evidence ever appears, nothing else is bought
    later = await rec.run_pass(apply=True)
    assert later.outcomes == ()
    assert market.creates("eopen") == 0


async def test_the_cooldown_sees_an_address_s_last_order_behind_many_newer_ones(
    market: Market, tmp_path: Path
) -> None:
    """More than 10,000 orders of other addresses in the cooldown window must not hide an
    address's last order (the cooldown would be skipped and the address bought again)."""
    [addr] = market.watched(1)
    rec = reconciler(market, policy_set(tmp_path, [addr], ["p-eopen"], "  cooldown: 1h\n"))
    t0 = market.clock.now()
    mine = NewIntent(
        client_order_id="mine", policy="pol", address=addr, provider="eopen",
        energy=70_000, duration=3600, reserved_sun=0,
    )  # fmt: skip
    assert isinstance(await market.store.create_intent(mine, budgets=[]), IntentCreated)
    await market.store.transition("mine", OrderPhase.FAILED, error="refused")
    later = t0 + 60
    with sqlite3.connect(tmp_path / "engine.db") as conn:  # raw rows: 10,001 intents are slow
        conn.executemany(
            "INSERT INTO orders (client_order_id, policy, address, provider, energy, duration,"
            " phase, reserved_sun, created_at, updated_at)"
            " VALUES (?, 'other', ?, 'eopen', 70000, 3600, 'failed', 0, ?, ?)",
            [(f"other-{n}", f"T{n:033d}", later, later) for n in range(10_001)],
        )
    market.advance(120)
    inputs = await rec.inputs({})
    assert inputs.last_order_at == {addr: t0}


async def test_quotes_and_balances_too_old_to_reuse_are_forgotten(
    market: Market, tmp_path: Path
) -> None:
    """The pass caches do not grow for the life of a sidecar: an entry older than
    `quote_ttl` is dropped at the next pass (with `target` top-ups every amount is a new
    quote key)."""
    watched = market.watched(2)
    ps = policy_set(tmp_path, watched, ["p-eopen"])
    rec = Reconciler(
        ps, store=market.store, reader=market.reader, providers=market.providers,
        clock=market.clock, quote_ttl=5.0,
    )  # fmt: skip
    await rec.run_pass(apply=False)
    first = set(rec._quotes)
    assert first and set(rec._balances) == {"p-eopen"}
    stale = QuoteKey("p-eopen", 123_456, 3600)  # an amount asked once, long ago
    rec._quotes[stale] = (market.clock.now() - 60, next(iter(rec._quotes.values()))[1])
    rec._balances["p-gone"] = (market.clock.now() - 60, 1)
    await rec.run_pass(apply=False)  # within the ttl: reused, the stale ones dropped
    assert set(rec._quotes) == first and set(rec._balances) == {"p-eopen"}
    market.advance(10)
    rec.quote_ttl = 0.0  # nothing reusable: nothing kept from one pass to the next
    await rec.run_pass(apply=False)
    await rec.run_pass(apply=False)
    assert all(at == market.clock.now() for at, _ in rec._quotes.values())
    assert all(at == market.clock.now() for at, _ in rec._balances.values())


async def test_a_renamed_policy_keeps_the_spend_of_its_addresses(
    market: Market, tmp_path: Path
) -> None:
    """Budgets follow the addresses' spend: renaming `pol` is not a fresh budget."""
    first, second = market.watched(2)
    before = reconciler(market, policy_set(tmp_path, [first], ["p-eopen"]))
    [bought] = (await before.run_pass(apply=True)).outcomes
    assert bought.kind is OutcomeKind.BOUGHT
    [order] = await market.store.orders()
    room = 8_400_000  # one top-up at the cap (70k x 120 sun): the least budget allowed
    assert order.reserved_sun <= room < 2 * order.reserved_sun  # a second one does not fit
    renamed = policy_set(
        tmp_path, [first, second], ["p-eopen"], name="pol-renamed", per_day=f"{room} sun"
    )
    after = await reconciler(market, renamed).run_pass(apply=True)
    assert after.outcomes == ()
    [entry] = [e for e in after.plan.entries if e.address == second]
    assert str(entry.reason) == "Budget", entry
    assert market.creates("eopen") == 1


async def test_usage_profiles_meet_the_store_at_most_every_sync_interval(
    market: Market, tmp_path: Path
) -> None:
    from engine.reconciling import PROFILE_SYNC_INTERVAL

    watched = market.watched(2)
    rec = reconciler(market, policy_set(tmp_path, watched, ["p-eopen"]))
    saves: list[list[str]] = []
    save = market.store.save_usage_profiles

    async def counting(profiles):  # type: ignore[no-untyped-def]
        saves.append(sorted(p.address for p in profiles))
        await save(profiles)

    market.store.save_usage_profiles = counting  # type: ignore[method-assign]
    await rec.run_pass(apply=False)  # a plan learns but never writes
    assert saves == []
    await rec.run_pass(apply=True)  # the first apply pass keeps what was learnt
    assert saves == [sorted(watched)]
    for _ in range(3):  # passes within the interval stay in memory
        market.advance(PROFILE_SYNC_INTERVAL / 5)
        await rec.run_pass(apply=True)
    assert len(saves) == 1
    market.advance(PROFILE_SYNC_INTERVAL)
    await rec.run_pass(apply=True)
    assert len(saves) == 2 and saves[1] == sorted(watched)
    kept = await market.store.usage_profiles(watched)
    assert {a: p.updated_at for a, p in kept.items()} == {
        a: rec.usage[a].updated_at for a in watched
    }


async def test_rentals_in_force_follow_the_store_between_whole_reads(
    market: Market, tmp_path: Path
) -> None:
    """The rentals the planner sees: read whole, then kept up to date from the orders
    changed since (one delivered by another replica included), ended ones dropped."""
    [addr, other] = market.watched(2)
    rec = reconciler(market, policy_set(tmp_path, [addr, other], ["p-eopen"]))

    async def delivered(name: str, address: str, duration: int) -> None:
        new = NewIntent(
            client_order_id=name, policy="pol", address=address, provider="eopen",
            energy=70_000, duration=duration, reserved_sun=0,
        )  # fmt: skip
        assert isinstance(await market.store.create_intent(new, budgets=[]), IntentCreated)
        await market.store.transition(name, OrderPhase.DELIVERED)

    def live(rentals: dict[str, list[Rental]]) -> set[str]:
        return {r.client_order_id for rs in rentals.values() for r in rs}

    await delivered("hour", addr, 3600)
    first = await rec.rentals(market.clock.now())
    assert live(first) == {"hour"}
    market.advance(60)
    await delivered("day", other, 86_400)  # as another replica would: straight in the store
    market.advance(60)
    assert live(await rec.rentals(market.clock.now())) == {"hour", "day"}
    market.advance(3600)  # the hour is over; no whole read since (RENTALS_REREAD is 600 s)
    assert live(await rec.rentals(market.clock.now())) == {"day"}
