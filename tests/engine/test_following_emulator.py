"""Acceptance: against the emulated node, block following reports exactly the watched
addresses whose available energy fell, among thousands watched, in blocks of mixed
transactions (transfers by watched and unwatched senders, delegations, undelegations)."""

from __future__ import annotations

import random

import httpx
from tronpy.keys import to_base58check_address

from engine.core.clock import VirtualClock
from engine.core.snapshots import EnergySnapshot
from engine.observe.chain import ChainReader
from engine.observe.following import BlockFollower
from sandbox.tron_node import ChainState, create_app

TRX = 1_000_000
WATCHED, UNWATCHED = 2000, 600


def addr(i: int) -> str:
    return str(to_base58check_address(b"\x41" + i.to_bytes(20, "big")))


async def available(reader: ChainReader, addresses: list[str]) -> dict[str, int]:
    out = {}
    for a, snap in (await reader.snapshots(addresses)).items():
        assert isinstance(snap, EnergySnapshot), snap
        out[a] = snap.available
    return out


async def test_reports_exactly_the_watched_addresses_whose_energy_fell() -> None:
    rng = random.Random(3)
    clock = VirtualClock()
    state = ChainState(clock)
    watched = [addr(i) for i in range(1, WATCHED + 1)]
    unwatched = [addr(i) for i in range(100_000, 100_000 + UNWATCHED)]
    providers = [addr(900_000 + i) for i in range(8)]
    for a in [*watched, *unwatched, *providers]:
        state.create_account(a, balance_sun=50_000 * TRX if a in providers else 100 * TRX)
    for p in providers:
        state.fund(p, 10_000_000 * TRX)
        state.stake_energy(p, 5_000_000 * TRX)
    stakers = watched[1900:1920]  # watched addresses with their own stake
    for s in stakers:
        state.stake_energy(s, 50 * TRX)
    rng.shuffle(watched)
    groups = iter(range(0, 2000, 100))

    def group() -> list[str]:
        start = next(groups)
        return [a for a in watched[start : start + 100] if a not in stakers]

    spenders, receivers, reclaimed, both = group(), group(), group(), group()
    burners = group()[:20]  # no energy: their transfers burn TRX
    supplied = [*spenders, *reclaimed, *both]
    per = state.sun_for_energy(100_000)
    supplier = {a: providers[i % 8] for i, a in enumerate(supplied)}
    for a in supplied:
        state.delegate_energy(supplier[a], a, per)
    for i, a in enumerate(unwatched[:300]):
        state.delegate_energy(providers[i % 8], a, per)
    for a in [*watched, *unwatched]:
        state.mark_usdt_holder(a)
    state.advance(6)

    transport = httpx.ASGITransport(app=create_app(state))
    async with ChainReader("http://node", api_key=None, clock=clock, transport=transport) as r:
        follower = BlockFollower(r, set(watched))
        await follower.poll()  # start at the head
        before = await available(r, watched)
        # one block's worth of mixed transactions, then a second block
        for a in spenders:
            state.transfer_usdt(a, rng.choice(unwatched))
        for a in unwatched[:300]:  # unwatched senders, paying watched recipients
            state.transfer_usdt(a, rng.choice(watched))
        for a in burners:
            state.transfer_usdt(a, rng.choice(unwatched))
        for i, a in enumerate(receivers):
            state.delegate_energy(providers[i % 8], a, per)
        for a in reclaimed:
            state.undelegate_energy(supplier[a], a, per)
        for s in stakers[:10]:  # watched owners delegating their own stake away
            state.delegate_energy(s, rng.choice(unwatched), 10 * TRX)
        state.advance(3)
        for a in both:  # spend, then lose the delegation, in the next block
            state.transfer_usdt(a, rng.choice(unwatched))
            state.undelegate_energy(supplier[a], a, per // 2)
        state.advance(3)
        update = await follower.poll()
        after = await available(r, watched)

    assert [rep.number for rep in update.reports] == [
        state.head_block_number() - 1,
        state.head_block_number(),
    ]
    fell = {a for a in watched if after[a] < before[a]}
    reported = frozenset().union(*(rep.energy_fell for rep in update.reports))
    spent = frozenset().union(*(rep.spent for rep in update.reports))
    delegated = frozenset().union(*(rep.delegated_to for rep in update.reports))
    assert all(before[a] == 0 == after[a] for a in burners)  # no pool to fall from
    assert reported == fell | set(burners)
    assert spent == {*spenders, *burners, *both}
    assert delegated == set(receivers)
    assert len(fell) == len(spenders) + len(reclaimed) + len(both) + 10
