"""Shard leases among replicas (`engine/sidecar/sharding.py`) and the tracking rules that keep a
replica's hands off another's fresh intent (`engine/sidecar/rounds.py`).

Replicas here are `ShardLeases` over one SQLite store on a `VirtualClock`: each `tick` is
one renewal pass of one replica, and the clock moves only when a test advances it, so a
replica "killed" is one that stops ticking. The same lease API runs on PostgreSQL (the
store contract suite); `tests/e2e/test_replicas.py` runs real processes on it.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from engine.core.clock import VirtualClock
from engine.sidecar.rounds import IN_FLIGHT_GRACE, RoundRules, may_track
from engine.sidecar.sharding import ShardLeases, ShardSettings, shard_name, shard_of
from engine.store import OrderPhase, OrderRecord, Store, open_store

SHARDS = 16
TTL = 6.0
ADDRESSES = [f"T{n:033d}" for n in range(400)]


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
async def store(tmp_path: Path, clock: VirtualClock) -> AsyncIterator[Store]:
    async with await open_store(f"sqlite:///{tmp_path / 'state.db'}", clock) as opened:
        yield opened


def replica(store: Store, clock: VirtualClock, name: str) -> ShardLeases:
    return ShardLeases(lambda: store, ShardSettings(name, SHARDS, TTL), clock)


async def settle(replicas: list[ShardLeases], rounds: int = 4) -> None:
    for _ in range(rounds):
        for r in replicas:
            await r.tick()


def assert_partition(replicas: list[ShardLeases]) -> None:
    """Every shard held by exactly one replica, none above its fair share."""
    held = [set(r.held) for r in replicas]
    assert sum(len(h) for h in held) == SHARDS
    assert set().union(*held) == set(range(SHARDS))
    fair = math.ceil(SHARDS / len(replicas))
    assert all(len(h) <= fair for h in held), [len(h) for h in held]
    owned = [r.owned(ADDRESSES) for r in replicas]
    assert sum(len(o) for o in owned) == len(ADDRESSES)  # each address: one replica


def test_shard_of_is_stable_and_spreads() -> None:
    # BLAKE2b, not Python's salted hash: the same shard in every process and replica
    assert shard_of("TXYZopYRdj2D9XRtbG411XZZ3kM5VkAeBf", 64) == 49
    counts = [0] * SHARDS
    for address in ADDRESSES:
        counts[shard_of(address, SHARDS)] += 1
    assert min(counts) > 0 and max(counts) < 3 * len(ADDRESSES) / SHARDS
    assert shard_name(3, 64) == "shard:3/64"


async def test_replicas_joining_split_the_shards_fairly(store: Store, clock: VirtualClock) -> None:
    a, b, c = (replica(store, clock, n) for n in "abc")
    await a.tick()
    assert len(a.held) == SHARDS  # alone: everything
    await settle([a, b])
    assert_partition([a, b])
    await settle([a, b, c])
    assert_partition([a, b, c])
    assert a.members == ["a", "b", "c"]
    assert await b.owner(next(iter(a.owned(ADDRESSES)))) == "a"


async def test_a_killed_replica_s_shards_are_taken_after_the_ttl(
    store: Store, clock: VirtualClock
) -> None:
    a, b, c = (replica(store, clock, n) for n in "abc")
    await settle([a, b, c])
    lost = set(c.held)
    clock.advance(TTL / 2)
    await settle([a, b], rounds=1)
    assert not (set(a.held) | set(b.held)) & lost  # not before the ttl: c may be alive
    clock.advance(TTL / 2 + 0.1)  # c stopped renewing a ttl ago
    assert c.owned(ADDRESSES) == frozenset()  # c's own clock fences it off already
    await settle([a, b])
    assert_partition([a, b])


async def test_a_failed_renewal_stops_the_replica_at_once(
    store: Store, clock: VirtualClock
) -> None:
    """A paused replica whose lease expired and was taken must not act on the shard."""
    a, b = replica(store, clock, "a"), replica(store, clock, "b")
    await a.tick()
    clock.advance(TTL + 1)  # a is paused past its ttl; b takes everything
    await b.tick()
    assert len(b.held) == SHARDS
    assert a.owned(ADDRESSES) == frozenset()
    await a.tick()  # a wakes: every renewal fails, and b's fresh leases are not free
    assert a.lost == SHARDS and a.held == {}
    await settle([b, a])  # b hands over the fair share; a takes it with new tokens
    assert_partition([a, b])


async def test_a_clean_stop_hands_the_shards_over_without_waiting(
    store: Store, clock: VirtualClock
) -> None:
    a, b = replica(store, clock, "a"), replica(store, clock, "b")
    await settle([a, b])
    await a.release_all()
    assert a.held == {} and a.owned(ADDRESSES) == frozenset()
    await b.tick()  # same instant: no ttl to wait for
    assert len(b.held) == SHARDS
    assert b.members == ["b"]


async def test_leases_carry_a_new_fencing_token_per_tenure(
    store: Store, clock: VirtualClock
) -> None:
    a, b = replica(store, clock, "a"), replica(store, clock, "b")
    await a.tick()
    tokens = {k: lease.token for k, lease in a.held.items()}
    clock.advance(TTL + 1)
    await b.tick()
    assert all(b.held[k].token == tokens[k] + 1 for k in b.held)


# --------------------------------------------------------------------------- rounds

NOW = 1_767_225_600.0


def intent(created_at: float, coid: str = "c1") -> OrderRecord:
    return OrderRecord(
        client_order_id=coid, policy="p", address=ADDRESSES[0], provider="itrx",
        energy=65_000, duration=3600, phase=OrderPhase.INTENT, reserved_sun=1,
        created_at=created_at, updated_at=created_at,
    )  # fmt: skip


def test_another_replica_s_fresh_intent_is_left_alone_for_the_grace() -> None:
    rules = RoundRules(frozenset(), (), intent_grace=60.0)
    assert not may_track(intent(NOW - 59), NOW, rules)  # its writer may still be calling
    assert may_track(intent(NOW - 60), NOW, rules)  # a dead replica's: resolved


def test_an_intent_of_a_pass_still_running_waits_for_the_pass() -> None:
    running = RoundRules(frozenset(), ((NOW - 5, None),), intent_grace=0.0)
    assert not may_track(intent(NOW - 4), NOW, running)
    assert may_track(intent(NOW - 6), NOW, running)  # before the pass: someone else's
    assert may_track(intent(NOW - IN_FLIGHT_GRACE - 1), NOW + 0, running)
    failed = RoundRules(frozenset(), ((NOW - 5, NOW - 3),), intent_grace=0.0)
    assert not may_track(intent(NOW - 4), NOW, failed)  # its actions may outlive it
    mine = RoundRules(frozenset({"c1"}), ((NOW - 5, None),), intent_grace=60.0)
    assert may_track(intent(NOW - 1), NOW, mine)  # a finished pass's own: at once
