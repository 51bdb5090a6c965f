"""Contract: leases, provider health, policy revisions and the store's lifecycle.

Leases are how replicas share work (issue 8); here they expire on a virtual clock, change
hands with a new fencing token, and cannot be renewed or released by a stale holder.
"""

from __future__ import annotations

import asyncio

import pytest

from engine.core.clock import VirtualClock
from engine.core.records import ProviderHealth, cooldown_until
from engine.store import Store, StoreClosedError
from tests.engine.store.harness import START, Backend

TTL = 30.0


async def test_a_lease_has_one_holder_until_it_expires(store: Store, clock: VirtualClock) -> None:
    lease = await store.acquire_lease("tracker", "replica-a", TTL)
    assert lease is not None
    assert (lease.holder, lease.token, lease.expires_at) == ("replica-a", 1, START + TTL)
    assert await store.acquire_lease("tracker", "replica-b", TTL) is None
    clock.advance(TTL - 0.001)
    assert await store.acquire_lease("tracker", "replica-b", TTL) is None
    clock.advance(0.001)  # expires_at reached: the lease is free
    taken = await store.acquire_lease("tracker", "replica-b", TTL)
    assert taken is not None and (taken.holder, taken.token) == ("replica-b", 2)
    # the old holder has lost it: it can neither renew nor release it
    assert await store.renew_lease("tracker", "replica-a", TTL) is None
    assert await store.release_lease("tracker", "replica-a") is False
    assert (await store.lease_holders())["tracker"].holder == "replica-b"


async def test_renewal_keeps_a_lease_and_its_token(store: Store, clock: VirtualClock) -> None:
    await store.acquire_lease("tracker", "a", TTL)
    for _ in range(5):
        clock.advance(TTL - 1)
        renewed = await store.renew_lease("tracker", "a", TTL)
        assert renewed is not None and renewed.token == 1
        assert await store.acquire_lease("tracker", "b", TTL) is None
    again = await store.acquire_lease("tracker", "a", TTL)  # re-acquiring extends
    assert again is not None and again.token == 1 and again.expires_at == clock.now() + TTL


async def test_an_expired_lease_cannot_be_renewed(store: Store, clock: VirtualClock) -> None:
    await store.acquire_lease("tracker", "a", TTL)
    clock.advance(TTL)
    assert await store.renew_lease("tracker", "a", TTL) is None
    assert await store.lease_holders() == {}
    back = await store.acquire_lease("tracker", "a", TTL)
    assert back is not None and back.token == 2  # a new tenure, even for the same holder


async def test_release_frees_the_lease_at_once(store: Store) -> None:
    await store.acquire_lease("address:T1", "a", TTL)
    await store.acquire_lease("address:T2", "a", TTL)
    assert await store.release_lease("address:T1", "a") is True
    assert await store.release_lease("address:T1", "a") is False
    assert set(await store.lease_holders()) == {"address:T2"}
    taken = await store.acquire_lease("address:T1", "b", TTL)
    assert taken is not None and taken.token == 2


async def test_lease_holders_as_of_a_time(store: Store) -> None:
    await store.acquire_lease("short", "a", 10)
    await store.acquire_lease("long", "a", 100)
    assert set(await store.lease_holders(now=START + 50)) == {"long"}
    assert await store.lease_holders(now=START + 100) == {}


async def test_lease_ttl_must_be_positive(store: Store) -> None:
    with pytest.raises(ValueError, match="ttl"):
        await store.acquire_lease("x", "a", 0)
    with pytest.raises(ValueError, match="ttl"):
        await store.renew_lease("x", "a", -1)


async def test_replicas_contend_for_a_lease(
    store: Store, backend: Backend, clock: VirtualClock
) -> None:
    replica = await backend.open(clock)
    try:
        mine = await store.acquire_lease("controller", "a", TTL)
        theirs = await replica.acquire_lease("controller", "b", TTL)
        assert mine is not None and theirs is None
        assert (await replica.lease_holders())["controller"].holder == "a"
    finally:
        await replica.close()


async def test_provider_failures_back_off_and_success_resets(
    store: Store, clock: VirtualClock
) -> None:
    for n in range(1, 5):
        health = await store.record_provider_result("itrx", ok=False, reason="unavailable")
        assert (health.consecutive_failures, health.last_reason) == (n, "unavailable")
    assert health.last_failure_at == START
    cooldowns = await store.provider_cooldowns()
    assert cooldowns == {"itrx": START + 30 * 2**3}
    await store.record_provider_result("mefree", ok=True)
    assert "mefree" not in await store.provider_cooldowns()
    assert await store.provider_cooldowns(now=START + 240) == {}
    clock.advance(60)
    healed = await store.record_provider_result("itrx", ok=True)
    assert (healed.consecutive_failures, healed.last_success_at) == (0, START + 60)
    assert await store.provider_cooldowns() == {}
    assert set(await store.provider_health()) == {"itrx", "mefree"}


def test_cooldown_is_capped_and_absent_when_healthy() -> None:
    failing = ProviderHealth(provider="x", consecutive_failures=200, last_failure_at=100.0)
    assert cooldown_until(failing, cap=3600) == 3700.0
    assert cooldown_until(ProviderHealth(provider="x")) is None
    one = ProviderHealth(provider="x", consecutive_failures=1, last_failure_at=0.0)
    assert cooldown_until(one, base=7) == 7.0


async def test_policy_revisions_latest_wins(store: Store, clock: VirtualClock) -> None:
    assert await store.latest_policy_revision() is None
    first = await store.record_policy_revision("sha256:aa", "2 policies, 1 provider", "cli")
    clock.advance(10)
    second = await store.record_policy_revision("sha256:bb", "3 policies", "sidecar")
    latest = await store.latest_policy_revision()
    assert latest == second and latest.seq > first.seq
    assert (latest.digest, latest.applied_at, latest.applied_by) == (
        "sha256:bb",
        START + 10,
        "sidecar",
    )


async def test_healthcheck_and_close(backend: Backend, clock: VirtualClock, store: Store) -> None:
    await store.healthcheck()
    other = await backend.open(clock)
    await other.close()
    await other.close()  # idempotent
    with pytest.raises(StoreClosedError):
        await other.open_orders()
    with pytest.raises(StoreClosedError):
        await other.healthcheck()
    async with await backend.open(clock) as scoped:
        await scoped.healthcheck()
    with pytest.raises(StoreClosedError):
        await scoped.get_order("x")


async def test_an_expired_lease_goes_to_exactly_one_of_many_replicas(
    store: Store, backend: Backend, clock: VirtualClock
) -> None:
    """A dead replica's lease, once expired, is taken by one contender, with a new token."""
    first = await store.acquire_lease("address:T1", "dead", TTL)
    assert first is not None
    clock.advance(TTL)
    replicas = [await backend.open(clock) for _ in range(5)]
    try:
        taken = await asyncio.gather(
            *(r.acquire_lease("address:T1", f"r{n}", TTL) for n, r in enumerate(replicas))
        )
    finally:
        for replica in replicas:
            await replica.close()
    winners = [lease for lease in taken if lease is not None]
    assert len(winners) == 1 and winners[0].token == first.token + 1
    assert (await store.lease_holders())["address:T1"] == winners[0]
    assert await store.renew_lease("address:T1", "dead", TTL) is None
